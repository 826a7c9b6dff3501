// Gumbel-softmax VAE — Jang, Gu & Poole 2016, "Categorical Reparameterization
// with Gumbel-Softmax"; Maddison, Mnih & Teh 2016, "The Concrete Distribution".
//
// Implements: `groups` categorical latent variables of `classes` classes each,
// a uniform prior, q(z|x) from the encoder, the decoder fed the concatenated
// (relaxed) one-hot vectors; both convolutional, or MLPs with `arch = mlp`.
// Training relaxes each draw with the Gumbel-softmax at temperature
//   tau = max(tau_min, tau0 * exp(-anneal * step)),
// (hard = true: the straight-through variant, one-hot forward and relaxed
// gradient) and adds beta times the analytic KL(q || uniform). Evaluation
// draws exact one-hot z, so nll and nll_iw are true bounds of the discrete model.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/latent/latent_model.h"

namespace tame {

struct GumbelVaeOptions {
  int64_t groups = 30;
  int64_t classes = 10;
  std::string arch = "conv";
  int64_t hidden = 32;
  std::string likelihood = "auto";
  double beta = 1.0;
  double tau0 = 1.0;
  double tau_min = 0.5;
  double anneal = 3e-5;
  bool hard = false;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"groups", "categorical latent variables"},
        {"classes", "classes of each categorical latent"},
        {"arch", "encoder and decoder networks: conv | mlp (latent_model.h)"},
        {"hidden", "conv: channels of the first convolution; mlp: units"},
        {"likelihood", kPixelLikelihoodHelp},
        {"beta", "weight of the KL term"},
        {"tau0", "temperature at step 0"},
        {"tau_min", "floor of the temperature schedule"},
        {"anneal", "tau = max(tau_min, tau0 exp(-anneal step))"},
        {"hard", "straight-through Gumbel-softmax"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GumbelVaeOptions, groups, classes, arch, hidden,
                                                likelihood, beta, tau0, tau_min, anneal, hard)

class GumbelVae : public LatentModel {
 public:
  GumbelVae(const GumbelVaeOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor loss(const torch::Tensor& x) override;
  int64_t latent_dims() const override { return options.groups * options.classes; }
  /// Discrete codes: each group's most likely class under q(z|x), as a
  /// 1 x 1 x groups map with `classes` levels.
  bool has_codes() const override { return true; }
  torch::Tensor encode_codes(const torch::Tensor& x) override;
  int64_t code_levels() const override { return options.classes; }
  torch::Tensor codes_latent(const torch::Tensor& codes) override;  // one-hot [n, G, M]
  /// The relaxation temperature at the current training step.
  double temperature() const;

  Posterior encode(const torch::Tensor& x) override;  // {log-probabilities [B, G, M], {}}
  torch::Tensor draw(const Posterior& q, int64_t n, bool reparameterized) override;
  torch::Tensor log_q(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor log_prior(const torch::Tensor& z) override;
  torch::Tensor kl(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor prior_draw(int64_t n) override;
  torch::Tensor posterior_mode(const Posterior& q) override;
  torch::Tensor posterior_mean(const Posterior& q) override { return torch::exp(q.a).flatten(1); }

  const GumbelVaeOptions options;
  /// Bits-back coding (codec/bits_back.h) with exact categorical tables and
  /// one-hot z, as the bounds are evaluated; one image size, the training one.
  static constexpr bool kCodec = true;
  std::unique_ptr<ImageCoder> coder() override;

 protected:
  torch::Tensor pixel_params(const torch::Tensor& z, const torch::Tensor&) override {
    return decoder_.forward(z.flatten(-2));
  }

 private:
  torch::nn::AnyModule encoder_, decoder_;
  torch::Tensor step_;  // training steps taken (a buffer: resumes keep the schedule)
};

}  // namespace tame
