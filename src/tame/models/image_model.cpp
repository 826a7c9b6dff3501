#include "tame/models/image_model.h"

#include "tame/dist/likelihood.h"

namespace tame {

const char* bound_name(Bound b) { return b == Bound::kExact ? "exact" : "upper"; }

torch::Device ImageModel::device() const {
  auto params = parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

torch::Tensor AutoregressiveModel::logits(const torch::Tensor& x) {
  return forward_unit(scale_to_unit(x, levels_));
}

torch::Tensor AutoregressiveModel::nll(const torch::Tensor& x) {
  return categorical_nll(logits(x), x);
}

torch::Tensor AutoregressiveModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  c10::InferenceMode guard;
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width;
  auto x = torch::zeros({n, C, H, W}, torch::TensorOptions().dtype(torch::kUInt8).device(device()));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < C; ++c) {
        auto rows = x.slice(2, 0, i + 1);
        auto l = logits(rows).select(4, j).select(3, i).select(2, c);  // [n, K]
        auto probs = torch::softmax(l.to(torch::kFloat) / temperature, 1);
        x.select(1, c).select(1, i).select(1, j).copy_(torch::multinomial(probs, 1).squeeze(1));
      }
  return x;
}

}  // namespace tame
