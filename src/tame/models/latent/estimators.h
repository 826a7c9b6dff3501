// The pieces every latent-variable model shares: Gaussian densities and KL,
// the score-function (likelihood-ratio) surrogate, the Gumbel-softmax
// relaxation, and the active-unit count.
#pragma once

#include <torch/torch.h>

namespace tame::latent {

/// KL( N(mu, exp(logvar)) || N(0, I) ) summed over the last dimension: [..., L] -> [...].
torch::Tensor gaussian_kl(const torch::Tensor& mu, const torch::Tensor& logvar);

/// log N(z; mu, exp(logvar)) summed over the last dimension (the standard
/// normal prior is tame::standard_normal_log_prob, dist/likelihood.h).
torch::Tensor gaussian_log_prob(const torch::Tensor& z, const torch::Tensor& mu,
                                const torch::Tensor& logvar);

/// A draw z = mu + exp(logvar / 2) eps of N(mu, exp(logvar)), mu and logvar
/// of one shape, eps ~ N(0, I) drawn in fp32 (the same draws whatever
/// precision the parameters came in), with a path to mu and logvar.
torch::Tensor gaussian_draw(const torch::Tensor& mu, const torch::Tensor& logvar);

/// A surrogate whose gradient is the score-function estimate of grad E_q[f(z)]
/// for z ~ q drawn without a path to q's parameters (z detached):
///   f + (f - baseline).detach() * (log_q - log_q.detach())
/// Its value is f; f keeps its own gradient (the decoder's), log_q carries the
/// encoder's. The baseline lowers the variance and leaves the expectation.
torch::Tensor score_function_surrogate(const torch::Tensor& f, const torch::Tensor& log_q,
                                       const torch::Tensor& baseline);

/// Gumbel-softmax samples over the last dimension (Jang et al. 2016; Maddison et
/// al. 2016): softmax((logits + g) / tau), g ~ Gumbel(0, 1). With hard = true the
/// value is the one-hot argmax and the gradient that of the soft sample (the
/// straight-through estimator).
torch::Tensor gumbel_softmax(const torch::Tensor& logits, double tau, bool hard);

/// The units whose posterior mean varies over the data: Cov_x(E_q[z_i|x]) >
/// threshold (Burda et al. 2015 use 0.01). means: [N, L].
int64_t active_units(const torch::Tensor& means, double threshold = 0.01);

}  // namespace tame::latent
