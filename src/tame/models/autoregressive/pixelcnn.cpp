#include "tame/models/autoregressive/pixelcnn.h"

namespace tame {

PixelCNNBlockImpl::PixelCNNBlockImpl(int64_t hidden, int64_t kernel, int64_t colors) {
  reduce_ = register_module(
      "reduce", MaskedConv2d(MaskedConv2dOptions(2 * hidden, hidden, 1).colors(colors)));
  conv_ = register_module("conv",
                          MaskedConv2d(MaskedConv2dOptions(hidden, hidden, kernel).colors(colors)));
  expand_ = register_module(
      "expand", MaskedConv2d(MaskedConv2dOptions(hidden, 2 * hidden, 1).colors(colors)));
}

torch::Tensor PixelCNNBlockImpl::forward(const torch::Tensor& x) {
  auto h = reduce_(torch::relu(x));
  h = conv_(torch::relu(h));
  h = expand_(torch::relu(h));
  return x + h;
}

PixelCNNEngine::Block PixelCNNBlockImpl::to_steps() const {
  return {to_step_dense(*reduce_), to_step_conv(*conv_), to_step_dense(*expand_)};
}

PixelCNN::PixelCNN(const PixelCNNOptions& o, ImageShape shape, int64_t levels)
    : AutoregressiveModel(shape, levels), options(o) {
  const int64_t C = shape.channels;
  TORCH_CHECK(o.hidden > 0 && o.blocks >= 0 && o.out_hidden > 0,
              "pixelcnn: sizes must be positive");
  TORCH_CHECK(o.input_kernel % 2 == 1 && o.kernel % 2 == 1, "pixelcnn: kernel sizes must be odd");
  input_ = register_module(
      "input",
      MaskedConv2d(MaskedConv2dOptions(C, 2 * o.hidden, o.input_kernel).mask(Mask::kA).colors(C)));
  blocks_ = register_module("blocks", torch::nn::ModuleList());
  for (int64_t b = 0; b < o.blocks; ++b) blocks_->push_back(PixelCNNBlock(o.hidden, o.kernel, C));
  out1_ = register_module(
      "out1", MaskedConv2d(MaskedConv2dOptions(2 * o.hidden, o.out_hidden, 1).colors(C)));
  out2_ = register_module("out2",
                          MaskedConv2d(MaskedConv2dOptions(o.out_hidden, levels * C, 1).colors(C)));
}

torch::Tensor PixelCNN::forward_unit(const torch::Tensor& x) {
  auto h = input_(x);
  for (const auto& b : *blocks_) h = b->as<PixelCNNBlock>()->forward(h);
  auto out = out2_(torch::relu(out1_(torch::relu(h))));
  // Output feature o = k*C + c has colour c: view as [B, K, C, H, W].
  return out.view({x.size(0), levels_, shape_.channels, x.size(2), x.size(3)});
}

std::unique_ptr<StepEngine> PixelCNN::step_engine() {
  auto net = std::make_shared<PixelCNNEngine::Net>();
  net->input = to_step_conv(*input_);
  for (const auto& b : *blocks_) net->blocks.push_back(b->as<PixelCNNBlock>()->to_steps());
  net->out1 = to_step_dense(*out1_);
  net->out2 = to_step_dense(*out2_);
  return std::make_unique<PixelCNNEngine>(net, shape_.channels, levels_);
}

}  // namespace tame
