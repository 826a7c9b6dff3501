#include "tame/dist/likelihood.h"

#include <cmath>

namespace tame {

double bits_per_dim(double nll_nats, int64_t dims) {
  return nll_nats / (static_cast<double>(dims) * std::log(2.0));
}

torch::Tensor bits_per_dim(const torch::Tensor& nll_nats, int64_t dims) {
  return nll_nats / (static_cast<double>(dims) * std::log(2.0));
}

torch::Tensor categorical_nll(const torch::Tensor& logits, const torch::Tensor& x) {
  TORCH_CHECK(logits.dim() == 5 && x.dim() == 4, "categorical_nll: expected logits [B,K,C,H,W] and x [B,C,H,W], got ",
              logits.sizes(), " and ", x.sizes());
  TORCH_CHECK(logits.size(0) == x.size(0) && logits.sizes().slice(2) == x.sizes().slice(1),
              "categorical_nll: logits ", logits.sizes(), " do not match x ", x.sizes());
  // cross_entropy takes the class dimension at 1, which is where K sits.
  auto nll = torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat), x.to(torch::kLong),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return nll.flatten(1).sum(1);
}

torch::Tensor bernoulli_nll(const torch::Tensor& logits, const torch::Tensor& x) {
  TORCH_CHECK(logits.sizes() == x.sizes(), "bernoulli_nll: logits ", logits.sizes(), " vs x ", x.sizes());
  auto nll = torch::nn::functional::binary_cross_entropy_with_logits(
      logits, x.to(logits.scalar_type()),
      torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return nll.flatten(1).sum(1);
}

torch::Tensor categorical_probs(const torch::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  return torch::softmax(logits.to(torch::kFloat) / temperature, 1);
}

torch::Tensor scale_to_unit(const torch::Tensor& x, int64_t levels) {
  return x.to(torch::kFloat) * (2.0 / static_cast<double>(levels - 1)) - 1.0;
}

}  // namespace tame
