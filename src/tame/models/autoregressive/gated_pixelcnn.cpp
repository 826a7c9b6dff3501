#include "tame/models/autoregressive/gated_pixelcnn.h"

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
                                                                const torch::Tensor& h) {
  auto v_pre = vconv_(v);
  auto h_pre = hconv_(h) + v2h_(shift_down(v_pre));
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
  const int64_t C = shape.channels;
  TORCH_CHECK(o.hidden > 0 && o.layers >= 0 && o.out_hidden > 0,
              "gated-pixelcnn: sizes must be positive");
  TORCH_CHECK(o.hidden % C == 0, "gated-pixelcnn: hidden (", o.hidden,
              ") must be a multiple of the ", C, " image channels");
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
}

torch::Tensor GatedPixelCNN::forward_unit(const torch::Tensor& x) {
  torch::Tensor v = x, h = x;
  for (const auto& l : *layers_) std::tie(v, h) = l->as<GatedLayer>()->forward(v, h);
  auto out = out2_(torch::relu(out1_(torch::relu(h))));
  return out.view({x.size(0), levels_, shape_.channels, x.size(2), x.size(3)});
}

std::unique_ptr<StepEngine> GatedPixelCNN::step_engine() {
  auto net = std::make_shared<GatedPixelCNNEngine::Net>();
  net->hidden = options.hidden;
  for (const auto& l : *layers_) net->layers.push_back(l->as<GatedLayer>()->to_steps());
  net->out1 = to_step_dense(*out1_);
  net->out2 = to_step_dense(*out2_);
  return std::make_unique<GatedPixelCNNEngine>(net, shape_.channels, levels_);
}

}  // namespace tame
