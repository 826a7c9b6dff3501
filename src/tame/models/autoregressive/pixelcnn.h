// PixelCNN — van den Oord, Kalchbrenner & Kavukcuoglu 2016, "Pixel Recurrent
// Neural Networks" (Sections 3.4-3.5, Figure 5).
//
// Implements: a 7x7 mask-A input convolution, residual blocks of
// 1x1 (2h->h) -> 3x3 mask B (h->h) -> 1x1 (h->2h) with ReLUs, two 1x1 mask-B
// output layers and a 256-way (or K-way) softmax per sub-pixel, with R->G->B
// channel masking for C = 3 (see nn/masked_conv.h).
// Leaves out: conditioning, the PixelRNN's LSTM layers, dropout.
// Known limitation (by design, and tested): stacked masked convolutions have a
// blind spot above and to the right of the current pixel; Gated PixelCNN fixes it.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/nn/masked_conv.h"

namespace tame {

struct PixelCNNOptions {
  int64_t hidden = 32;
  int64_t blocks = 8;
  int64_t input_kernel = 7;
  int64_t kernel = 3;
  int64_t out_hidden = 64;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"hidden", "h: channels inside a residual block (2h between blocks)"},
        {"blocks", "residual mask-B blocks after the input layer"},
        {"input_kernel", "size of the mask-A input convolution"},
        {"kernel", "size of the mask-B convolution inside each block"},
        {"out_hidden", "width of the 1x1 layer before the K-way logits"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PixelCNNOptions, hidden, blocks, input_kernel,
                                                kernel, out_hidden)

class PixelCNNBlockImpl : public torch::nn::Module {
 public:
  PixelCNNBlockImpl(int64_t hidden, int64_t kernel, int64_t colors);
  torch::Tensor forward(const torch::Tensor& x);  // returns x + F(x)
  PixelCNNEngine::Block to_steps() const;

 private:
  MaskedConv2d reduce_{nullptr}, conv_{nullptr}, expand_{nullptr};
};
TORCH_MODULE(PixelCNNBlock);

class PixelCNN : public AutoregressiveModel {
 public:
  PixelCNN(const PixelCNNOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  std::unique_ptr<StepEngine> step_engine() override;
  const PixelCNNOptions options;

 private:
  MaskedConv2d input_{nullptr}, out1_{nullptr}, out2_{nullptr};
  torch::nn::ModuleList blocks_;
};

}  // namespace tame
