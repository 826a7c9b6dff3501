#include "tame/models/autoregressive/gated_pixelcnn.h"

#include "tame/dist/likelihood.h"

namespace tame {

torch::Tensor gate(const torch::Tensor& x) {
  auto parts = x.chunk(2, 1);
  return torch::tanh(parts[0]) * torch::sigmoid(parts[1]);
}

GatedLayerImpl::GatedLayerImpl(int64_t in_channels, int64_t n, int64_t k, int64_t colors,
                               bool first)
    : first_(first) {
  const int64_t kh = k / 2 + 1;
  // Vertical: rows r-k/2..r, columns c-k/2..c+k/2; no mask (its output reaches the
  // horizontal stack only after shift_down).
  vconv_ = register_module("vconv", MaskedConv2d(MaskedConv2dOptions(in_channels, 2 * n, k)
                                                     .kernel_h(kh)
                                                     .center_row(kh - 1)
                                                     .mask(Mask::kNone)));
  // Horizontal: columns c-k/2..c of the current row; the centre column is channel-masked.
  hconv_ = register_module("hconv", MaskedConv2d(MaskedConv2dOptions(in_channels, 2 * n, k)
                                                     .kernel_h(1)
                                                     .center_row(0)
                                                     .kernel_w(kh)
                                                     .center_col(kh - 1)
                                                     .mask(first ? Mask::kA : Mask::kB)
                                                     .colors(colors)));
  v2h_ =
      register_module("v2h", MaskedConv2d(MaskedConv2dOptions(2 * n, 2 * n, 1).mask(Mask::kNone)));
  if (!first)
    hout_ = register_module("hout", MaskedConv2d(MaskedConv2dOptions(n, n, 1).colors(colors)));
}

std::pair<torch::Tensor, torch::Tensor> GatedLayerImpl::forward(const torch::Tensor& v,
                                                                const torch::Tensor& h,
                                                                const torch::Tensor& cond) {
  torch::Tensor cv, ch;
  if (cond.defined()) {
    auto parts = cond.chunk(2, 1);
    cv = parts[0];
    ch = parts[1];
  }
  auto v_pre = vconv_(v);
  if (cv.defined()) v_pre = v_pre + cv;
  auto h_pre = hconv_(h) + v2h_(shift_down(v_pre));
  if (ch.defined()) h_pre = h_pre + ch;
  auto v_out = gate(v_pre);
  auto h_gated = gate(h_pre);
  auto h_out = first_ ? h_gated : h + hout_(h_gated);
  return {v_out, h_out};
}

GatedPixelCNNEngine::Layer GatedLayerImpl::to_steps() const {
  GatedPixelCNNEngine::Layer l;
  l.v = to_step_conv(*vconv_);
  l.h = to_step_conv(*hconv_);
  l.v2h = to_step_dense(*v2h_);
  if (!first_) l.hout = to_step_dense(*hout_);
  l.first = first_;
  return l;
}

GatedPixelCNN::GatedPixelCNN(const GatedPixelCNNOptions& o, ImageShape shape, int64_t levels)
    : AutoregressiveModel(shape, levels), options(o) {
  TORCH_CHECK(o.given >= 0 && o.given < shape.channels, "gated-pixelcnn: given (", o.given,
              ") must leave at least one of the ", shape.channels, " channels to model");
  const int64_t C = shape.channels - o.given;
  TORCH_CHECK(o.hidden > 0 && o.layers >= 0 && o.out_hidden > 0,
              "gated-pixelcnn: sizes must be positive");
  TORCH_CHECK(o.hidden % C == 0, "gated-pixelcnn: hidden (", o.hidden,
              ") must be a multiple of the ", C, " modelled channels");
  TORCH_CHECK(o.input_kernel % 2 == 1 && o.kernel % 2 == 1,
              "gated-pixelcnn: kernel sizes must be odd");
  layers_ = register_module("layers", torch::nn::ModuleList());
  layers_->push_back(GatedLayer(C, o.hidden, o.input_kernel, C, true));
  for (int64_t l = 0; l < o.layers; ++l)
    layers_->push_back(GatedLayer(o.hidden, o.hidden, o.kernel, C, false));
  out1_ = register_module("out1",
                          MaskedConv2d(MaskedConv2dOptions(o.hidden, o.out_hidden, 1).colors(C)));
  out2_ = register_module("out2",
                          MaskedConv2d(MaskedConv2dOptions(o.out_hidden, levels * C, 1).colors(C)));
  if (o.given > 0) {
    namespace nn = torch::nn;
    const int64_t n = o.hidden, per_layer = 4 * n * (o.layers + 1);
    embed_ = register_module("embed", nn::Embedding(levels, n));
    // Dilations 1, 2, 4, 8: every output sees 31 x 31 given positions.
    cond_ = nn::Sequential();
    for (int64_t d = 1; d <= 8; d *= 2) {
      cond_->push_back(
          nn::Conv2d(nn::Conv2dOptions(d == 1 ? o.given * n : n, n, 3).padding(d).dilation(d)));
      cond_->push_back(nn::ReLU());
    }
    cond_->push_back(nn::Conv2d(nn::Conv2dOptions(n, per_layer, 1)));
    register_module("cond", cond_);
  }
}

torch::Tensor GatedPixelCNN::condition(const torch::Tensor& given) {
  const int64_t B = given.size(0), G = given.size(1), H = given.size(2), W = given.size(3);
  auto e = embed_(given.to(torch::kLong));  // [B, G, H, W, n]
  return cond_->forward(e.permute({0, 1, 4, 2, 3}).reshape({B, G * options.hidden, H, W}));
}

torch::Tensor GatedPixelCNN::network(const torch::Tensor& x, const torch::Tensor& cond) {
  torch::Tensor v = x, h = x;
  const int64_t per = 4 * options.hidden;
  int64_t l = 0;
  for (const auto& layer : *layers_) {
    auto c = cond.defined() ? cond.slice(1, l * per, (l + 1) * per) : torch::Tensor();
    std::tie(v, h) = layer->as<GatedLayer>()->forward(v, h, c);
    ++l;
  }
  auto out = out2_(torch::relu(out1_(torch::relu(h))));
  return out.view({x.size(0), levels_, x.size(1), x.size(2), x.size(3)});
}

torch::Tensor GatedPixelCNN::logits(const torch::Tensor& x) {
  const int64_t G = options.given;
  if (G == 0) return network(scale_to_unit(x, levels_), {});
  return network(scale_to_unit(x.slice(1, G), levels_), condition(x.slice(1, 0, G)));
}

torch::Tensor GatedPixelCNN::forward_unit(const torch::Tensor& x) {
  const int64_t G = options.given;
  if (G == 0) return network(x, {});
  auto given = ((x.slice(1, 0, G).detach() + 1) * (0.5 * double(levels_ - 1))).round();
  return network(x.slice(1, G), condition(given));
}

torch::Tensor GatedPixelCNN::condition_context(const torch::Tensor& given) {
  TORCH_CHECK(options.given > 0, "gated-pixelcnn: not a conditional model");
  return condition(given).permute({0, 2, 3, 1}).contiguous();
}

std::unique_ptr<StepEngine> GatedPixelCNN::step_engine() {
  auto net = std::make_shared<GatedPixelCNNEngine::Net>();
  net->hidden = options.hidden;
  for (const auto& l : *layers_) net->layers.push_back(l->as<GatedLayer>()->to_steps());
  net->out1 = to_step_dense(*out1_);
  net->out2 = to_step_dense(*out2_);
  net->conditioned = options.given > 0;
  return std::make_unique<GatedPixelCNNEngine>(net, shape_.channels - options.given, levels_);
}

}  // namespace tame
