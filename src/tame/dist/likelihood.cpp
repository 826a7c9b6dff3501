#include "tame/dist/likelihood.h"

#include <cmath>

#include "tame/dist/pixel_likelihood.h"
#include "tame/nn/autocast.h"

namespace tame {

double bits_per_dim(double nll_nats, int64_t dims) {
  return nll_nats / (static_cast<double>(dims) * std::log(2.0));
}

torch::Tensor bits_per_dim(const torch::Tensor& nll_nats, int64_t dims) {
  return nll_nats / (static_cast<double>(dims) * std::log(2.0));
}

torch::Tensor categorical_nll(const torch::Tensor& logits, const torch::Tensor& x) {
  return -Categorical(logits).log_prob(x);
}

torch::Tensor standard_normal_log_prob(const torch::Tensor& z) {
  return (-0.5 * (full_precision(z).pow(2) + std::log(2 * M_PI))).sum(-1);
}

torch::Tensor categorical_probs(const torch::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  return torch::softmax(logits.to(torch::kFloat) / temperature, 1);
}

torch::Tensor scale_to_unit(const torch::Tensor& x, int64_t levels) {
  return x.to(torch::kFloat) * (2.0 / static_cast<double>(levels - 1)) - 1.0;
}

}  // namespace tame
