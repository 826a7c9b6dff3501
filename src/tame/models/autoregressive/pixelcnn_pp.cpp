#include "tame/models/autoregressive/pixelcnn_pp.h"

#include <vector>

#include "tame/dist/likelihood.h"
#include "tame/dist/pixel_likelihood.h"

namespace tame {

namespace {

namespace nn = torch::nn;
namespace F = torch::nn::functional;

enum class Shift { kDown, kDownRight };

// The image moved down one row (a zero row on top) or right one column.
torch::Tensor down_shift(const torch::Tensor& x) {
  return F::pad(x, F::PadFuncOptions({0, 0, 1, 0})).slice(2, 0, x.size(2));
}
torch::Tensor right_shift(const torch::Tensor& x) {
  return F::pad(x, F::PadFuncOptions({1, 0, 0, 0})).slice(3, 0, x.size(3));
}
torch::Tensor concat_elu(const torch::Tensor& x) { return F::elu(torch::cat({x, -x}, 1)); }

// A kh x kw convolution whose output (i, j) reads rows i - kh + 1 .. i and
// columns j - (kw-1)/2 .. j + (kw-1)/2 (down) or j - kw + 1 .. j (down-right).
class ShiftedConvImpl : public nn::Module {
 public:
  ShiftedConvImpl(int64_t in, int64_t out, int64_t kh, int64_t kw, Shift shift, int64_t stride = 1)
      : pad_(shift == Shift::kDown ? std::vector<int64_t>{(kw - 1) / 2, (kw - 1) / 2, kh - 1, 0}
                                   : std::vector<int64_t>{kw - 1, 0, kh - 1, 0}) {
    conv_ =
        register_module("conv", nn::Conv2d(nn::Conv2dOptions(in, out, {kh, kw}).stride(stride)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    return conv_(F::pad(x, F::PadFuncOptions(pad_)));
  }

 private:
  std::vector<int64_t> pad_;
  nn::Conv2d conv_{nullptr};
};
TORCH_MODULE(ShiftedConv);

// Its transposed form, doubling the resolution: a stride-2 transposed
// convolution cropped so that the same rows and columns are read.
class ShiftedDeconvImpl : public nn::Module {
 public:
  ShiftedDeconvImpl(int64_t in, int64_t out, int64_t kh, int64_t kw, Shift shift)
      : kh_(kh), kw_(kw), shift_(shift) {
    deconv_ = register_module(
        "deconv", nn::ConvTranspose2d(
                      nn::ConvTranspose2dOptions(in, out, {kh, kw}).stride(2).output_padding(1)));
  }
  torch::Tensor forward(const torch::Tensor& x) {
    auto y = deconv_(x);
    const int64_t H = y.size(2) - kh_ + 1, W = y.size(3);
    y = y.slice(2, 0, H);
    return shift_ == Shift::kDown ? y.slice(3, (kw_ - 1) / 2, W - (kw_ - 1) / 2)
                                  : y.slice(3, 0, W - kw_ + 1);
  }

 private:
  int64_t kh_, kw_;
  Shift shift_;
  nn::ConvTranspose2d deconv_{nullptr};
};
TORCH_MODULE(ShiftedDeconv);

// x + a * sigmoid(b), (a, b) from two shifted convolutions over concat_elu,
// the second after dropout; `skip` channels of another map join the first.
class GatedResnetImpl : public nn::Module {
 public:
  GatedResnetImpl(int64_t filters, Shift shift, int64_t skip, double dropout) : dropout_(dropout) {
    const int64_t kw = shift == Shift::kDown ? 3 : 2;
    in_ = register_module("in", ShiftedConv(2 * filters, filters, 2, kw, shift));
    if (skip > 0)
      skip_ = register_module("skip", nn::Conv2d(nn::Conv2dOptions(2 * skip, filters, 1)));
    out_ = register_module("out", ShiftedConv(2 * filters, 2 * filters, 2, kw, shift));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& a = {}) {
    auto c = in_(concat_elu(x));
    if (a.defined()) c = c + skip_(concat_elu(a));
    c = F::dropout(concat_elu(c), F::DropoutFuncOptions().p(dropout_).training(is_training()));
    auto ab = out_(c).chunk(2, 1);
    return x + ab[0] * torch::sigmoid(ab[1]);
  }

 private:
  double dropout_;
  ShiftedConv in_{nullptr}, out_{nullptr};
  nn::Conv2d skip_{nullptr};
};
TORCH_MODULE(GatedResnet);

constexpr int64_t kResolutions = 3;

}  // namespace

struct PixelCnnPP::Net : nn::Module {
  Net(const PixelCnnPPOptions& o, ImageShape s) : resnets(o.resnets) {
    const int64_t C = s.channels, Fm = o.filters;
    u0 = register_module("u0", ShiftedConv(C + 1, Fm, 2, 3, Shift::kDown));
    ul0_down = register_module("ul0_down", ShiftedConv(C + 1, Fm, 1, 3, Shift::kDown));
    ul0_right = register_module("ul0_right", ShiftedConv(C + 1, Fm, 2, 1, Shift::kDownRight));
    auto add = [&](const std::string& name, int64_t i, auto module) {
      return register_module(name + std::to_string(i), module);
    };
    int64_t k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      for (int64_t b = 0; b < o.resnets; ++b, ++k) {
        up_u.push_back(add("up_u", k, GatedResnet(Fm, Shift::kDown, 0, o.dropout)));
        up_ul.push_back(add("up_ul", k, GatedResnet(Fm, Shift::kDownRight, Fm, o.dropout)));
      }
      if (r + 1 < kResolutions) {
        down_u.push_back(add("stride_u", r, ShiftedConv(Fm, Fm, 2, 3, Shift::kDown, 2)));
        down_ul.push_back(add("stride_ul", r, ShiftedConv(Fm, Fm, 2, 2, Shift::kDownRight, 2)));
      }
    }
    k = 0;
    for (int64_t r = 0; r < kResolutions; ++r) {
      for (int64_t b = 0; b < o.resnets + (r > 0 ? 1 : 0); ++b, ++k) {
        dn_u.push_back(add("dn_u", k, GatedResnet(Fm, Shift::kDown, Fm, o.dropout)));
        dn_ul.push_back(add("dn_ul", k, GatedResnet(Fm, Shift::kDownRight, 2 * Fm, o.dropout)));
      }
      if (r + 1 < kResolutions) {
        up_res_u.push_back(add("deconv_u", r, ShiftedDeconv(Fm, Fm, 2, 3, Shift::kDown)));
        up_res_ul.push_back(add("deconv_ul", r, ShiftedDeconv(Fm, Fm, 2, 2, Shift::kDownRight)));
      }
    }
    head = register_module("head",
                           nn::Conv2d(nn::Conv2dOptions(Fm, mixture_features(C, o.mixtures), 1)));
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
        u = up_res_u[r]->forward(u);
        ul = up_res_ul[r]->forward(ul);
      }
    }
    return head(F::elu(ul));
  }

  int64_t resnets;
  ShiftedConv u0{nullptr}, ul0_down{nullptr}, ul0_right{nullptr};
  std::vector<GatedResnet> up_u, up_ul, dn_u, dn_ul;
  std::vector<ShiftedConv> down_u, down_ul;
  std::vector<ShiftedDeconv> up_res_u, up_res_ul;
  nn::Conv2d head{nullptr};
};

PixelCnnPP::PixelCnnPP(const PixelCnnPPOptions& o, ImageShape shape, int64_t levels)
    : ImageModel(shape, levels), options(o) {
  TORCH_CHECK(o.filters >= 1 && o.resnets >= 1 && o.mixtures >= 1,
              "pixelcnn++: filters, resnets and mixtures must be positive");
  TORCH_CHECK(o.dropout >= 0 && o.dropout < 1, "pixelcnn++: dropout must be in [0, 1)");
  TORCH_CHECK(shape.height % 4 == 0 && shape.width % 4 == 0,
              "pixelcnn++: its three resolutions need height and width divisible by 4, got ",
              shape.height, "x", shape.width);
  net_ = register_module("net", std::make_shared<Net>(o, shape));
}

torch::Tensor PixelCnnPP::forward_unit(const torch::Tensor& x_unit) {
  return net_->forward(x_unit);
}

torch::Tensor PixelCnnPP::nll(const torch::Tensor& x) {
  check_input(x);
  auto f = forward_unit(scale_to_unit(x, levels_));
  return -DiscretizedLogisticMixture(f, shape_.channels, levels_, options.mixtures, x).log_prob(x);
}

torch::Tensor PixelCnnPP::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
  TORCH_CHECK(n > 0, "sample: n must be positive, got ", n);
  c10::InferenceMode guard;
  const bool training = is_training();
  eval();
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width;
  auto x = torch::zeros({n, C, H, W}, torch::TensorOptions().dtype(torch::kLong).device(device()));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j) {
      auto f = forward_unit(scale_to_unit(x, levels_)).slice(2, i, i + 1).slice(3, j, j + 1);
      auto here = x.slice(2, i, i + 1).slice(3, j, j + 1);
      here.copy_(DiscretizedLogisticMixture(f, C, levels_, options.mixtures, here)
                     .sample(temperature)
                     .to(torch::kLong));
    }
  train(training);
  return x.to(image_dtype(levels_));
}

}  // namespace tame
