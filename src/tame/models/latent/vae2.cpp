#include "tame/models/latent/vae2.h"

#include "tame/dist/likelihood.h"
#include "tame/models/latent/estimators.h"
#include "tame/models/latent/vae.h"

namespace tame {

Vae2::Vae2(const Vae2Options& o, ImageShape shape, int64_t levels)
    : LatentModel(shape, levels, pixel_likelihood(o.likelihood, levels), o.beta, o.k), options(o) {
  TORCH_CHECK(o.latent1 >= 1 && o.latent2 >= 1 && o.hidden1 >= 1 && o.hidden2 >= 1,
              "latent1, latent2, hidden1 and hidden2 must be positive");
  encoder_ =
      register_module("encoder", Mlp(shape.dims(), o.hidden1, std::vector<int64_t>{2 * o.latent1}));
  up_ = register_module("up", Mlp(o.latent1, o.hidden2, std::vector<int64_t>{2 * o.latent2}));
  down_ = register_module("down", Mlp(o.latent2, o.hidden2, std::vector<int64_t>{2 * o.latent1}));
  decoder_ = register_module(
      "decoder",
      Mlp(o.latent1, o.hidden1,
          std::vector<int64_t>{likelihood_.features(shape.channels), shape.height, shape.width}));
}

Posterior Vae2::gaussian(const torch::Tensor& h) {
  auto parts = h.chunk(2, -1);
  return {parts[0], parts[1].clamp(Vae::kLogvarMin, Vae::kLogvarMax)};
}

namespace {
// An MLP applied to the last dimension of z [..., n].
torch::Tensor last_dim(Mlp& net, const torch::Tensor& z) {
  auto sizes = z.sizes().vec();
  auto out = net->forward(z.reshape({-1, sizes.back()}));
  sizes.back() = out.size(-1);
  return out.view(sizes);
}

// A draw of the Gaussian g (mean g.a, log-variance g.b) of g.a's shape.
torch::Tensor gaussian_draw(const Posterior& g) { return latent::gaussian_draw(g.a, g.b); }
}  // namespace

Posterior Vae2::up(const torch::Tensor& z1) { return gaussian(last_dim(up_, z1)); }
Posterior Vae2::down(const torch::Tensor& z2) { return gaussian(last_dim(down_, z2)); }
torch::Tensor Vae2::z1_of(const torch::Tensor& z) const { return z.narrow(-1, 0, options.latent1); }
torch::Tensor Vae2::z2_of(const torch::Tensor& z) const {
  return z.narrow(-1, options.latent1, options.latent2);
}

Posterior Vae2::encode(const torch::Tensor& x) {
  return gaussian(encoder_->forward(scale_to_unit(x, levels_)));
}

torch::Tensor Vae2::draw(const Posterior& q, int64_t n, bool reparameterized) {
  auto z1 =
      gaussian_draw({q.a.unsqueeze(0).expand({n, -1, -1}), q.b.unsqueeze(0).expand({n, -1, -1})});
  auto z = torch::cat({z1, gaussian_draw(up(z1))}, -1);
  return reparameterized ? z : z.detach();
}

torch::Tensor Vae2::log_q(const Posterior& q, const torch::Tensor& z) {
  auto z1 = z1_of(z);
  auto q2 = up(z1);
  return latent::gaussian_log_prob(z1, q.a.unsqueeze(0), q.b.unsqueeze(0)) +
         latent::gaussian_log_prob(z2_of(z), q2.a, q2.b);
}

torch::Tensor Vae2::log_prior(const torch::Tensor& z) {
  auto z2 = z2_of(z);
  auto p1 = down(z2);
  return standard_normal_log_prob(z2) + latent::gaussian_log_prob(z1_of(z), p1.a, p1.b);
}

torch::Tensor Vae2::prior_draw(int64_t n) {
  auto z2 = torch::randn({n, options.latent2}, torch::TensorOptions().device(device()));
  return torch::cat({gaussian_draw(down(z2)), z2}, -1);
}

torch::Tensor Vae2::posterior_mode(const Posterior& q) { return torch::cat({q.a, up(q.a).a}, -1); }

torch::Tensor Vae2::pixel_params(const torch::Tensor& z, const torch::Tensor&) {
  return decoder_->forward(z1_of(z));
}

std::unique_ptr<ImageCoder> Vae2::coder() {
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width;
  const int64_t L1 = options.latent1, L2 = options.latent2;
  LatentNets nets;
  nets.encoder = encoder_->feedforward({H, W, C}, {1, 1, 2 * L1});
  nets.decoder = decoder_->feedforward({1, 1, L1}, {H, W, likelihood_.features(C)});
  nets.latent = L1;
  nets.latent2 = L2;
  nets.up = up_->feedforward({1, 1, L1}, {1, 1, 2 * L2});
  nets.down = down_->feedforward({1, 1, L2}, {1, 1, 2 * L1});
  nets.logvar_min = static_cast<float>(Vae::kLogvarMin);
  nets.logvar_max = static_cast<float>(Vae::kLogvarMax);
  nets.pixels = likelihood_.kind;
  return std::make_unique<BitsBackCoder>(std::move(nets), ImageSize{C, H, W}, levels_);
}

}  // namespace tame
