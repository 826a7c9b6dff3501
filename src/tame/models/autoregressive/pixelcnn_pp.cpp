#include "tame/models/autoregressive/pixelcnn_pp.h"

#include <vector>

#include "tame/dist/likelihood.h"
#include "tame/dist/pixel_likelihood.h"
#include "tame/models/autoregressive/pixelcnn_pp_engine.h"
#include "tame/nn/masked_conv.h"

namespace tame {

namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;
using Term = PixelCnnPPEngine::Term;
using Node = PixelCnnPPEngine::Node;

enum class Shift { kDown, kDownRight };

// The image moved down one row (a zero row on top) or right one column.
torch::Tensor down_shift(const torch::Tensor& x) {
  return F::pad(x, F::PadFuncOptions({0, 0, 1, 0})).slice(2, 0, x.size(2));
}
torch::Tensor right_shift(const torch::Tensor& x) {
  return F::pad(x, F::PadFuncOptions({1, 0, 0, 0})).slice(3, 0, x.size(3));
}
torch::Tensor concat_elu(const torch::Tensor& x) { return F::elu(torch::cat({x, -x}, 1)); }

// Weight normalization (Salimans & Kingma 2016) of a layer's weight v:
// w = g v / ||v||, one gain per output channel (dimension `out` of v). An
// undefined g (the option off) leaves w = v.
torch::Tensor normalized(const torch::Tensor& v, const torch::Tensor& g, int64_t out) {
  if (!g.defined()) return v;
  std::vector<int64_t> dims, shape(v.dim(), 1);
  for (int64_t d = 0; d < v.dim(); ++d)
    if (d != out) dims.push_back(d);
  shape[out] = v.size(out);
  return v * (g.view(shape) / v.pow(2).sum(dims, true).sqrt());
}
// The gains that make w = v: ||v|| per output channel.
torch::Tensor unit_gain(const torch::Tensor& v, int64_t out) {
  std::vector<int64_t> dims;
  for (int64_t d = 0; d < v.dim(); ++d)
    if (d != out) dims.push_back(d);
  return v.detach().pow(2).sum(dims).sqrt().clone();
}
// Every kernel position in raster order.
std::vector<std::pair<int64_t, int64_t>> all_positions(int64_t kh, int64_t kw) {
  std::vector<std::pair<int64_t, int64_t>> p;
  for (int64_t r = 0; r < kh; ++r)
    for (int64_t c = 0; c < kw; ++c) p.emplace_back(r, c);
  return p;
}

// A kh x kw convolution whose output (i, j) reads rows i - kh + 1 .. i and
// columns j - (kw-1)/2 .. j + (kw-1)/2 (down) or j - kw + 1 .. j (down-right).
class ShiftedConvImpl : public nn::Module {
 public:
  ShiftedConvImpl(int64_t in, int64_t out, int64_t kh, int64_t kw, Shift shift, bool weight_norm,
                  int64_t stride = 1)
      : pad_(shift == Shift::kDown ? std::vector<int64_t>{(kw - 1) / 2, (kw - 1) / 2, kh - 1, 0}
                                   : std::vector<int64_t>{kw - 1, 0, kh - 1, 0}),
        stride_(stride) {
    conv_ =
        register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, {kh, kw}).stride(stride)));
    if (weight_norm) g_ = register_parameter("g", unit_gain(conv_->weight, 0));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return F::conv2d(F::pad(x, F::PadFuncOptions(pad_)), normalized(conv_->weight, g_, 0),
                     F::Conv2dFuncOptions().bias(conv_->bias).stride(stride_));
  }
  /// The engine's term: output (i, j) reads input (stride i + dy, stride j + dx)
  /// for the kernel's positions in raster order.
  Term to_term(std::vector<int64_t> inputs, bool concat_elu) const {
    Term t;
    t.inputs = std::move(inputs);
    t.concat_elu = concat_elu;
    t.stride = stride_;
    steps::Conv c;
    const auto& w = conv_->weight;
    const auto positions = all_positions(w.size(2), w.size(3));
    for (auto [ky, kx] : positions) c.taps.push_back({ky - pad_[2], kx - pad_[0]});
    c.dense = kernel_dense(normalized(w, g_, 0), conv_->bias, positions);
    t.convs.push_back(std::move(c));
    return t;
  }

 private:
  std::vector<int64_t> pad_;
  int64_t stride_;
  nn::Conv2d conv_{nullptr};
  torch::Tensor g_;
};
TORCH_MODULE(ShiftedConv);

// Its transposed form, doubling the resolution: a stride-2 transposed
// convolution cropped so that the same rows and columns are read.
class ShiftedDeconvImpl : public nn::Module {
 public:
  ShiftedDeconvImpl(int64_t in, int64_t out, int64_t kh, int64_t kw, Shift shift, bool weight_norm)
      : kh_(kh), kw_(kw), shift_(shift) {
    deconv_ = register_module(
        "deconv", nn::ConvTranspose2d(
                      nn::ConvTranspose2dOptions(in, out, {kh, kw}).stride(2).output_padding(1)));
    if (weight_norm) g_ = register_parameter("g", unit_gain(deconv_->weight, 1));
  }
  /// Doubles x's size, then keeps the first `height` rows and `width` columns
  /// (the skip's size, which may be one less).
  torch::Tensor forward(const torch::Tensor& x, int64_t height, int64_t width) {
    const int64_t x0 = column_offset();
    auto y = F::conv_transpose2d(
        x, normalized(deconv_->weight, g_, 1),
        F::ConvTranspose2dFuncOptions().bias(deconv_->bias).stride(2).output_padding(1));
    return y.slice(2, 0, height).slice(3, x0, x0 + width);
  }
  /// The engine's term: output (i, j) of parity (i % 2, j % 2) reads input
  /// (i / 2 + dy, j / 2 + dx) through kernel position (a, b), where 2 (i / 2 +
  /// dy) + a = i and 2 (j / 2 + dx) + b = j + column_offset().
  Term to_term(std::vector<int64_t> inputs) const {
    Term t;
    t.inputs = std::move(inputs);
    t.up = true;
    // [in, out, kh, kw] as [out, in, kh, kw]
    const auto w = normalized(deconv_->weight, g_, 1).transpose(0, 1);
    const int64_t x0 = column_offset();
    for (int64_t pr = 0; pr < 2; ++pr)
      for (int64_t pc = 0; pc < 2; ++pc) {
        steps::Conv c;
        std::vector<std::pair<int64_t, int64_t>> kernel;  // (a, b) of each tap
        for (auto [a, b] : all_positions(kh_, kw_))
          if ((pr - a) % 2 == 0 && (pc + x0 - b) % 2 == 0) {
            c.taps.push_back({(pr - a) / 2, (pc + x0 - b) / 2});
            kernel.emplace_back(a, b);
          }
        c.dense = kernel_dense(w, deconv_->bias, kernel);
        t.convs.push_back(std::move(c));
      }
    return t;
  }

 private:
  // The transposed convolution's column that output column 0 is: (kw - 1) / 2
  // for the down stream (centred), 0 for the down-right one.
  int64_t column_offset() const { return shift_ == Shift::kDown ? (kw_ - 1) / 2 : 0; }
  int64_t kh_, kw_;
  Shift shift_;
  nn::ConvTranspose2d deconv_{nullptr};
  torch::Tensor g_;
};
TORCH_MODULE(ShiftedDeconv);

// x + a * sigmoid(b), (a, b) from two shifted convolutions over concat_elu,
// the second after dropout; `skip` channels of another map join the first.
class GatedResnetImpl : public nn::Module {
 public:
  GatedResnetImpl(int64_t filters, Shift shift, int64_t skip, double dropout, bool weight_norm)
      : filters_(filters), dropout_(dropout) {
    const int64_t kw = shift == Shift::kDown ? 3 : 2;
    in_ = register_module("in", ShiftedConv(2 * filters, filters, 2, kw, shift, weight_norm));
    if (skip > 0) {
      skip_ = register_module("skip", nn::Conv2d(nn::Conv2dOptions(2 * skip, filters, 1)));
      if (weight_norm) skip_g_ = register_parameter("skip_g", unit_gain(skip_->weight, 0));
    }
    out_ = register_module("out", ShiftedConv(2 * filters, 2 * filters, 2, kw, shift, weight_norm));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& a = {}) {
    auto c = in_(concat_elu(x));
    if (a.defined())
      c = c + F::conv2d(concat_elu(a), normalized(skip_->weight, skip_g_, 0),
                        F::Conv2dFuncOptions().bias(skip_->bias));
    c = F::dropout(concat_elu(c), F::DropoutFuncOptions().p(dropout_).training(is_training()));
    auto ab = out_(c).chunk(2, 1);
    return x + ab[0] * torch::sigmoid(ab[1]);
  }
  /// Appends the block's two engine nodes (its inner map, then its output)
  /// at `level` for input node x and skip nodes `a`; returns the output's index.
  int64_t to_nodes(std::vector<Node>& nodes, int64_t level, int64_t x,
                   const std::vector<int64_t>& a) const {
    const int64_t F = filters_;
    Node inner{level, F, {in_->to_term({x}, true)}, -1};
    if (!a.empty()) {
      Term t;
      t.inputs = a;
      t.concat_elu = true;
      t.convs.push_back(
          {{{0, 0}}, kernel_dense(normalized(skip_->weight, skip_g_, 0), skip_->bias, {{0, 0}})});
      inner.terms.push_back(std::move(t));
    }
    nodes.push_back(std::move(inner));
    nodes.push_back({level, F, {out_->to_term({static_cast<int64_t>(nodes.size()) - 1}, true)}, x});
    return static_cast<int64_t>(nodes.size()) - 1;
  }

 private:
  int64_t filters_;
  double dropout_;
  ShiftedConv in_{nullptr}, out_{nullptr};
  nn::Conv2d skip_{nullptr};
  torch::Tensor skip_g_;
};
TORCH_MODULE(GatedResnet);

constexpr int64_t kResolutions = 3;

}  // namespace

struct PixelCnnPP::Net : nn::Module {
  Net(const PixelCnnPPOptions& o, ImageShape s) : resnets(o.resnets), filters(o.filters) {
    const int64_t C = s.channels, Fm = o.filters;
    const bool wn = o.weight_norm;
    u0 = register_module("u0", ShiftedConv(C + 1, Fm, 2, 3, Shift::kDown, wn));
    ul0_down = register_module("ul0_down", ShiftedConv(C + 1, Fm, 1, 3, Shift::kDown, wn));
    ul0_right = register_module("ul0_right", ShiftedConv(C + 1, Fm, 2, 1, Shift::kDownRight, wn));
    auto add = [&](const std::string& name, int64_t i, auto module) {
      return register_module(name + std::to_string(i), module);
    };
    int64_t k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      for (int64_t b = 0; b < o.resnets; ++b, ++k) {
        up_u.push_back(add("up_u", k, GatedResnet(Fm, Shift::kDown, 0, o.dropout, wn)));
        up_ul.push_back(add("up_ul", k, GatedResnet(Fm, Shift::kDownRight, Fm, o.dropout, wn)));
      }
      if (r + 1 < kResolutions) {
        down_u.push_back(add("stride_u", r, ShiftedConv(Fm, Fm, 2, 3, Shift::kDown, wn, 2)));
        down_ul.push_back(add("stride_ul", r, ShiftedConv(Fm, Fm, 2, 2, Shift::kDownRight, wn, 2)));
      }
    }
    k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      for (int64_t b = 0; b < o.resnets + (r > 0 ? 1 : 0); ++b, ++k) {
        dn_u.push_back(add("dn_u", k, GatedResnet(Fm, Shift::kDown, Fm, o.dropout, wn)));
        dn_ul.push_back(add("dn_ul", k, GatedResnet(Fm, Shift::kDownRight, 2 * Fm, o.dropout, wn)));
      }
      if (r + 1 < kResolutions) {
        up_res_u.push_back(add("deconv_u", r, ShiftedDeconv(Fm, Fm, 2, 3, Shift::kDown, wn)));
        up_res_ul.push_back(
            add("deconv_ul", r, ShiftedDeconv(Fm, Fm, 2, 2, Shift::kDownRight, wn)));
      }
    }
    head = register_module("head",
                           nn::Conv2d(nn::Conv2dOptions(Fm, mixture_features(C, o.mixtures), 1)));
    if (wn) head_g = register_parameter("head_g", unit_gain(head->weight, 0));
  }

  torch::Tensor forward(const torch::Tensor& x) {
    const auto xp = torch::cat({x, torch::ones_like(x.slice(1, 0, 1))}, 1);
    auto u = down_shift(u0(xp));
    auto ul = down_shift(ul0_down(xp)) + right_shift(ul0_right(xp));
    std::vector<torch::Tensor> us = {u}, uls = {ul};
    int64_t k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {  // up: keep every output for the way down
      for (int64_t b = 0; b < resnets; ++b, ++k) {
        u = up_u[k]->forward(u);
        ul = up_ul[k]->forward(ul, u);
        us.push_back(u);
        uls.push_back(ul);
      }
      if (r + 1 < kResolutions) {
        u = down_u[r]->forward(u);
        ul = down_ul[r]->forward(ul);
        us.push_back(u);
        uls.push_back(ul);
      }
    }
    u = us.back();
    ul = uls.back();
    us.pop_back();
    uls.pop_back();
    k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {  // down, through the skips
      for (int64_t b = 0; b < resnets + (r > 0 ? 1 : 0); ++b, ++k) {
        u = dn_u[k]->forward(u, us.back());
        ul = dn_ul[k]->forward(ul, torch::cat({u, uls.back()}, 1));
        us.pop_back();
        uls.pop_back();
      }
      if (r + 1 < kResolutions) {
        const int64_t h = us.back().size(2), w = us.back().size(3);
        u = up_res_u[r]->forward(u, h, w);
        ul = up_res_ul[r]->forward(ul, h, w);
      }
    }
    return F::conv2d(F::elu(ul), normalized(head->weight, head_g, 0),
                     F::Conv2dFuncOptions().bias(head->bias));
  }

  // The same network as engine nodes, in the order forward() computes it.
  std::shared_ptr<PixelCnnPPEngine::Net> to_engine(int64_t mixtures) const {
    auto net = std::make_shared<PixelCnnPPEngine::Net>();
    net->mixtures = mixtures;
    auto& nodes = net->nodes;
    const int64_t img = PixelCnnPPEngine::kImage;
    auto add = [&](Node node) {
      nodes.push_back(std::move(node));
      return static_cast<int64_t>(nodes.size()) - 1;
    };
    const int64_t Fm = filters;
    Term t_u = u0->to_term({img}, false), t_down = ul0_down->to_term({img}, false),
         t_right = ul0_right->to_term({img}, false);
    t_u.shift_y = -1;      // down_shift
    t_down.shift_y = -1;   // down_shift
    t_right.shift_x = -1;  // right_shift
    int64_t u = add({0, Fm, {t_u}, -1});
    int64_t ul = add({0, Fm, {t_down, t_right}, -1});
    std::vector<int64_t> us = {u}, uls = {ul};
    int64_t k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      for (int64_t b = 0; b < resnets; ++b, ++k) {
        u = up_u[k]->to_nodes(nodes, r, u, {});
        ul = up_ul[k]->to_nodes(nodes, r, ul, {u});
        us.push_back(u);
        uls.push_back(ul);
      }
      if (r + 1 < kResolutions) {
        u = add({r + 1, Fm, {down_u[r]->to_term({u}, false)}, -1});
        ul = add({r + 1, Fm, {down_ul[r]->to_term({ul}, false)}, -1});
        us.push_back(u);
        uls.push_back(ul);
      }
    }
    us.pop_back();
    uls.pop_back();
    k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      const int64_t level = kResolutions - 1 - r;
      for (int64_t b = 0; b < resnets + (r > 0 ? 1 : 0); ++b, ++k) {
        u = dn_u[k]->to_nodes(nodes, level, u, {us.back()});
        ul = dn_ul[k]->to_nodes(nodes, level, ul, {u, uls.back()});
        us.pop_back();
        uls.pop_back();
      }
      if (r + 1 < kResolutions) {
        u = add({level - 1, Fm, {up_res_u[r]->to_term({u})}, -1});
        ul = add({level - 1, Fm, {up_res_ul[r]->to_term({ul})}, -1});
      }
    }
    net->head = kernel_dense(normalized(head->weight, head_g, 0), head->bias, {{0, 0}});
    return net;
  }

  int64_t resnets, filters;
  ShiftedConv u0{nullptr}, ul0_down{nullptr}, ul0_right{nullptr};
  std::vector<GatedResnet> up_u, up_ul, dn_u, dn_ul;
  std::vector<ShiftedConv> down_u, down_ul;
  std::vector<ShiftedDeconv> up_res_u, up_res_ul;
  nn::Conv2d head{nullptr};
  torch::Tensor head_g;
};

PixelCnnPP::PixelCnnPP(const PixelCnnPPOptions& o, ImageShape shape, int64_t levels)
    : AutoregressiveModel(shape, levels), options(o) {
  TORCH_CHECK(o.filters >= 1 && o.resnets >= 1 && o.mixtures >= 1,
              "pixelcnn++: filters, resnets and mixtures must be positive");
  TORCH_CHECK(o.dropout >= 0 && o.dropout < 1, "pixelcnn++: dropout must be in [0, 1)");
  net_ = register_module("net", std::make_shared<Net>(o, shape));
}

torch::Tensor PixelCnnPP::forward_unit(const torch::Tensor& x_unit) {
  return net_->forward(x_unit);
}

torch::Tensor PixelCnnPP::logits(const torch::Tensor& x) {
  check_input(x);
  auto f = forward_unit(scale_to_unit(x, levels_));
  return DiscretizedLogisticMixture(f, shape_.channels, levels_, options.mixtures, x).log_pmf();
}

torch::Tensor PixelCnnPP::nll(const torch::Tensor& x) {
  check_input(x);
  auto f = forward_unit(scale_to_unit(x, levels_));
  return -DiscretizedLogisticMixture(f, shape_.channels, levels_, options.mixtures, x).log_prob(x);
}

std::unique_ptr<StepEngine> PixelCnnPP::step_engine() {
  torch::NoGradGuard guard;
  return std::make_unique<PixelCnnPPEngine>(net_->to_engine(options.mixtures), shape_.channels,
                                            levels_);
}

}  // namespace tame
