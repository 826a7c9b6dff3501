// VLAE — Chen et al. 2016, "Variational Lossy Autoencoder".
//
// Implements: the VAE's encoder and Gaussian latent with an autoregressive
// decoder p(x|z) = prod_i p(x_i | x_<i, z): a small PixelCNN (a mask-A k x k
// convolution, then `pixel_layers` mask-B 3x3 convolutions, then mask-B 1x1
// layers to K-way logits, R -> G -> B within a pixel) whose every layer also
// receives a feature map computed from z by the VAE's convolutional decoder.
// With a small receptive field the decoder can model local texture only, so
// global structure must go through z (the lossy code); with a large one it can
// model everything alone and the KL collapses towards zero. The receptive field
// is set by input_kernel and pixel_layers: the defaults (3, 1) see 2 rows up;
// e.g. --set input_kernel=7 --set pixel_layers=8 sees most of a 28x28 image.
// Differs from the paper: no inverse autoregressive flow prior, one stochastic
// layer, the plain (non-gated) PixelCNN.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/latent/vae.h"
#include "tame/nn/masked_conv.h"

namespace tame {

struct VlaeOptions {
  int64_t latent = 32;
  int64_t hidden = 32;
  int64_t pixel_hidden = 32;
  int64_t input_kernel = 3;
  int64_t pixel_layers = 1;
  double beta = 1.0;
  int64_t k = 1;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"latent", "latent dimensions"},
        {"hidden", "encoder / z-decoder channels"},
        {"pixel_hidden", "channels of the PixelCNN decoder"},
        {"input_kernel", "the mask-A convolution's size"},
        {"pixel_layers", "mask-B 3x3 layers after the mask-A input convolution"},
        {"beta", "weight of the KL term"},
        {"k", "importance samples of the training objective"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VlaeOptions, latent, hidden, pixel_hidden,
                                                input_kernel, pixel_layers, beta, k)

class Vlae : public Vae {
 public:
  Vlae(const VlaeOptions& options, ImageShape shape, int64_t levels);
  const VlaeOptions vlae_options;
  /// Bits-back coding with x coded through the PixelCNN's step engine,
  /// conditioned on the fixed-order form of z's feature map and projections.
  std::unique_ptr<ImageCoder> coder() override;

 protected:
  torch::Tensor decoder_context(const torch::Tensor& z) override { return context_(z); }
  torch::Tensor pixel_params(const torch::Tensor& hz, const torch::Tensor& x) override;
  bool autoregressive_decoder() const override { return true; }
  /// The masked layers as a step engine (ConditionedPixelCNNEngine), and z's
  /// features with their per-layer 1x1 projections as its context map.
  DecoderEngine decoder_engine(const torch::Tensor& hz) override;
  /// The masked layers as a step engine, without a context.
  std::unique_ptr<StepEngine> pixel_engine() const;

 private:
  ConvDecoder context_{nullptr};  // z -> [pixel_hidden, H, W]
  MaskedConv2d input_{nullptr};
  std::vector<MaskedConv2d> layers_;
  std::vector<torch::nn::Conv2d> conditions_;  // 1x1 projections of the z features, one per layer
  MaskedConv2d out1_{nullptr}, out2_{nullptr};
};

}  // namespace tame
