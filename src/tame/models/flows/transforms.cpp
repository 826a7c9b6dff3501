#include "tame/models/flows/transforms.h"

#include <cmath>

#include "tame/codec/bits_back.h"  // det_exp_double
#include "tame/error.h"
#include "tame/nn/autocast.h"
#include "tame/nn/masked_conv.h"  // to_step_dense
#include "tame/ranks.h"

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
  return full_precision(c3_(torch::relu(c2_(torch::relu(c1_(x))))));  // scales sum in fp32
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
    // unit variance per channel. The moments come from sums, so that a
    // data-parallel run takes those of the global batch (sum_over_ranks_).
    torch::NoGradGuard g;
    auto xd = x.to(torch::kDouble);
    auto n = torch::full({1}, static_cast<double>(x.size(0) * x.size(2) * x.size(3)), xd.options());
    auto sum = xd.sum({0, 2, 3}), squares = xd.pow(2).sum({0, 2, 3});
    sum_over_ranks_({n, sum, squares});
    auto mean = sum / n, std = (squares / n - mean.pow(2)).clamp_min(0).sqrt();
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

// ------------------------------------------------- the coder's programs

namespace {

FlowStep step_of(FlowStep::Kind kind, ImageShape in) {
  return flow_step(kind, in.channels, in.height, in.width);
}

std::vector<uint8_t> mask_bytes(const torch::Tensor& mask) {
  auto m = mask.detach().to(torch::kCPU, torch::kFloat).contiguous();
  std::vector<uint8_t> out(m.numel());
  for (int64_t i = 0; i < m.numel(); ++i) out[i] = m.data_ptr<float>()[i] != 0.0f;
  return out;
}

std::vector<double> doubles(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

// Squeeze's permutation of a [C, H, W] state: entry n of the squeezed
// [4C, H/2, W/2] state comes from entry from[n].
std::vector<int64_t> squeeze_from(ImageShape in) {
  const int64_t C = in.channels, H = in.height, W = in.width, h = H / 2, w = W / 2;
  if (H % 2 != 0 || W % 2 != 0) throw Error("squeeze needs an even height and width");
  std::vector<int64_t> from(C * H * W);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t dy = 0; dy < 2; ++dy)
      for (int64_t dx = 0; dx < 2; ++dx)
        for (int64_t i = 0; i < h; ++i)
          for (int64_t j = 0; j < w; ++j)
            from[((c * 4 + dy * 2 + dx) * h + i) * w + j] = (c * H + 2 * i + dy) * W + 2 * j + dx;
  return from;
}

// A coupling step over the whole prefix: its net reads the masked state.
FlowStep coupling_step(ImageShape in, const torch::Tensor& mask, const Conditioner& net,
                       bool additive, double bound) {
  FlowStep s = step_of(FlowStep::Kind::kCoupling, in);
  s.mask = mask_bytes(mask);
  s.reads = in.channels;
  s.additive = additive;
  s.bound = bound;
  s.net = net->feedforward({in.height, in.width, in.channels});
  return s;
}

}  // namespace

ImageShape Transform::add_steps(FlowProgram&, ImageShape) const {
  throw Error("this flow has a transform without a form for the codec");
}

ImageShape Composite::add_steps(FlowProgram& p, ImageShape in) const {
  for (const auto& part : parts_) in = part->add_steps(p, in);
  return in;
}

ImageShape Inverse::add_steps(FlowProgram& p, ImageShape in) const {
  if (!std::dynamic_pointer_cast<Squeeze>(t_))
    throw Error("this flow inverts a transform the codec has no form for");
  // The squeeze's permutation of a [C, 2h, 2w] prefix, reversed.
  const ImageShape out{in.channels / 4, 2 * in.height, 2 * in.width};
  const std::vector<int64_t> squeeze = squeeze_from(out);
  FlowStep s = step_of(FlowStep::Kind::kPermute, out);
  s.from.resize(squeeze.size());
  for (size_t i = 0; i < squeeze.size(); ++i) s.from[squeeze[i]] = static_cast<int64_t>(i);
  p.steps.push_back(std::move(s));
  return out;
}

steps::Feedforward ConditionerImpl::feedforward(steps::MapShape in) const {
  steps::Feedforward f(in);
  f.add_conv(to_step_dense(*c1_), 3, 1, 1);
  f.add_relu();
  f.add_conv(to_step_dense(*c2_), 1, 1, 0);
  f.add_relu();
  f.add_conv(to_step_dense(*c3_), 3, 1, 1);
  return f;
}

ImageShape AdditiveCoupling::add_steps(FlowProgram& p, ImageShape in) const {
  p.steps.push_back(coupling_step(in, mask_, net_, /*additive=*/true, 0.0));
  return in;
}

ImageShape DiagonalScale::add_steps(FlowProgram& p, ImageShape in) const {
  FlowStep s = step_of(FlowStep::Kind::kScale, in);
  for (double ls : doubles(log_scale)) s.a.push_back(det_exp_double(ls));
  s.t.assign(s.a.size(), 0.0);
  p.steps.push_back(std::move(s));
  return in;
}

ImageShape AffineCoupling::add_steps(FlowProgram& p, ImageShape in) const {
  p.steps.push_back(coupling_step(in, mask_, net_, /*additive=*/false, bound_));
  return in;
}

ImageShape Squeeze::add_steps(FlowProgram& p, ImageShape in) const {
  FlowStep s = step_of(FlowStep::Kind::kPermute, in);
  s.from = squeeze_from(in);
  p.steps.push_back(std::move(s));
  return {4 * in.channels, in.height / 2, in.width / 2};
}

ImageShape ActNorm::add_steps(FlowProgram& p, ImageShape in) const {
  FlowStep s = step_of(FlowStep::Kind::kScale, in);
  const std::vector<double> b = doubles(bias), ls = doubles(log_scale);
  const int64_t P = in.height * in.width;
  for (int64_t c = 0; c < in.channels; ++c) {  // y = (x + b) e^ls
    const double a = det_exp_double(ls[c]);
    for (int64_t q = 0; q < P; ++q) {
      s.a.push_back(a);
      s.t.push_back(b[c] * a);
    }
  }
  p.steps.push_back(std::move(s));
  return in;
}

ImageShape InvConv1x1::add_steps(FlowProgram& p, ImageShape in) const {
  // y = P L U x per pixel: the rows of U (first to last: each reads only the
  // channels after it, not yet changed), the rows of L (last to first), then P.
  const int64_t C = in.channels, HW = in.height * in.width;
  const std::vector<double> l = doubles(lower_ * lower_mask_),
                            u = doubles(upper_ * lower_mask_.t()), sign = doubles(sign_),
                            ls = doubles(log_s), perm = doubles(p_);
  for (int64_t i = 0; i < C; ++i) {
    FlowStep s = step_of(FlowStep::Kind::kRow, in);
    s.row = i;
    s.w.assign(C, 0.0);
    for (int64_t j = i + 1; j < C; ++j) s.w[j] = u[i * C + j];
    s.w[i] = sign[i] * det_exp_double(ls[i]);
    p.steps.push_back(std::move(s));
  }
  for (int64_t i = C; i-- > 0;) {
    FlowStep s = step_of(FlowStep::Kind::kRow, in);
    s.row = i;
    s.w.assign(C, 0.0);
    for (int64_t j = 0; j < i; ++j) s.w[j] = l[i * C + j];
    s.w[i] = 1.0;
    p.steps.push_back(std::move(s));
  }
  FlowStep s = step_of(FlowStep::Kind::kPermute, in);
  s.from.resize(C * HW);
  for (int64_t c = 0; c < C; ++c) {
    int64_t d = 0;
    while (d < C && perm[c * C + d] == 0.0) ++d;  // y_c = v_d where P[c][d] = 1
    if (d == C) throw Error("the 1x1 convolution's P is not a permutation");
    for (int64_t q = 0; q < HW; ++q) s.from[c * HW + q] = d * HW + q;
  }
  p.steps.push_back(std::move(s));
  return in;
}

ImageShape Split::add_steps(FlowProgram& p, ImageShape in) const {
  if (net_) {  // x2 -> (x2 - mu(x1)) e^-logs(x1), from x1 before the inner flow changes it
    FlowStep s = step_of(FlowStep::Kind::kCoupling, in);
    s.reads = keep_;
    s.first = keep_;
    s.shift_first = true;
    s.inverse = true;
    s.bound = bound_;
    s.net = net_->feedforward({in.height, in.width, keep_});
    p.steps.push_back(std::move(s));
  }
  inner_->add_steps(p, {keep_, in.height, in.width});
  return in;
}

ImageShape Logit::add_steps(FlowProgram& p, ImageShape in) const {
  FlowStep s = step_of(FlowStep::Kind::kLogit, in);
  s.alpha = alpha_;
  p.steps.push_back(std::move(s));
  return in;
}

}  // namespace tame::flows
