#include "tame/models/latent/estimators.h"

#include <cmath>

#include "tame/nn/autocast.h"

namespace tame::latent {

torch::Tensor gaussian_kl(const torch::Tensor& mu_in, const torch::Tensor& logvar_in) {
  const auto mu = full_precision(mu_in), logvar = full_precision(logvar_in);
  return 0.5 * (mu.pow(2) + torch::exp(logvar) - 1.0 - logvar).sum(-1);
}

torch::Tensor gaussian_log_prob(const torch::Tensor& z_in, const torch::Tensor& mu_in,
                                const torch::Tensor& logvar_in) {
  const auto z = full_precision(z_in), mu = full_precision(mu_in),
             logvar = full_precision(logvar_in);
  return (-0.5 * ((z - mu).pow(2) * torch::exp(-logvar) + logvar + std::log(2 * M_PI))).sum(-1);
}

torch::Tensor gaussian_draw(const torch::Tensor& mu_in, const torch::Tensor& logvar_in) {
  const auto mu = full_precision(mu_in), logvar = full_precision(logvar_in);
  return mu + torch::exp(0.5 * logvar) * torch::randn(mu.sizes(), mu.options());
}

torch::Tensor score_function_surrogate(const torch::Tensor& f, const torch::Tensor& log_q,
                                       const torch::Tensor& baseline) {
  return f + (f - baseline).detach() * (log_q - log_q.detach());
}

torch::Tensor gumbel_softmax(const torch::Tensor& logits, double tau, bool hard) {
  TORCH_CHECK(tau > 0, "gumbel_softmax: the temperature must be positive, got ", tau);
  auto u = torch::rand_like(full_precision(logits)).clamp(1e-10, 1.0 - 1e-7);
  auto g = -torch::log(-torch::log(u));
  auto soft = torch::softmax((full_precision(logits) + g) / tau, -1);
  if (!hard) return soft;
  auto index = soft.argmax(-1, /*keepdim=*/true);
  auto one_hot = torch::zeros_like(soft).scatter_(-1, index, 1.0);
  return (one_hot - soft).detach() + soft;
}

int64_t active_units(const torch::Tensor& means, double threshold) {
  TORCH_CHECK(means.dim() == 2, "active_units: expected [N, L], got ", means.sizes());
  if (means.size(0) < 2) return 0;
  auto var = means.to(torch::kDouble).var(0, /*unbiased=*/true);
  return (var > threshold).sum().item<int64_t>();
}

}  // namespace tame::latent
