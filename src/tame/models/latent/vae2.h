// VAE and IWAE with two stochastic layers — Burda, Grosse & Salakhutdinov
// 2015, "Importance Weighted Autoencoders" (their second architecture; the
// layered model of Kingma & Welling 2013 and Rezende et al. 2014).
//
// Implements: the generative model
//   p(x, z1, z2) = N(z2; 0, I) N(z1; mu_p(z2), sigma_p(z2)^2) p(x | z1)
// and the recognition model q(z1, z2 | x) = N(z1; mu(x), sigma(x)^2)
// N(z2; mu(z1), sigma(z1)^2), each conditional an MLP of two tanh layers
// (x <-> z1 through `hidden1` units, z1 <-> z2 through `hidden2`) giving a mean
// and a log-variance (clamped as the VAE's is). The defaults are the paper's:
// 784-100-100-(z1: 100)-50-50-(z2: 50). p(x | z1) is one of dist/'s pixel
// likelihoods (Bernoulli for binarized data). A draw z is the pair
// concatenated, [z1, z2]; the KL has no closed form, so the ELBO uses the
// draw's log q - log p (LatentModel::kl's default), and the k-sample bound
// (k > 1, `iwae2`) is the training objective of the paper's IWAE. Bits-back coding chains the two
// layers (codec/bits_back.h): pop z1 with q(z1|x), pop z2 with q(z2|z1), push
// x with p(x|z1), z1 with p(z1|z2) and z2 with p(z2).
// Differs from the paper: Adam with tame's schedule, not its 3^i-epoch
// passes; any image shape and channel count (the first MLP reads C H W values).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/codec/bits_back.h"
#include "tame/models/latent/latent_model.h"

namespace tame {

struct Vae2Options {
  int64_t latent1 = 100;
  int64_t latent2 = 50;
  int64_t hidden1 = 100;
  int64_t hidden2 = 50;
  std::string likelihood = "auto";
  double beta = 1.0;
  int64_t k = 1;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"latent1", "units of the first stochastic layer z1 (next to x)"},
        {"latent2", "units of the second stochastic layer z2 (the top, prior N(0, I))"},
        {"hidden1", "units of each of the two tanh layers between x and z1, both ways"},
        {"hidden2", "units of each of the two tanh layers between z1 and z2, both ways"},
        {"likelihood", kPixelLikelihoodHelp},
        {"beta", "weight of log q(z|x) - log p(z) in the objective (1 = the bound)"},
        {"k", "importance samples of the training objective (1 = the ELBO; IWAE: k > 1)"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(Vae2Options, latent1, latent2, hidden1, hidden2,
                                                likelihood, beta, k)

class Vae2 : public LatentModel {
 public:
  Vae2(const Vae2Options& options, ImageShape shape, int64_t levels);
  int64_t latent_dims() const override { return options.latent1 + options.latent2; }

  Posterior encode(const torch::Tensor& x) override;  // q(z1|x): {mu, logvar}, [B, latent1] each
  torch::Tensor draw(const Posterior& q, int64_t n, bool reparameterized) override;
  torch::Tensor log_q(const Posterior& q, const torch::Tensor& z) override;
  torch::Tensor log_prior(const torch::Tensor& z) override;
  torch::Tensor prior_draw(int64_t n) override;
  /// z1 at q's mean and z2 at q(z2|z1)'s mean given it.
  torch::Tensor posterior_mode(const Posterior& q) override;
  torch::Tensor posterior_mean(const Posterior& q) override { return posterior_mode(q); }
  static constexpr bool kCodec = true;
  std::unique_ptr<ImageCoder> coder() override;

  const Vae2Options options;

 protected:
  torch::Tensor pixel_params(const torch::Tensor& z, const torch::Tensor&) override;

 private:
  // A Gaussian's {mu, clamped logvar} from a network's 2n outputs [..., 2n].
  static Posterior gaussian(const torch::Tensor& h);
  // q(z2 | z1) and p(z1 | z2) for z [..., latent] (any leading dimensions).
  Posterior up(const torch::Tensor& z1);
  Posterior down(const torch::Tensor& z2);
  torch::Tensor z1_of(const torch::Tensor& z) const;
  torch::Tensor z2_of(const torch::Tensor& z) const;

  Mlp encoder_{nullptr}, up_{nullptr}, down_{nullptr}, decoder_{nullptr};
};

}  // namespace tame
