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
// Leaves out: class/latent conditioning h, skip connections to the output.
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
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"hidden", "n: feature maps in each stack (2n before each gate); a multiple of C"},
        {"layers", "gated layers after the input layer"},
        {"input_kernel", "k of the input layer: (k/2+1) x k vertical, 1 x (k/2+1) horizontal"},
        {"kernel", "k of the later layers"},
        {"out_hidden", "width of the 1x1 layer before the K-way logits"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GatedPixelCNNOptions, hidden, layers, input_kernel,
                                                kernel, out_hidden)

/// One gated layer: (v, h) -> (v', h').
class GatedLayerImpl : public torch::nn::Module {
 public:
  GatedLayerImpl(int64_t in_channels, int64_t hidden, int64_t kernel, int64_t colors, bool first);
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& v, const torch::Tensor& h);
  GatedPixelCNNEngine::Layer to_steps() const;

 private:
  bool first_;
  MaskedConv2d vconv_{nullptr}, hconv_{nullptr}, v2h_{nullptr}, hout_{nullptr};
};
TORCH_MODULE(GatedLayer);

class GatedPixelCNN : public AutoregressiveModel {
 public:
  GatedPixelCNN(const GatedPixelCNNOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  std::unique_ptr<StepEngine> step_engine() override;
  const GatedPixelCNNOptions options;

 private:
  torch::nn::ModuleList layers_;
  MaskedConv2d out1_{nullptr}, out2_{nullptr};
};

/// tanh(first half) * sigmoid(second half) along the channel dimension.
torch::Tensor gate(const torch::Tensor& x);

}  // namespace tame
