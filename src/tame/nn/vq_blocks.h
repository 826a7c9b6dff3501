// The convolutional blocks of the VQ autoencoders (VQ-VAE, VQ-VAE-2, VQGAN):
// the paper's residual block and nearest-neighbour 2x upsampling.
#pragma once

#include <torch/torch.h>

namespace tame {

/// x + conv1x1(relu(conv3x3(relu(x)))), the VQ-VAE paper's residual block.
class ResBlockImpl : public torch::nn::Module {
 public:
  explicit ResBlockImpl(int64_t channels) {
    namespace nn = torch::nn;
    c3_ = register_module("c3", nn::Conv2d(nn::Conv2dOptions(channels, channels, 3).padding(1)));
    c1_ = register_module("c1", nn::Conv2d(nn::Conv2dOptions(channels, channels, 1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return x + c1_(torch::relu(c3_(torch::relu(x))));
  }
  torch::nn::Conv2d c3_{nullptr}, c1_{nullptr};
};
TORCH_MODULE(ResBlock);

/// Nearest-neighbour upsampling by 2 in height and width.
class Upsample2Impl : public torch::nn::Module {
 public:
  torch::Tensor forward(const torch::Tensor& x) {
    namespace F = torch::nn::functional;
    return F::interpolate(x, F::InterpolateFuncOptions()
                                 .scale_factor(std::vector<double>{2.0, 2.0})
                                 .mode(torch::kNearest));
  }
};
TORCH_MODULE(Upsample2);

}  // namespace tame
