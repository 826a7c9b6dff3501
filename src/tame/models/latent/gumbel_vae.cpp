#include "tame/models/latent/gumbel_vae.h"

#include <cmath>

#include "tame/codec/bits_back.h"
#include "tame/dist/likelihood.h"
#include "tame/models/latent/estimators.h"

namespace tame {

GumbelVae::GumbelVae(const GumbelVaeOptions& o, ImageShape shape, int64_t levels)
    : LatentModel(shape, levels, pixel_likelihood(o.likelihood, levels), o.beta, 1), options(o) {
  TORCH_CHECK(o.groups >= 1 && o.classes >= 2 && o.hidden >= 1,
              "gumbel-vae: groups >= 1, classes >= 2 and hidden >= 1 required");
  TORCH_CHECK(o.tau0 > 0 && o.tau_min > 0 && o.anneal >= 0,
              "gumbel-vae: tau0 and tau_min must be positive, anneal >= 0");
  encoder_ = make_encoder(o.arch, shape, o.hidden, o.groups * o.classes);
  register_module("encoder", encoder_.ptr());
  decoder_ = make_decoder(o.arch, o.groups * o.classes, o.hidden,
                          likelihood_.features(shape.channels), shape);
  register_module("decoder", decoder_.ptr());
  step_ = register_buffer("step", torch::zeros({}, torch::kDouble));
}

double GumbelVae::temperature() const {
  return std::max(options.tau_min, options.tau0 * std::exp(-options.anneal * step_.item<double>()));
}

std::unique_ptr<ImageCoder> GumbelVae::coder() {
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width,
                GM = options.groups * options.classes;
  LatentNets nets;
  nets.encoder = feedforward_of(encoder_, {H, W, C}, {1, 1, GM});
  nets.decoder = feedforward_of(decoder_, {1, 1, GM}, {H, W, likelihood_.features(C)});
  nets.latent = options.groups;
  nets.classes = options.classes;
  nets.pixels = likelihood_.kind;
  return std::make_unique<BitsBackCoder>(std::move(nets), ImageSize{C, H, W}, levels_);
}

Posterior GumbelVae::encode(const torch::Tensor& x) {
  auto logits = encoder_.forward(scale_to_unit(x, levels_))
                    .view({x.size(0), options.groups, options.classes});
  return {torch::log_softmax(full_precision(logits), -1), {}};
}

torch::Tensor GumbelVae::draw(const Posterior& q, int64_t n, bool reparameterized) {
  auto logits = q.a.unsqueeze(0).expand({n, q.a.size(0), options.groups, options.classes});
  if (reparameterized) return latent::gumbel_softmax(logits, temperature(), options.hard);
  // Exact categorical draws, one-hot: [n, B, G, M].
  auto index =
      torch::multinomial(torch::exp(q.a).reshape({-1, options.classes}), n, true);  // [B G, n]
  index = index.t().reshape({n, q.a.size(0), options.groups, 1});
  return torch::zeros_like(logits).scatter_(-1, index, 1.0);
}

torch::Tensor GumbelVae::log_q(const Posterior& q, const torch::Tensor& z) {
  return (z * q.a.unsqueeze(0)).sum({-2, -1});
}

torch::Tensor GumbelVae::log_prior(const torch::Tensor& z) {
  return torch::full({z.size(0), z.size(1)}, -options.groups * std::log(double(options.classes)),
                     z.options());
}

torch::Tensor GumbelVae::kl(const Posterior& q, const torch::Tensor&) {
  return (torch::exp(q.a) * q.a).sum({-2, -1}) + options.groups * std::log(double(options.classes));
}

torch::Tensor GumbelVae::prior_draw(int64_t n) {
  auto index = torch::randint(0, options.classes, {n, options.groups, 1},
                              torch::TensorOptions().dtype(torch::kLong).device(device()));
  return torch::zeros({n, options.groups, options.classes}, torch::TensorOptions().device(device()))
      .scatter_(-1, index, 1.0);
}

torch::Tensor GumbelVae::posterior_mode(const Posterior& q) {
  return torch::zeros_like(q.a).scatter_(-1, q.a.argmax(-1, true), 1.0);
}

torch::Tensor GumbelVae::loss(const torch::Tensor& x) {
  auto l = LatentModel::loss(x);
  if (is_training()) {
    torch::NoGradGuard g;
    step_.add_(1.0);
  }
  last_terms_["tau"] = temperature();
  return l;
}

torch::Tensor GumbelVae::encode_codes(const torch::Tensor& x) {
  c10::InferenceMode guard;
  auto codes = encode(x).a.argmax(-1);  // [B, groups]
  return codes.view({x.size(0), 1, 1, options.groups}).to(image_dtype(options.classes));
}

torch::Tensor GumbelVae::codes_latent(const torch::Tensor& codes) {
  TORCH_CHECK(codes.dim() == 4 && codes.size(1) * codes.size(2) * codes.size(3) == options.groups,
              "gumbel-vae: code maps must be [n, 1, 1, ", options.groups, "]");
  auto index = codes.to(device(), torch::kLong).reshape({codes.size(0), options.groups});
  TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < options.classes,
              "gumbel-vae: codes must be below ", options.classes);
  return torch::one_hot(index, options.classes).to(torch::kFloat);
}

}  // namespace tame
