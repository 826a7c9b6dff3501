// Masked convolutions for autoregressive image models, with R->G->B ordering.
//
// Order: pixels in raster order; within a pixel, channel (colour) 0 before 1
// before 2. Each feature map carries a colour: feature i belongs to colour
// i % C (C = image channels). A weight from input feature j to output feature
// i at kernel offset (r, s) is kept when (r, s) precedes the kernel's centre in
// raster order, or when (r, s) is the centre and
//   mask A:  colour(j) <  colour(i)   (the input layer: a sub-pixel never sees itself)
//   mask B:  colour(j) <= colour(i)   (later layers: features of the same colour are allowed)
// and dropped otherwise. Mask kNone keeps every weight (the Gated PixelCNN's
// vertical stack, whose causality comes from its geometry).
//
// The centre need not be the middle of the kernel: padding places the output
// pixel at the centre (top = centre_row, bottom = kh-1-centre_row, likewise
// left/right), which gives the Gated PixelCNN's 1xk horizontal and (k/2+1)xk
// vertical convolutions from the same layer. The mask is applied in forward()
// (weight * mask), never by editing weights in place, so optimizer state and
// checkpoints see the true parameters.
#pragma once

#include <torch/torch.h>

#include <utility>
#include <vector>

#include "tame/nn/step_kernels.h"

namespace tame {

enum class Mask { kA, kB, kNone };

/// The 0/1 mask of shape [out, in, kh, kw] described above.
torch::Tensor make_mask(int64_t out_channels, int64_t in_channels, int64_t kh, int64_t kw,
                        int64_t center_row, int64_t center_col, int64_t colors, Mask mask);

struct MaskedConv2dOptions {
  MaskedConv2dOptions(int64_t in_channels, int64_t out_channels, int64_t kernel)
      : in_channels_(in_channels),
        out_channels_(out_channels),
        kernel_h_(kernel),
        kernel_w_(kernel),
        center_row_(kernel / 2),
        center_col_(kernel / 2) {}
  TORCH_ARG(int64_t, in_channels);
  TORCH_ARG(int64_t, out_channels);
  TORCH_ARG(int64_t, kernel_h);
  TORCH_ARG(int64_t, kernel_w);
  TORCH_ARG(int64_t, center_row);  // output pixel's row inside the kernel
  TORCH_ARG(int64_t, center_col);  // output pixel's column inside the kernel
  TORCH_ARG(Mask, mask) = Mask::kB;
  TORCH_ARG(int64_t, colors) = 1;  // image channels C
  TORCH_ARG(bool, bias) = true;
};

class MaskedConv2dImpl : public torch::nn::Cloneable<MaskedConv2dImpl> {
 public:
  explicit MaskedConv2dImpl(MaskedConv2dOptions options);
  void reset() override;
  torch::Tensor forward(const torch::Tensor& x);
  MaskedConv2dOptions options;
  torch::Tensor weight, bias, mask;
};
TORCH_MODULE(MaskedConv2d);

/// The layer for the step engine (nn/step_kernels.h): the taps whose mask is not
/// all zero, in raster order, and weight * mask as one Dense over them.
steps::Conv to_step_conv(const MaskedConv2dImpl& conv);
/// A 1x1 layer as a Dense.
steps::Dense to_step_dense(const MaskedConv2dImpl& conv);
/// A plain convolution over every kernel position (raster order) as one
/// Dense, row (ky kw + kx) C + c holding position (ky, kx) of input channel c:
/// the Dense of steps::Feedforward::add_conv, and for a 1x1 layer a Dense.
steps::Dense to_step_dense(const torch::nn::Conv2dImpl& conv);
/// A convolution's weight [out][in][kh][kw] at the kernel positions (row,
/// column), in order, and its bias (zeros when undefined) as one Dense: row
/// t * in + c holds position t, input channel c.
steps::Dense kernel_dense(const torch::Tensor& weight, const torch::Tensor& bias,
                          const std::vector<std::pair<int64_t, int64_t>>& positions);
/// A linear layer as a Dense (input-major weights).
steps::Dense to_step_dense(const torch::nn::LinearImpl& linear);

/// Shifts feature maps down by one row (zero row on top, last row dropped):
/// the Gated PixelCNN feeds its vertical stack to the horizontal one this way.
torch::Tensor shift_down(const torch::Tensor& x);

}  // namespace tame
