// VQGAN — Esser, Rombach & Ommer 2021, "Taming Transformers for
// High-Resolution Image Synthesis".
//
// Implements: the VQ-VAE autoencoder of vqvae.h (its codebook, straight-through
// gradient and codebook updates) trained with two more terms, then a prior
// over its code maps ("compress, then generate"; `transformer` on
// `codes:RUN` is the paper's):
//  - a perceptual loss: the distance between the activations of a trained
//    classifier (`tame classifier`, nn/classifier.h; the option `perceptual`
//    names its file) on x and on the decoder's mean image, each layer's
//    activations normalized over channels, squared differences summed over
//    channels and averaged over positions, summed over layers (the form of
//    LPIPS without its learned weights);
//  - a patch discriminator (two stride-2 4x4 convolutions, leaky ReLU, batch
//    norm, a 3x3 convolution to one logit per patch) on the mean image, with
//    the hinge loss, switched on after `disc_start` steps; its weight is the
//    paper's adaptive
//      lambda = disc_weight * ||grad_L L_rec|| / (||grad_L L_G|| + 1e-4),
//    L the decoder's last layer, clipped to [0, 1e4].
// The pixel likelihood stays a real one (Categorical, Bernoulli or
// discretized logistic), so -log p(x | z_q) is in nats and the model has the
// bounds of vqvae.h; L_rec is that NLL per dimension (beside the codebook
// terms) plus perceptual_weight times the perceptual distance. Two Adams
// (beta = (0.5, 0.9), the paper's): "autoencoder" and "discriminator". The
// perceptual network is a training-time instrument: it is read from its file
// when the optimizers are made (at the start and on every resume), not kept
// in the checkpoint.
// Leaves out: the paper's VGG features (no ImageNet network exists offline),
// its larger networks and attention in the autoencoder, sliding-window sampling.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/latent/vqvae.h"
#include "tame/nn/classifier.h"

namespace tame {

struct VqGanOptions : VqVaeOptions {
  std::string perceptual;  // a classifier file; "" = no perceptual term
  double perceptual_weight = 1.0;
  int64_t disc_hidden = 32;
  int64_t disc_start = 1000;
  double disc_weight = 0.8;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help();
};
void to_json(nlohmann::json& j, const VqGanOptions& o);
void from_json(const nlohmann::json& j, VqGanOptions& o);

class VqGan : public VqVae {
 public:
  VqGan(const VqGanOptions& options, ImageShape shape, int64_t levels);
  Optimizers make_optimizers(double lr) override;  // "autoencoder", "discriminator"
  StepResult train_step(const torch::Tensor& x, Optimizers& optimizers,
                        const StepContext& context) override;

  /// The discriminator's logits per patch of images on the [-1, 1] scale.
  torch::Tensor discriminate(const torch::Tensor& x_unit);
  /// The perceptual distance of two image batches in [0, 1], per image [B]
  /// (zero without a perceptual network).
  torch::Tensor perceptual_distance(const torch::Tensor& a, const torch::Tensor& b);
  /// The adaptive weight of the adversarial term (the header's formula).
  double adaptive_weight(const torch::Tensor& rec_loss, const torch::Tensor& gan_loss);

  const VqGanOptions gan_options;

 private:
  torch::nn::Sequential discriminator_{nullptr};
  FidClassifier perceptual_{nullptr};
};

}  // namespace tame
