// VAE — Kingma & Welling 2013, "Auto-Encoding Variational Bayes"; IWAE — Burda,
// Grosse & Salakhutdinov 2015, "Importance Weighted Autoencoders"; β-VAE —
// Higgins et al. 2017.
//
// Implements: a convolutional encoder q(z|x) = N(mu(x), diag sigma^2(x)), the
// standard normal prior, a convolutional decoder p(x|z) with the pixel
// likelihood of latent_model.h. Training:
//   k = 1, estimator = "pathwise":  recon + beta KL with z = mu + sigma eps
//   k = 1, estimator = "score":     the encoder's gradient of the reconstruction
//                                   term by the score-function estimator with a
//                                   running-mean baseline; the KL stays analytic
//   k > 1:                          the IWAE k-sample bound (pathwise)
// `vae` and `iwae` are this model with k = 1 and k = 5 by default.
// Networks: `arch = conv` (default; latent_model.h's ConvEncoder/ConvDecoder)
// or `arch = mlp`, the papers' two tanh hidden layers of `hidden` units each way
// (Burda et al.: 200 for one stochastic layer). Differs from the papers: one
// stochastic layer only (IWAE's best figure used two).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/codec/bits_back.h"
#include "tame/models/latent/latent_model.h"

namespace tame {

struct VaeOptions {
  int64_t latent = 32;
  std::string arch = "conv";
  int64_t hidden = 32;
  std::string likelihood = "auto";
  double beta = 1.0;
  int64_t k = 1;
  std::string estimator = "pathwise";
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"latent", "latent dimensions (2 gives a latent-grid picture)"},
        {"arch", "encoder and decoder networks: conv | mlp"},
        {"hidden",
         "conv: channels of the first convolution (the second has 2x); mlp: units of each hidden "
         "layer"},
        {"likelihood", kPixelLikelihoodHelp},
        {"beta", "weight of the KL term (beta-VAE; 1 = the VAE)"},
        {"k", "importance samples of the training objective (IWAE)"},
        {"estimator", "pathwise (reparameterized) | score (k = 1 only)"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VaeOptions, latent, arch, hidden, likelihood, beta,
                                                k, estimator)

class Vae : public LatentModel {
 public:
  Vae(const VaeOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor loss(const torch::Tensor& x) override;
  int64_t latent_dims() const override { return options.latent; }

  /// The encoder's log-variance is clamped to [kLogvarMin, kLogvarMax].
  static constexpr double kLogvarMin = -12.0, kLogvarMax = 8.0;
  Posterior encode(const torch::Tensor& x) override;  // {mu, logvar}, [B, L] each
  torch::Tensor draw(const Posterior& q, int64_t n, bool reparameterized) override;
  torch::Tensor log_q(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor log_prior(const torch::Tensor& z) override;
  torch::Tensor kl(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor prior_draw(int64_t n) override;
  torch::Tensor posterior_mode(const Posterior& q) override { return q.a; }
  torch::Tensor posterior_mean(const Posterior& q) override { return q.a; }
  /// Bits-back coding (codec/bits_back.h) over the fixed-order forms of the
  /// encoder and decoder; one image size, the training one.
  static constexpr bool kCodec = true;
  std::unique_ptr<ImageCoder> coder() override;

  const VaeOptions options;

 protected:
  /// For models that bring their own decoder (vlae): the encoder and prior only.
  Vae(const VaeOptions& options, ImageShape shape, int64_t levels, bool with_decoder);
  /// The coder's networks with the encoder filled in (the decoder is the caller's).
  LatentNets coder_nets() const;
  torch::Tensor pixel_params(const torch::Tensor& z, const torch::Tensor&) override {
    return decoder_.forward(z);
  }

 private:
  torch::nn::AnyModule encoder_, decoder_;
  torch::Tensor baseline_;  // running mean of log p(x|z) for the score-function estimator
};

}  // namespace tame
