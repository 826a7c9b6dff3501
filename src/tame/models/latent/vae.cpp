#include "tame/models/latent/vae.h"

#include "tame/codec/bits_back.h"
#include "tame/dist/likelihood.h"
#include "tame/models/latent/estimators.h"

namespace tame {

Vae::Vae(const VaeOptions& o, ImageShape shape, int64_t levels) : Vae(o, shape, levels, true) {}

Vae::Vae(const VaeOptions& o, ImageShape shape, int64_t levels, bool with_decoder)
    : LatentModel(shape, levels, pixel_likelihood(o.likelihood, levels), o.beta, o.k), options(o) {
  TORCH_CHECK(o.latent >= 1 && o.hidden >= 1, "latent and hidden must be positive");
  TORCH_CHECK(o.estimator == "pathwise" || o.estimator == "score",
              "estimator must be pathwise or score, got '", o.estimator, "'");
  TORCH_CHECK(o.estimator == "pathwise" || o.k == 1, "estimator=score trains the k = 1 bound only");
  encoder_ = make_encoder(o.arch, shape, o.hidden, 2 * o.latent);
  register_module("encoder", encoder_.ptr());
  if (with_decoder) {
    decoder_ =
        make_decoder(o.arch, o.latent, o.hidden, likelihood_.features(shape.channels), shape);
    register_module("decoder", decoder_.ptr());
  }
  baseline_ = register_buffer("baseline", torch::zeros({}));
}

Posterior Vae::encode(const torch::Tensor& x) {
  auto h = encoder_.forward(scale_to_unit(x, levels_)).chunk(2, 1);
  return {h[0], h[1].clamp(kLogvarMin, kLogvarMax)};
}

torch::Tensor Vae::draw(const Posterior& q, int64_t n, bool reparameterized) {
  auto z = latent::gaussian_draw(q.a.unsqueeze(0).expand({n, -1, -1}),
                                 q.b.unsqueeze(0).expand({n, -1, -1}));
  return reparameterized ? z : z.detach();
}

torch::Tensor Vae::log_q(const Posterior& q, const torch::Tensor& z) {
  return latent::gaussian_log_prob(z, q.a.unsqueeze(0), q.b.unsqueeze(0));
}

torch::Tensor Vae::log_prior(const torch::Tensor& z) { return standard_normal_log_prob(z); }

torch::Tensor Vae::kl(const Posterior& q, const torch::Tensor&) {
  return latent::gaussian_kl(q.a, q.b);
}

torch::Tensor Vae::prior_draw(int64_t n) {
  return torch::randn({n, options.latent}, torch::TensorOptions().device(device()));
}

LatentNets Vae::coder_nets() const {
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width, L = options.latent;
  LatentNets nets;
  nets.encoder = feedforward_of(encoder_, {H, W, C}, {1, 1, 2 * L});
  nets.latent = L;
  nets.logvar_min = static_cast<float>(kLogvarMin);  // encode()'s clamp
  nets.logvar_max = static_cast<float>(kLogvarMax);
  return nets;
}

std::unique_ptr<ImageCoder> Vae::coder() {
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width, L = options.latent;
  LatentNets nets = coder_nets();
  nets.decoder = feedforward_of(decoder_, {1, 1, L}, {H, W, likelihood_.features(C)});
  nets.pixels = likelihood_.kind;
  return std::make_unique<BitsBackCoder>(std::move(nets), ImageSize{C, H, W}, levels_);
}

torch::Tensor Vae::loss(const torch::Tensor& x) {
  if (options.estimator != "score") return LatentModel::loss(x);
  // Score function: z drawn without a path to the encoder; the encoder learns
  // the reconstruction term through (log p(x|z) - b) grad log q(z|x).
  auto q = encode(x);
  auto z = draw(q, 1, /*reparameterized=*/false);  // [1, B, L]
  auto log_px = -decode_nll(z[0], x);
  auto lq = log_q(q, z)[0];
  auto surrogate = latent::score_function_surrogate(log_px, lq, baseline_);
  auto kl_term = kl(q, z);
  if (is_training()) {
    torch::NoGradGuard g;
    if (baseline_.item<float>() == 0.0f)
      baseline_.copy_(log_px.mean());  // the first batch starts it
    else
      baseline_.mul_(0.9).add_(0.1 * log_px.mean());
  }
  last_terms_ = {{"recon", (-log_px).mean().item<double>()}, {"kl", kl_term.mean().item<double>()}};
  return (-surrogate + beta_ * kl_term).mean();
}

}  // namespace tame
