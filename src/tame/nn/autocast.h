// Mixed precision for a training step's forward pass (`tame train --precision
// bf16`): LibTorch's autocast, switched on for one scope on one device type.
//
// Under it, convolutions and matrix products run in bfloat16 (oneDNN's
// AVX-512 BF16 / AMX kernels on a CPU that has them, tensor cores on CUDA)
// and autocast keeps its fp32 list (losses, reductions) in fp32. The weights,
// their gradients and the optimizer state stay fp32: only the forward's
// activations are rounded. Backward runs outside the scope, in the dtypes the
// forward recorded. Evaluation, sampling and the codec never enter it.
#pragma once

#include <torch/torch.h>

#include <string>

namespace tame {

/// "fp32" -> kFloat (no autocast), "bf16" -> kBFloat16; anything else is an Error.
torch::ScalarType parse_precision(const std::string& name);
const char* precision_name(torch::ScalarType dtype);  // the inverse

/// While alive, autocast to `dtype` on `device`'s type; kFloat: autocast off
/// (what code that must stay exact under an enclosing scope uses, e.g. the
/// codebook's distances). Restores the thread's previous state when it ends;
/// nests.
class AutocastScope {
 public:
  AutocastScope(torch::ScalarType dtype, const torch::Device& device);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool changed_ = false, nested_ = false, cuda_ = false, was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kFloat;
};

/// t as fp32 if it holds a lower floating type (what autocast's bf16 products
/// return), else t itself. Densities, log-determinants and their sums take
/// their parameters through it, so that under --precision bf16 only the
/// network's products are rounded, never a likelihood.
torch::Tensor full_precision(const torch::Tensor& t);

}  // namespace tame
