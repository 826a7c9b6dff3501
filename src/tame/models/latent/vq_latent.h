// The latent-variable view of the VQ models (VQ-VAE, VQ-VAE-2, VQGAN): z is L
// code positions, each one of K codebook entries; the posterior is one-hot on
// the nearest entries (deterministic) and the prior uniform, so KL = L log K
// and nll = -log p(x | z_q) + L log K, an upper bound that a trained prior
// over the codes tightens (code_prior.h). Every latent-model path of
// latent_model.h (bounds, reconstructions, samples, diagnostics) then serves
// the VQ models unchanged; each model supplies encode() and pixel_params().
#pragma once

#include <cmath>

#include "tame/models/latent/latent_model.h"

namespace tame {

class VqLatentModel : public LatentModel {
 public:
  /// L = positions code positions of K = codes entries.
  VqLatentModel(ImageShape shape, int64_t levels, PixelLikelihood likelihood, int64_t positions,
                int64_t codes);
  int64_t latent_dims() const override { return positions_ * codes_; }
  /// Code positions L.
  int64_t positions() const { return positions_; }
  /// -log of the uniform prior over the code maps, L log K nats (the KL of the
  /// one-hot posterior).
  double uniform_prior_nats() const {
    return static_cast<double>(positions_) * std::log(static_cast<double>(codes_));
  }

  /// q.a: the entries' indices [B, L] (long); q.b: any float tensor of the batch.
  torch::Tensor draw(const Posterior& q, int64_t n, bool reparameterized) override;
  torch::Tensor log_q(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor log_prior(const torch::Tensor& z) override;
  torch::Tensor kl(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor prior_draw(int64_t n) override;
  torch::Tensor posterior_mode(const Posterior& q) override;  // one-hot [B, L, K]
  torch::Tensor posterior_mean(const Posterior& q) override { return posterior_mode(q).flatten(1); }

 private:
  int64_t positions_, codes_;
};

}  // namespace tame
