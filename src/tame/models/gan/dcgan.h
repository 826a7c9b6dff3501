// DCGAN — Radford, Metz & Chintala 2015, "Unsupervised Representation Learning
// with Deep Convolutional Generative Adversarial Networks"; the non-saturating
// loss of Goodfellow et al. 2014.
//
// Implements: a generator z ~ N(0, I) -> linear -> 2h x H/4 x W/4 -> two
// stride-2 transposed 4x4 convolutions (batch norm and ReLU between) -> tanh
// image in [-1, 1]; a discriminator of two stride-2 4x4 convolutions (leaky
// ReLU 0.2, batch norm on the second) and a linear logit. Each has its own
// Adam (beta1 = 0.5, the paper's); one training step updates the discriminator
// on real and generated batches, then the generator on -log D(G(z)).
// A GAN has no likelihood: bound() is kNone and tame eval reports no bits/dim.
// Samples are G(z) mapped to the nearest of the K levels; temperature T draws
// z ~ N(0, T^2).
// Leaves out: the paper's 64x64 four-layer stacks (28x28 images need two).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/image_model.h"

namespace tame {

struct DcganOptions {
  int64_t latent = 64;
  int64_t hidden = 32;
  double beta1 = 0.5;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"latent", "dimensions of z"},
        {"hidden", "h: channels of the wider convolutions are 2h"},
        {"beta1", "Adam's first-moment decay for both networks"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(DcganOptions, latent, hidden, beta1)

class Dcgan : public ImageModel {
 public:
  Dcgan(const DcganOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  Optimizers make_optimizers(double lr) override;  // "generator", "discriminator"
  StepResult train_step(const torch::Tensor& x, Optimizers& optimizers,
                        const StepContext& context) override;

  /// G(z) in [-1, 1]: [n, C, H, W].
  torch::Tensor generate(const torch::Tensor& z);
  /// D's logit of "real" for images on the [-1, 1] scale: [B].
  torch::Tensor discriminate(const torch::Tensor& x_unit);
  const DcganOptions options;

 private:
  torch::nn::Sequential generator_{nullptr}, discriminator_{nullptr};
  torch::nn::Linear g_in_{nullptr}, d_out_{nullptr};
};

}  // namespace tame
