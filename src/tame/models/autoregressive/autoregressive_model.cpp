#include "tame/models/autoregressive/autoregressive_model.h"

#include <limits>

#include "tame/dist/likelihood.h"
#include "tame/error.h"

namespace tame {

torch::Tensor AutoregressiveModel::logits(const torch::Tensor& x) {
  return forward_unit(scale_to_unit(x, levels_));
}

torch::Tensor AutoregressiveModel::nll(const torch::Tensor& x) {
  return categorical_nll(logits(x), x.slice(1, given_channels()));
}

namespace {
uint64_t draw_seed() {
  return static_cast<uint64_t>(
      torch::randint(0, std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
}
}  // namespace

torch::Tensor AutoregressiveModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  TORCH_CHECK(n > 0, "sample: n must be positive, got ", n);
  if (given_channels() > 0)
    throw Error(name() + " is conditional: it draws given its first " +
                std::to_string(given_channels()) +
                " channels (the prior of a later code stage; sample the pair)");
  return sample_engine(*step_engine(), n, shape_.height, shape_.width, temperature, draw_seed())
      .to(device());
}

torch::Tensor AutoregressiveModel::condition_context(const torch::Tensor&) {
  throw Error(name() + " is not a conditional model");
}

torch::Tensor AutoregressiveModel::sample_given(const torch::Tensor& given, double temperature) {
  const int64_t G = given_channels();
  if (G == 0) throw Error(name() + " is not a conditional model");
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  TORCH_CHECK(given.dim() == 4 && given.size(1) == G && given.size(0) > 0,
              "sample_given: expected [n, ", G, ", H, W] given channels, got ", given.sizes());
  const int64_t n = given.size(0), H = given.size(2), W = given.size(3);
  torch::Tensor context;
  {
    c10::InferenceMode guard;
    context = condition_context(given.to(device())).to(torch::kCPU, torch::kFloat).contiguous();
  }
  auto engine = step_engine();
  TORCH_CHECK(context.numel() == n * H * W * engine->context_features(),
              "sample_given: the context map has ", context.numel(), " floats");
  auto drawn = sample_engine(*engine, n, H, W, temperature, draw_seed(), context.data_ptr<float>());
  return torch::cat({given.to(torch::kCPU, drawn.scalar_type()), drawn}, 1).to(device());
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
