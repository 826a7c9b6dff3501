// PixelCNN++ — Salimans, Karpathy, Chen & Kingma 2017, "PixelCNN++: Improving
// the PixelCNN with Discretized Logistic Mixture Likelihood and Other
// Modifications".
//
// Implements: the discretized logistic mixture likelihood with the linear
// R -> G -> B coupling of its means (dist/pixel_likelihood.h), so the network
// conditions each pixel on the pixels before it only and the mixture handles
// the channels within a pixel; two streams, down-shifted convolutions (u: the
// rows above) and down-right-shifted ones (ul: the rows above and the pixels
// to the left), started from the image with a channel of ones; gated residual
// blocks x + a * sigmoid(b) over concat_elu, with dropout, ul's blocks also
// reading u; three resolutions (28 -> 14 -> 7 on 28x28: strided shifted
// convolutions down, shifted transposed convolutions up), the down pass
// reading every output of the up pass through a skip connection (one more
// block per resolution on the way down); a 1x1 head to the mixture's
// M (1 + 2C + C(C-1)/2) parameters. Any height and width: the maps of the
// lower resolutions are ceil(H / 2) and ceil(H / 4) high, and each upsampled
// map is cropped to its skip's size.
// Cached steps (pixelcnn_pp_engine.h): every layer at its own resolution,
// each position computed once when first read, the network once per pixel;
// the engine samples and codes.
// weight_norm=true: weight normalization (Salimans & Kingma 2016) of every
// convolution, the gains starting at the weights' norms (so the network
// starts as without it; the paper's data-dependent initialization is left
// out).
// The exponential moving average of the weights that the paper evaluates with
// is the training loop's, for every model: `tame train --ema 0.9995`.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/autoregressive_model.h"

namespace tame {

struct PixelCnnPPOptions {
  int64_t filters = 32;
  int64_t resnets = 2;
  int64_t mixtures = 5;
  double dropout = 0.1;
  bool weight_norm = false;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"filters", "feature maps of both streams"},
        {"resnets", "gated residual blocks per resolution on the way up (one more down)"},
        {"mixtures", "components M of the discretized logistic mixture"},
        {"dropout", "dropout inside each gated residual block (training only)"},
        {"weight_norm",
         "weight normalization of every convolution (w = g v / |v|, one gain per output "
         "channel, starting at w = v)"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PixelCnnPPOptions, filters, resnets, mixtures,
                                                dropout, weight_norm)

class PixelCnnPP : public AutoregressiveModel {
 public:
  PixelCnnPP(const PixelCnnPPOptions& options, ImageShape shape, int64_t levels);
  /// The mixture's parameters of every pixel: [B, M (1 + 2C + C(C-1)/2), H, W],
  /// pixel (i, j)'s from the pixels before it in raster order only; input
  /// scaled to [-1, 1]. Tests take gradients through it.
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  /// Each sub-pixel's conditional log-probabilities given the sub-pixels before
  /// it (the mixture reweighted by x's earlier channels in the pixel): [B, K,
  /// C, H, W].
  torch::Tensor logits(const torch::Tensor& x) override;
  /// The mixture's joint log-likelihood of each pixel, summed.
  torch::Tensor nll(const torch::Tensor& x) override;
  std::unique_ptr<StepEngine> step_engine() override;
  const PixelCnnPPOptions options;

 private:
  struct Net;
  std::shared_ptr<Net> net_;
};

}  // namespace tame
