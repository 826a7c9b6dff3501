#include "tame/nn/autocast.h"

#include <ATen/autocast_mode.h>

#include "tame/error.h"

namespace tame {

torch::ScalarType parse_precision(const std::string& name) {
  if (name == "fp32") return torch::kFloat;
  if (name == "bf16") return torch::kBFloat16;
  throw Error("unknown precision '" + name + "' (use fp32 or bf16)");
}

const char* precision_name(torch::ScalarType dtype) {
  return dtype == torch::kBFloat16 ? "bf16" : "fp32";
}

AutocastScope::AutocastScope(torch::ScalarType dtype, const torch::Device& device)
    : cuda_(device.is_cuda()) {
  const bool enable = dtype != torch::kFloat;
  was_enabled_ = cuda_ ? at::autocast::is_enabled() : at::autocast::is_cpu_enabled();
  was_dtype_ =
      cuda_ ? at::autocast::get_autocast_gpu_dtype() : at::autocast::get_autocast_cpu_dtype();
  if (!enable && !was_enabled_) return;  // fp32 already
  changed_ = true;
  if (enable) {
    if (cuda_)
      at::autocast::set_autocast_gpu_dtype(dtype);
    else
      at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::increment_nesting();
    nested_ = true;
  }
  if (cuda_)
    at::autocast::set_enabled(enable);
  else
    at::autocast::set_cpu_enabled(enable);
}

AutocastScope::~AutocastScope() {
  if (!changed_) return;
  // The outermost scope drops the low-precision copies of the weights autocast cached.
  if (nested_ && at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  if (cuda_) {
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
  } else {
    at::autocast::set_cpu_enabled(was_enabled_);
    at::autocast::set_autocast_cpu_dtype(was_dtype_);
  }
}

torch::Tensor full_precision(const torch::Tensor& t) {
  const auto type = t.scalar_type();
  return type == torch::kBFloat16 || type == torch::kHalf ? t.to(torch::kFloat) : t;
}

}  // namespace tame
