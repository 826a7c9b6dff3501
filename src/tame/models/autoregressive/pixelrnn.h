// PixelRNN — van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent
// Neural Networks" (Sections 3.1-3.4).
//
// Implements: a 7x7 mask-A input convolution to h feature maps, then `layers`
// LSTM layers of h units with a residual connection each (out = x + 1x1(h_t)),
// two 1x1 mask-B layers and a K-way softmax per sub-pixel, R->G->B masking
// throughout (feature i carries colour i % C, so h is a multiple of C).
//  - layer=row-lstm: the states of a row from the row above. Input-to-state is
//    a 1 x (k/2+1) mask-B convolution along the row (columns j-k/2..j), state-
//    to-state a 1 x k convolution of the previous row's states (columns
//    j-k/2..j+k/2); the receptive field is the triangle above the pixel.
//  - layer=diagonal-bilstm: the skew (row r shifted right by r) turns each
//    diagonal into a column; a 1x1 mask-B input-to-state convolution and a
//    2x1 state-to-state convolution over the previous column (the states of
//    (r-1, c) and (r, c-1)) run column by column, then the unskew. The right-
//    to-left direction is the same on the mirrored image (its own weights, no
//    mask: it is shifted down one row before it is added to the left-to-right
//    states, so it reads rows above only). Together they see every earlier
//    pixel but one (tested): the row above's last pixel, whose value enters
//    the layer input only on the current row to the right of (i, j) (the
//    input convolution masks it out on its own row), is out of reach while
//    j + input_kernel/2 < W - 1; for C = 3, its last colour. States in the
//    skew's padding are zero.
// LSTM gates i, f, o (sigmoid) and g (tanh); c = f c' + i g, h = o tanh(c);
// the forget gates start with bias 1.
// Leaves out: the multi-scale PixelRNN, the 2h-wide residual stream with its
// 1x1 up-projection (here the stream and the states are both h wide), learned
// skip connections to the output, conditioning.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/models/autoregressive/pixelrnn_engine.h"
#include "tame/nn/masked_conv.h"

namespace tame {

struct PixelRNNOptions {
  std::string layer = "row-lstm";
  int64_t hidden = 32;
  int64_t layers = 4;
  int64_t input_kernel = 7;
  int64_t kernel = 3;
  int64_t out_hidden = 64;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"layer", "row-lstm | diagonal-bilstm"},
        {"hidden",
         "h: feature maps of the residual stream and units of each LSTM; a multiple "
         "of C"},
        {"layers", "LSTM layers after the input layer"},
        {"input_kernel", "size of the mask-A input convolution"},
        {"kernel", "k of the Row LSTM: 1 x k state-to-state, 1 x (k/2+1) input-to-state"},
        {"out_hidden", "width of the 1x1 layer before the K-way logits"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PixelRNNOptions, layer, hidden, layers,
                                                input_kernel, kernel, out_hidden)

/// Row r of x [B, C, H, W] moved right by r: [B, C, H, W + H - 1], zero elsewhere.
torch::Tensor skew(const torch::Tensor& x);
/// The inverse: [B, C, H, W + H - 1] -> [B, C, H, W], out(r, c) = x(r, c + r).
torch::Tensor unskew(const torch::Tensor& x);

/// One LSTM layer of either kind: x [B, h, H, W] -> x + out(states).
class PixelRNNLayerImpl : public torch::nn::Module {
 public:
  PixelRNNLayerImpl(bool diagonal, int64_t hidden, int64_t kernel, int64_t colors);
  torch::Tensor forward(const torch::Tensor& x);
  PixelRNNEngine::Layer to_steps() const;

 private:
  torch::Tensor rows(const torch::Tensor& x);  // Row LSTM states [B, h, H, W]
  // One direction of the Diagonal BiLSTM, left to right: states [B, h, H, W].
  torch::Tensor diagonal(const torch::Tensor& x, MaskedConv2d& is, MaskedConv2d& ss);

  bool diagonal_;
  MaskedConv2d is_{nullptr}, ss_{nullptr}, is_back_{nullptr}, ss_back_{nullptr}, out_{nullptr};
};
TORCH_MODULE(PixelRNNLayer);

class PixelRNN : public AutoregressiveModel {
 public:
  PixelRNN(const PixelRNNOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  std::unique_ptr<StepEngine> step_engine() override;
  const PixelRNNOptions options;

 private:
  MaskedConv2d input_{nullptr}, out1_{nullptr}, out2_{nullptr};
  torch::nn::ModuleList layers_;
};

}  // namespace tame
