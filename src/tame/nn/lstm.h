// One LSTM step over whole feature maps, for recurrences that run a row or a
// column at a time (PixelRNN). On CPU float tensors it is one fused kernel
// forward and one backward (the step kernels' lstm_cell), where the
// composite form costs a dozen elementwise operators each way and most of the
// PixelRNN's training time; elsewhere (CUDA, other types) it is the
// composite form.
#pragma once

#include <torch/torch.h>

#include <utility>

namespace tame {

/// gates [B, 4h, ...] (i | f | o | g along dim 1), c_prev [B, h, ...]: returns
/// (h, c) with c = sigmoid(f) c_prev + sigmoid(i) tanh(g), h = sigmoid(o)
/// tanh(c), both times mask when mask is defined (float [...], the trailing
/// dimensions: positions where the state is held at zero).
std::pair<torch::Tensor, torch::Tensor> lstm_step(const torch::Tensor& gates,
                                                  const torch::Tensor& c_prev,
                                                  const torch::Tensor& mask = {});

}  // namespace tame
