// Gated PixelCNN — van den Oord, Kalchbrenner, Vinyals, Espeholt, Graves &
// Kavukcuoglu 2016, "Conditional Image Generation with PixelCNN Decoders".
//
// Implements: a vertical stack of (k/2+1) x k convolutions that sees every
// pixel in the rows above (rows r-k/2..r, fed to the horizontal stack shifted
// down one row so it holds rows < r only), a horizontal stack of 1 x (k/2+1)
// masked convolutions over the current row (mask A in the input layer, mask B
// after, with R->G->B channel masking), the vertical-to-horizontal 1x1 link,
// gated units tanh(W_f * x) . sigmoid(W_g * x) in both stacks, a 1x1 residual
// connection in the horizontal stack, and a 1x1 output head with a K-way
// softmax per sub-pixel. Together the two stacks have no blind spot.
// Conditional (given = G > 0, the bottom prior of VQ-VAE-2, Razavi et al.
// 2019): the first G channels of each image are given, not modelled; each is
// embedded (a table of `hidden` features per level), four 3x3 convolutions
// dilated 1, 2, 4 and 8 over the embeddings see 31 x 31 given positions around
// each one (the whole of a 14 x 14 map; no mask: nothing there is drawn), and
// a 1x1 convolution of their output, s, adds V_l s to the pre-activations of
// both stacks in every layer l (the paper's spatial conditioning map). The
// stacks and the head see the C - G other channels only.
// Leaves out: class conditioning, skip connections to the output.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/nn/masked_conv.h"

namespace tame {

struct GatedPixelCNNOptions {
  int64_t hidden = 32;
  int64_t layers = 8;
  int64_t input_kernel = 7;
  int64_t kernel = 3;
  int64_t out_hidden = 64;
  int64_t given = 0;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"hidden", "n: feature maps in each stack (2n before each gate); a multiple of C - given"},
        {"layers", "gated layers after the input layer"},
        {"input_kernel", "k of the input layer: (k/2+1) x k vertical, 1 x (k/2+1) horizontal"},
        {"kernel", "k of the later layers"},
        {"out_hidden", "width of the 1x1 layer before the K-way logits"},
        {"given",
         "G: the first G channels condition the others (set by data that has them, e.g. "
         "codes:RUN:bottom)"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GatedPixelCNNOptions, hidden, layers, input_kernel,
                                                kernel, out_hidden, given)

/// One gated layer: (v, h) -> (v', h').
class GatedLayerImpl : public torch::nn::Module {
 public:
  GatedLayerImpl(int64_t in_channels, int64_t hidden, int64_t kernel, int64_t colors, bool first);
  /// cond: undefined, or the layer's conditioning [B, 4n, H, W] (vertical 2n, horizontal 2n).
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& v, const torch::Tensor& h,
                                                  const torch::Tensor& cond = {});
  GatedPixelCNNEngine::Layer to_steps() const;

 private:
  bool first_;
  MaskedConv2d vconv_{nullptr}, hconv_{nullptr}, v2h_{nullptr}, hout_{nullptr};
};
TORCH_MODULE(GatedLayer);

class GatedPixelCNN : public AutoregressiveModel {
 public:
  GatedPixelCNN(const GatedPixelCNNOptions& options, ImageShape shape, int64_t levels);
  /// The conditional model's logits of the modelled channels given the first G.
  torch::Tensor logits(const torch::Tensor& x) override;
  /// Every channel scaled to [-1, 1]; a conditional model reads its given
  /// channels' levels back from their scaled values.
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  std::unique_ptr<StepEngine> step_engine() override;
  int64_t given_channels() const override { return options.given; }
  /// Every layer's conditioning, [n, H, W, 4 n layers] (the engine's context).
  torch::Tensor condition_context(const torch::Tensor& given) override;
  const GatedPixelCNNOptions options;

 private:
  /// The stacks on the modelled channels (scaled), with the conditioning
  /// [B, 4 n layers, H, W] of condition() or undefined.
  torch::Tensor network(const torch::Tensor& x_unit, const torch::Tensor& cond);
  /// Every layer's conditioning from the given channels' levels [B, G, H, W].
  torch::Tensor condition(const torch::Tensor& given);
  torch::nn::ModuleList layers_;
  MaskedConv2d out1_{nullptr}, out2_{nullptr};
  torch::nn::Embedding embed_{nullptr};
  torch::nn::Sequential cond_{nullptr};
};

/// tanh(first half) * sigmoid(second half) along the channel dimension.
torch::Tensor gate(const torch::Tensor& x);

}  // namespace tame
