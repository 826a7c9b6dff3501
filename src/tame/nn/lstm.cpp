#include "tame/nn/lstm.h"

#include <ATen/Parallel.h>

#include "tame/nn/step_kernels.h"

namespace tame {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// The autograd inputs must be defined tensors: "no mask" travels as an empty one.
bool has(const torch::Tensor& mask) { return mask.numel() > 0; }

void apply_mask(torch::Tensor& x, const torch::Tensor& mask) {
  if (has(mask)) x.mul_(mask);
}

class LstmStep : public torch::autograd::Function<LstmStep> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& gates_in,
                               const torch::Tensor& c_prev_in, const torch::Tensor& mask) {
    auto gates = gates_in.contiguous();
    auto c_prev = c_prev_in.contiguous();
    const int64_t B = gates.size(0), n = c_prev.numel() / B;
    auto h = torch::empty_like(c_prev), c = torch::empty_like(c_prev);
    const float* g = gates.data_ptr<float>();
    const float* cp = c_prev.data_ptr<float>();
    float* hp = h.data_ptr<float>();
    float* cc = c.data_ptr<float>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        steps::lstm_cell(g + b * 4 * n, cp + b * n, n, cc + b * n, hp + b * n);
    });
    apply_mask(h, mask);
    apply_mask(c, mask);
    ctx->save_for_backward({gates, c_prev, mask});
    return {h, c};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grads) {
    auto saved = ctx->get_saved_variables();
    const auto& gates = saved[0];
    const auto& c_prev = saved[1];
    const auto& mask = saved[2];
    auto prepare = [&](const torch::Tensor& g) {
      if (!g.defined()) return g;
      auto d = has(mask) ? g * mask : g;
      return d.contiguous();
    };
    auto dh = prepare(grads[0]), dc = prepare(grads[1]);
    const int64_t B = gates.size(0), n = c_prev.numel() / B;
    auto dgates = torch::empty_like(gates), dc_prev = torch::empty_like(c_prev);
    const float* g = gates.data_ptr<float>();
    const float* cp = c_prev.data_ptr<float>();
    const float* dhp = dh.defined() ? dh.data_ptr<float>() : nullptr;
    const float* dcp = dc.defined() ? dc.data_ptr<float>() : nullptr;
    float* dg = dgates.data_ptr<float>();
    float* dcpr = dc_prev.data_ptr<float>();
    at::parallel_for(0, B, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b)
        steps::lstm_cell_backward(g + b * 4 * n, cp + b * n, n, dhp ? dhp + b * n : nullptr,
                                  dcp ? dcp + b * n : nullptr, dg + b * 4 * n, dcpr + b * n);
    });
    return {dgates, dc_prev, torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> lstm_step(const torch::Tensor& gates,
                                                  const torch::Tensor& c_prev,
                                                  const torch::Tensor& mask) {
  TORCH_CHECK(gates.size(1) == 4 * c_prev.size(1) && gates.numel() == 4 * c_prev.numel(),
              "lstm_step: gates must hold 4 gates per state");
  if (gates.is_cpu() && gates.scalar_type() == torch::kFloat &&
      c_prev.scalar_type() == torch::kFloat) {
    auto out = LstmStep::apply(gates, c_prev, mask.defined() ? mask : torch::empty({0}));
    return {out[0], out[1]};
  }
  auto q = gates.chunk(4, 1);
  auto c = torch::sigmoid(q[1]) * c_prev + torch::sigmoid(q[0]) * torch::tanh(q[3]);
  auto h = torch::sigmoid(q[2]) * torch::tanh(c);
  if (mask.defined()) return {h * mask, c * mask};
  return {h, c};
}

}  // namespace tame
