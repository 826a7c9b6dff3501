#include "tame/models/flows/transforms.h"

#include <cmath>

namespace tame::flows {

torch::Tensor sum_per_example(const torch::Tensor& t) { return t.flatten(1).sum(1); }

torch::Tensor bounded_log_scale(const torch::Tensor& raw, double bound) {
  return bound > 0 ? bound * torch::tanh(raw / bound) : raw;
}

namespace {
torch::Tensor zeros_for(const torch::Tensor& x) { return torch::zeros({x.size(0)}, x.options()); }
}  // namespace

Composite::Composite(std::vector<TransformPtr> parts) : parts_(std::move(parts)) {
  for (size_t i = 0; i < parts_.size(); ++i) register_module(std::to_string(i), parts_[i]);
}

Result Composite::forward(const torch::Tensor& x) {
  torch::Tensor y = x, total = zeros_for(x);
  for (auto& p : parts_) {
    auto [out, ld] = p->forward(y);
    y = out;
    total = total + ld;
  }
  return {y, total};
}

Result Composite::inverse(const torch::Tensor& y) {
  torch::Tensor x = y, total = zeros_for(y);
  for (auto it = parts_.rbegin(); it != parts_.rend(); ++it) {
    auto [out, ld] = (*it)->inverse(x);
    x = out;
    total = total + ld;
  }
  return {x, total};
}

Inverse::Inverse(TransformPtr t) : t_(std::move(t)) { register_module("inner", t_); }

torch::Tensor coupling_mask(MaskKind kind, int64_t channels, int64_t height, int64_t width,
                            bool parity) {
  torch::Tensor m;
  if (kind == MaskKind::kCheckerboard) {
    auto r = torch::arange(height).view({height, 1}), c = torch::arange(width).view({1, width});
    m = ((r + c) % 2).to(torch::kFloat).unsqueeze(0).expand({channels, height, width}).clone();
  } else {
    TORCH_CHECK(channels >= 2, "a channel mask needs at least 2 channels, got ", channels);
    m = torch::zeros({channels, height, width});
    m.slice(0, 0, channels / 2).fill_(1.0);
  }
  return parity ? 1.0 - m : m;
}

ConditionerImpl::ConditionerImpl(int64_t in_channels, int64_t hidden, int64_t out_channels) {
  namespace nn = torch::nn;
  c1_ = register_module("c1", nn::Conv2d(nn::Conv2dOptions(in_channels, hidden, 3).padding(1)));
  c2_ = register_module("c2", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 1)));
  c3_ = register_module("c3", nn::Conv2d(nn::Conv2dOptions(hidden, out_channels, 3).padding(1)));
  torch::NoGradGuard g;
  c3_->weight.zero_();
  c3_->bias.zero_();
}

torch::Tensor ConditionerImpl::forward(const torch::Tensor& x) {
  return c3_(torch::relu(c2_(torch::relu(c1_(x)))));
}

AdditiveCoupling::AdditiveCoupling(int64_t channels, int64_t height, int64_t width, MaskKind kind,
                                   bool parity, int64_t hidden) {
  mask_ = register_buffer("mask", coupling_mask(kind, channels, height, width, parity));
  net_ = register_module("net", Conditioner(channels, hidden, channels));
}

Result AdditiveCoupling::forward(const torch::Tensor& x) {
  auto t = net_(x * mask_) * (1.0 - mask_);
  return {x + t, zeros_for(x)};
}

Result AdditiveCoupling::inverse(const torch::Tensor& y) {
  auto t = net_(y * mask_) * (1.0 - mask_);
  return {y - t, zeros_for(y)};
}

DiagonalScale::DiagonalScale(int64_t channels, int64_t height, int64_t width) {
  log_scale = register_parameter("log_scale", torch::zeros({channels, height, width}));
}

Result DiagonalScale::forward(const torch::Tensor& x) {
  return {x * torch::exp(log_scale), log_scale.sum().expand({x.size(0)})};
}

Result DiagonalScale::inverse(const torch::Tensor& y) {
  return {y * torch::exp(-log_scale), (-log_scale.sum()).expand({y.size(0)})};
}

AffineCoupling::AffineCoupling(int64_t channels, int64_t height, int64_t width, MaskKind kind,
                               bool parity, int64_t hidden, double scale_bound)
    : bound_(scale_bound) {
  TORCH_CHECK(scale_bound >= 0, "scale_bound must be >= 0, got ", scale_bound);
  mask_ = register_buffer("mask", coupling_mask(kind, channels, height, width, parity));
  net_ = register_module("net", Conditioner(channels, hidden, 2 * channels));
}

std::pair<torch::Tensor, torch::Tensor> AffineCoupling::scale_shift(const torch::Tensor& xa) {
  auto st = net_(xa).chunk(2, 1);
  auto s = bounded_log_scale(st[0], bound_);
  return {s * (1.0 - mask_), st[1] * (1.0 - mask_)};  // the conditioning half is left as it is
}

Result AffineCoupling::forward(const torch::Tensor& x) {
  auto [s, t] = scale_shift(x * mask_);
  return {x * torch::exp(s) + t, sum_per_example(s)};
}

Result AffineCoupling::inverse(const torch::Tensor& y) {
  auto [s, t] = scale_shift(y * mask_);
  return {(y - t) * torch::exp(-s), -sum_per_example(s)};
}

Result Squeeze::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  TORCH_CHECK(H % 2 == 0 && W % 2 == 0, "squeeze needs an even height and width, got ", H, "x", W);
  auto y = x.reshape({B, C, H / 2, 2, W / 2, 2})
               .permute({0, 1, 3, 5, 2, 4})
               .reshape({B, 4 * C, H / 2, W / 2});
  return {y, zeros_for(x)};
}

Result Squeeze::inverse(const torch::Tensor& y) {
  const int64_t B = y.size(0), C = y.size(1) / 4, H = y.size(2), W = y.size(3);
  TORCH_CHECK(y.size(1) % 4 == 0, "unsqueeze needs a multiple of 4 channels, got ", y.size(1));
  auto x = y.reshape({B, C, 2, 2, H, W}).permute({0, 1, 4, 2, 5, 3}).reshape({B, C, 2 * H, 2 * W});
  return {x, zeros_for(y)};
}

ActNorm::ActNorm(int64_t channels) {
  bias = register_parameter("bias", torch::zeros({channels}));
  log_scale = register_parameter("log_scale", torch::zeros({channels}));
  initialized = register_buffer("initialized", torch::zeros({}));
}

Result ActNorm::forward(const torch::Tensor& x) {
  if (initialized.item<float>() == 0.0f) {
    // Data-dependent initialization: this first batch leaves with zero mean and
    // unit variance per channel.
    torch::NoGradGuard g;
    auto mean = x.mean({0, 2, 3}), std = x.std({0, 2, 3}, /*unbiased=*/false);
    bias.copy_(-mean);
    log_scale.copy_(-torch::log(std + 1e-6));
    initialized.fill_(1.0);
  }
  const int64_t C = x.size(1), HW = x.size(2) * x.size(3);
  auto y = (x + bias.view({1, C, 1, 1})) * torch::exp(log_scale).view({1, C, 1, 1});
  return {y, (HW * log_scale.sum()).expand({x.size(0)})};
}

Result ActNorm::inverse(const torch::Tensor& y) {
  const int64_t C = y.size(1), HW = y.size(2) * y.size(3);
  auto x = y * torch::exp(-log_scale).view({1, C, 1, 1}) - bias.view({1, C, 1, 1});
  return {x, (-HW * log_scale.sum()).expand({y.size(0)})};
}

InvConv1x1::InvConv1x1(int64_t channels) {
  // A random rotation, factored once: W = P L U with unit-diagonal L.
  auto q = std::get<0>(torch::linalg_qr(torch::randn({channels, channels})));
  auto [p, l, u] = torch::linalg_lu(q);
  auto d = torch::diagonal(u);
  p_ = register_buffer("p", p);
  sign_ = register_buffer("sign", torch::sign(d));
  lower_mask_ = register_buffer("lower_mask", torch::tril(torch::ones({channels, channels}), -1));
  lower_ = register_parameter("lower", l * lower_mask_);
  upper_ = register_parameter("upper", torch::triu(u, 1));
  log_s = register_parameter("log_s", torch::log(torch::abs(d)));
}

torch::Tensor InvConv1x1::weight() const {
  const int64_t C = log_s.size(0);
  auto eye = torch::eye(C, log_s.options());
  auto l = lower_ * lower_mask_ + eye;
  auto u = upper_ * lower_mask_.t() + torch::diag(sign_ * torch::exp(log_s));
  return torch::matmul(p_, torch::matmul(l, u));
}

Result InvConv1x1::forward(const torch::Tensor& x) {
  const int64_t C = x.size(1), HW = x.size(2) * x.size(3);
  auto y = torch::nn::functional::conv2d(x, weight().view({C, C, 1, 1}));
  return {y, (HW * log_s.sum()).expand({x.size(0)})};
}

Result InvConv1x1::inverse(const torch::Tensor& y) {
  const int64_t C = y.size(1), HW = y.size(2) * y.size(3);
  auto x = torch::nn::functional::conv2d(y, torch::inverse(weight()).view({C, C, 1, 1}));
  return {x, (-HW * log_s.sum()).expand({y.size(0)})};
}

Split::Split(int64_t channels, TransformPtr inner, bool learned_prior, int64_t hidden,
             double scale_bound)
    : keep_(channels / 2), inner_(std::move(inner)), bound_(scale_bound) {
  TORCH_CHECK(channels >= 2, "a split needs at least 2 channels, got ", channels);
  register_module("inner", inner_);
  if (learned_prior)
    net_ = register_module("prior", Conditioner(keep_, hidden, 2 * (channels - keep_)));
}

std::pair<torch::Tensor, torch::Tensor> Split::prior(const torch::Tensor& x1) {
  auto ms = net_(x1).chunk(2, 1);
  return {ms[0], bounded_log_scale(ms[1], bound_)};
}

Result Split::forward(const torch::Tensor& x) {
  auto x1 = x.slice(1, 0, keep_), x2 = x.slice(1, keep_);
  auto [y1, logdet] = inner_->forward(x1);
  if (net_) {
    auto [mu, logs] = prior(x1);
    x2 = (x2 - mu) * torch::exp(-logs);
    logdet = logdet - sum_per_example(logs);
  }
  return {torch::cat({y1, x2}, 1), logdet};
}

Result Split::inverse(const torch::Tensor& y) {
  auto y1 = y.slice(1, 0, keep_), x2 = y.slice(1, keep_);
  auto [x1, logdet] = inner_->inverse(y1);
  if (net_) {
    auto [mu, logs] = prior(x1);
    x2 = x2 * torch::exp(logs) + mu;
    logdet = logdet + sum_per_example(logs);
  }
  return {torch::cat({x1, x2}, 1), logdet};
}

Result Logit::forward(const torch::Tensor& x) {
  auto p = alpha_ + (1.0 - 2.0 * alpha_) * x;
  auto y = torch::log(p) - torch::log1p(-p);
  return {y, sum_per_example(std::log(1.0 - 2.0 * alpha_) - torch::log(p) - torch::log1p(-p))};
}

Result Logit::inverse(const torch::Tensor& y) {
  auto p = torch::sigmoid(y);
  auto x = (p - alpha_) / (1.0 - 2.0 * alpha_);
  return {x, sum_per_example(torch::log(p) + torch::log1p(-p) - std::log(1.0 - 2.0 * alpha_))};
}

}  // namespace tame::flows
