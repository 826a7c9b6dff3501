#include "tame/models/autoregressive/autoregressive_model.h"

#include <limits>

#include "tame/dist/likelihood.h"

namespace tame {

torch::Tensor AutoregressiveModel::logits(const torch::Tensor& x) {
  return forward_unit(scale_to_unit(x, levels_));
}

torch::Tensor AutoregressiveModel::nll(const torch::Tensor& x) {
  return categorical_nll(logits(x), x);
}

torch::Tensor AutoregressiveModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  TORCH_CHECK(n > 0, "sample: n must be positive, got ", n);
  auto seed = static_cast<uint64_t>(
      torch::randint(0, std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
  return sample_engine(*step_engine(), n, shape_.height, shape_.width, temperature, seed)
      .to(device());
}

torch::Tensor sample_engine(const StepEngine& engine, int64_t n, int64_t height, int64_t width,
                            double temperature, uint64_t seed, const float* context) {
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  const auto values = draw_images(engine, n, height, width, temperature, seed,
                                  std::max(1, at::get_num_threads()), context);
  const bool narrow = engine.levels() <= 256;
  auto out =
      torch::empty({n, engine.channels(), height, width}, narrow ? torch::kUInt8 : torch::kInt32);
  if (narrow)
    std::copy(values.begin(), values.end(), out.data_ptr<uint8_t>());
  else
    std::copy(values.begin(), values.end(), out.data_ptr<int32_t>());
  return out;
}

}  // namespace tame
