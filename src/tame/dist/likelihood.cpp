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

torch::Tensor discretized_logistic_nll(const torch::Tensor& mean, const torch::Tensor& log_scale,
                                       const torch::Tensor& x, int64_t levels) {
  TORCH_CHECK(mean.sizes() == x.sizes() && log_scale.sizes() == x.sizes(),
              "discretized_logistic_nll: mean ", mean.sizes(), ", log_scale ", log_scale.sizes(),
              " and x ", x.sizes(), " must match");
  const double h = 1.0 / static_cast<double>(levels - 1);
  auto c = scale_to_unit(x, levels).to(mean.scalar_type());
  auto inv_s = torch::exp(-log_scale);
  auto plus = (c - mean + h) * inv_s, minus = (c - mean - h) * inv_s;
  // log sigma(plus) for the lowest level, log(1 - sigma(minus)) for the highest;
  // between, the bin's mass sigma(plus) - sigma(minus) in log space, taken on
  // the side of the mean where it is well conditioned: below the mean as
  //   log sigma(plus) + log(1 - exp(log sigma(minus) - log sigma(plus))),
  // above it the same with the survival function sigma(-x). Where the bin is
  // tiny against the scale, the mid-point density times the bin width.
  auto log_cdf_plus = torch::log_sigmoid(plus);
  auto log_sf_minus = torch::log_sigmoid(-minus);
  auto centre = (c - mean) * inv_s;
  auto above = centre > 0;
  auto lead = torch::where(above, log_sf_minus, log_cdf_plus);
  auto diff = torch::where(above, torch::log_sigmoid(-plus), torch::log_sigmoid(minus)) - lead;
  auto mid = lead + torch::log(-torch::expm1(diff.clamp_max(-1e-12)));
  auto log_pdf_mid = centre - log_scale - 2.0 * torch::softplus(centre) + std::log(2.0 * h);
  mid = torch::where(diff < -1e-5, mid, log_pdf_mid);
  auto xi = x.to(torch::kLong);
  auto logp = torch::where(xi == 0, log_cdf_plus, torch::where(xi == levels - 1, log_sf_minus, mid));
  return -logp.flatten(1).sum(1);
}

torch::Tensor standard_normal_log_prob(const torch::Tensor& z) {
  return (-0.5 * (z.pow(2) + std::log(2 * M_PI))).sum(-1);
}

torch::Tensor categorical_probs(const torch::Tensor& logits, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  return torch::softmax(logits.to(torch::kFloat) / temperature, 1);
}

torch::Tensor scale_to_unit(const torch::Tensor& x, int64_t levels) {
  return x.to(torch::kFloat) * (2.0 / static_cast<double>(levels - 1)) - 1.0;
}

}  // namespace tame
