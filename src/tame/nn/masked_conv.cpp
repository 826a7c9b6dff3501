#include "tame/nn/masked_conv.h"

#include <cmath>

namespace tame {

torch::Tensor make_mask(int64_t out_channels, int64_t in_channels, int64_t kh, int64_t kw,
                        int64_t center_row, int64_t center_col, int64_t colors, Mask mask) {
  TORCH_CHECK(center_row >= 0 && center_row < kh && center_col >= 0 && center_col < kw,
              "mask centre (", center_row, ", ", center_col, ") outside a ", kh, "x", kw,
              " kernel");
  auto m = torch::zeros({out_channels, in_channels, kh, kw});
  if (mask == Mask::kNone) return m.fill_(1.0);
  auto acc = m.accessor<float, 4>();
  for (int64_t r = 0; r < kh; ++r)
    for (int64_t s = 0; s < kw; ++s) {
      bool before = r < center_row || (r == center_row && s < center_col);
      bool centre = r == center_row && s == center_col;
      for (int64_t o = 0; o < out_channels; ++o)
        for (int64_t i = 0; i < in_channels; ++i) {
          bool keep = before;
          if (centre) {
            int64_t co = o % colors, ci = i % colors;
            keep = mask == Mask::kA ? ci < co : ci <= co;
          }
          acc[o][i][r][s] = keep ? 1.0f : 0.0f;
        }
    }
  return m;
}

MaskedConv2dImpl::MaskedConv2dImpl(MaskedConv2dOptions options_) : options(std::move(options_)) {
  reset();
}

void MaskedConv2dImpl::reset() {
  const auto& o = options;
  weight = register_parameter(
      "weight", torch::empty({o.out_channels(), o.in_channels(), o.kernel_h(), o.kernel_w()}));
  // PyTorch's default Conv2d initialisation (Kaiming-uniform with a = sqrt(5)).
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (o.bias()) {
    double bound =
        1.0 / std::sqrt(static_cast<double>(o.in_channels() * o.kernel_h() * o.kernel_w()));
    bias = register_parameter("bias", torch::empty({o.out_channels()}).uniform_(-bound, bound));
  }
  mask = register_buffer("mask",
                         make_mask(o.out_channels(), o.in_channels(), o.kernel_h(), o.kernel_w(),
                                   o.center_row(), o.center_col(), o.colors(), o.mask()));
}

torch::Tensor MaskedConv2dImpl::forward(const torch::Tensor& x) {
  const auto& o = options;
  int64_t top = o.center_row(), bottom = o.kernel_h() - 1 - o.center_row();
  int64_t left = o.center_col(), right = o.kernel_w() - 1 - o.center_col();
  auto w = o.mask() == Mask::kNone ? weight : weight * mask;
  namespace F = torch::nn::functional;
  if (top == bottom && left == right)
    return F::conv2d(x, w, F::Conv2dFuncOptions().bias(bias).padding({top, left}));
  auto padded = F::pad(x, F::PadFuncOptions({left, right, top, bottom}));
  return F::conv2d(padded, w, F::Conv2dFuncOptions().bias(bias));
}

steps::Dense kernel_dense(const torch::Tensor& weight, const torch::Tensor& bias,
                          const std::vector<std::pair<int64_t, int64_t>>& positions) {
  auto w = weight.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t cout = w.size(0), cin = w.size(1), T = static_cast<int64_t>(positions.size());
  steps::Dense d;
  d.in = T * cin;
  d.out = cout;
  d.w.assign(d.in * cout, 0.0f);
  auto acc = w.accessor<float, 4>();
  for (int64_t t = 0; t < T; ++t) {
    const auto [r, s] = positions[t];
    for (int64_t ci = 0; ci < cin; ++ci)
      for (int64_t co = 0; co < cout; ++co) d.w[(t * cin + ci) * cout + co] = acc[co][ci][r][s];
  }
  d.b.assign(cout, 0.0f);
  if (bias.defined()) {
    auto b = bias.detach().to(torch::kCPU, torch::kFloat).contiguous();
    std::copy(b.data_ptr<float>(), b.data_ptr<float>() + cout, d.b.begin());
  }
  return d;
}

steps::Conv to_step_conv(const MaskedConv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  const auto& o = conv.options;
  auto kept = conv.mask.to(torch::kCPU).sum(at::IntArrayRef{0, 1});  // [kh, kw]
  steps::Conv out;
  std::vector<std::pair<int64_t, int64_t>> positions;
  for (int64_t r = 0; r < o.kernel_h(); ++r)
    for (int64_t s = 0; s < o.kernel_w(); ++s)
      if (kept[r][s].item<float>() > 0) {
        out.taps.push_back({r - o.center_row(), s - o.center_col()});
        positions.emplace_back(r, s);
      }
  out.dense = kernel_dense(conv.weight * conv.mask, conv.bias, positions);
  return out;
}

steps::Dense to_step_dense(const torch::nn::Conv2dImpl& conv) {
  torch::NoGradGuard no_grad;
  const int64_t kh = conv.weight.size(2), kw = conv.weight.size(3);
  std::vector<std::pair<int64_t, int64_t>> positions;
  for (int64_t r = 0; r < kh; ++r)
    for (int64_t s = 0; s < kw; ++s) positions.emplace_back(r, s);
  return kernel_dense(conv.weight, conv.bias, positions);
}

steps::Dense to_step_dense(const torch::nn::LinearImpl& linear) {
  torch::NoGradGuard no_grad;
  auto w = linear.weight.detach().to(torch::kCPU, torch::kFloat).t().contiguous();  // [in][out]
  steps::Dense d;
  d.in = w.size(0);
  d.out = w.size(1);
  d.w.assign(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
  if (linear.bias.defined()) {
    auto b = linear.bias.detach().to(torch::kCPU, torch::kFloat).contiguous();
    d.b.assign(b.data_ptr<float>(), b.data_ptr<float>() + b.numel());
  } else {
    d.b.assign(d.out, 0.0f);
  }
  return d;
}

steps::Dense to_step_dense(const MaskedConv2dImpl& conv) {
  TORCH_CHECK(conv.options.kernel_h() == 1 && conv.options.kernel_w() == 1,
              "to_step_dense: expected a 1x1 layer");
  auto c = to_step_conv(conv);
  TORCH_CHECK(c.taps.size() == 1, "to_step_dense: the 1x1 layer is masked out entirely");
  return std::move(c.dense);
}

torch::Tensor shift_down(const torch::Tensor& x) {
  namespace F = torch::nn::functional;
  auto padded = F::pad(x, F::PadFuncOptions({0, 0, 1, 0}));
  return padded.slice(2, 0, x.size(2));
}

}  // namespace tame
