#include "tame/models/autoregressive/pixelrnn.h"

#include "tame/nn/lstm.h"

namespace tame {

namespace F = torch::nn::functional;

torch::Tensor skew(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  // Row r of the padded map starts W + H after row r - 1; read with rows W + H - 1
  // long, row r starts r earlier, so its pixels land r columns to the right.
  auto padded = F::pad(x, F::PadFuncOptions({0, H})).reshape({B, C, H * (W + H)});
  return padded.narrow(2, 0, H * (W + H - 1)).reshape({B, C, H, W + H - 1});
}

torch::Tensor unskew(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), S = x.size(3), W = S - H + 1;
  // out(r, c) = flat x at r S + c + r = r (S + 1) + c: read with rows S + 1 long.
  auto flat = F::pad(x.reshape({B, C, H * S}), F::PadFuncOptions({0, H}));
  return flat.view({B, C, H, S + 1}).narrow(3, 0, W);
}

namespace {

// The state-to-state convolution's taps, moved from the coordinates it runs in
// to the image's, as the engine reads its state rings. Row LSTM: the previous
// row. Diagonal BiLSTM: the skewed map's previous column at offset dy is the
// image's (dy, side (1 + dy)), side -1 left to right and +1 right to left
// (mirrored).
steps::Conv previous_row(steps::Conv c) {
  for (auto& t : c.taps) t.dy = -1;
  return c;
}
steps::Conv previous_column(steps::Conv c, int64_t side) {
  for (auto& t : c.taps) t.dx = side * (1 + t.dy);
  return c;
}

}  // namespace

PixelRNNLayerImpl::PixelRNNLayerImpl(bool diagonal, int64_t h, int64_t k, int64_t colors)
    : diagonal_(diagonal) {
  const auto state = [&](const char* name) {
    auto o = diagonal ? MaskedConv2dOptions(h, 4 * h, 1).kernel_h(2).center_row(1)
                      : MaskedConv2dOptions(h, 4 * h, k).kernel_h(1).center_row(0);
    return register_module(name, MaskedConv2d(o.mask(Mask::kNone).bias(false)));
  };
  if (diagonal) {
    is_ = register_module("is", MaskedConv2d(MaskedConv2dOptions(h, 4 * h, 1).colors(colors)));
    is_back_ = register_module("is_back",
                               MaskedConv2d(MaskedConv2dOptions(h, 4 * h, 1).mask(Mask::kNone)));
    ss_ = state("ss");
    ss_back_ = state("ss_back");
  } else {
    is_ = register_module("is", MaskedConv2d(MaskedConv2dOptions(h, 4 * h, k)
                                                 .kernel_h(1)
                                                 .center_row(0)
                                                 .kernel_w(k / 2 + 1)
                                                 .center_col(k / 2)
                                                 .colors(colors)));
    ss_ = state("ss");
  }
  out_ = register_module("out", MaskedConv2d(MaskedConv2dOptions(h, h, 1).colors(colors)));
  torch::NoGradGuard no_grad;
  for (auto* is : {&is_, &is_back_})
    if (*is) (*is)->bias.narrow(0, h, h).fill_(1.0);  // forget gates open at the start
}

// Each step reads its gates as one contiguous [B, 4h, W] (a row) or
// [B, 4h, H] (a skewed column) slice, and the cell is one fused lstm_step.
torch::Tensor PixelRNNLayerImpl::rows(const torch::Tensor& x) {
  const int64_t B = x.size(0), h = x.size(1), H = x.size(2), W = x.size(3);
  // unbind, not g[i]: one backward node for all rows, where each select's
  // backward would fill a zero tensor of the whole map.
  auto g = is_(x).permute({2, 0, 1, 3}).contiguous().unbind(0);  // H x [B, 4h, W]
  torch::Tensor state = torch::zeros({B, h, W}, x.options()), cell = state;
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < H; ++i) {
    auto gates = g[i];
    if (i > 0) gates = gates + ss_(state.unsqueeze(2)).squeeze(2);
    std::tie(state, cell) = lstm_step(gates, cell);
    out.push_back(state);
  }
  return torch::stack(out, 2);  // [B, h, H, W]
}

torch::Tensor PixelRNNLayerImpl::diagonal(const torch::Tensor& x, MaskedConv2d& is,
                                          MaskedConv2d& ss) {
  const int64_t B = x.size(0), h = x.size(1), H = x.size(2), W = x.size(3), S = W + H - 1;
  // The 1x1 input-to-state convolution runs on the skewed input, laid out as S
  // one-column maps [S B, h, H, 1], so that its output is already [S, B, 4h, H]
  // (a skewed padding position gets the bias, not zero: its state is masked).
  auto xs = skew(x).permute({3, 0, 1, 2}).contiguous().view({S * B, h, H, 1});
  auto g = is(xs).view({S, B, 4 * h, H}).unbind(0);  // S x [B, 4h, H]
  // valid[s][r]: the skewed map holds a pixel there (r <= s < r + W).
  auto r = torch::arange(H, x.options()).view({1, H});
  auto s = torch::arange(S, x.options()).view({S, 1});
  auto valid = ((s >= r) * (s < r + W)).to(x.dtype()).unbind(0);  // S x [H]
  // The 2x1 state-to-state convolution as a 1-d one along the column (rows
  // r-1 and r), where the 2-d convolution of a one-column map is slower.
  auto w = ss->weight.squeeze(3);  // [4h, h, 2]
  torch::Tensor state = torch::zeros({B, h, H}, x.options()), cell = state;
  std::vector<torch::Tensor> out;
  for (int64_t c = 0; c < S; ++c) {
    auto gates = g[c];
    if (c > 0)
      gates = gates + F::conv1d(state, w, F::Conv1dFuncOptions().padding(1)).narrow(2, 0, H);
    std::tie(state, cell) = lstm_step(gates, cell, valid[c]);
    out.push_back(state);
  }
  return unskew(torch::stack(out, 3));  // [B, h, H, S] -> [B, h, H, W]
}

torch::Tensor PixelRNNLayerImpl::forward(const torch::Tensor& x) {
  if (!diagonal_) return x + out_(rows(x));
  auto back = diagonal(x.flip(3), is_back_, ss_back_).flip(3);
  return x + out_(diagonal(x, is_, ss_) + shift_down(back));
}

PixelRNNEngine::Layer PixelRNNLayerImpl::to_steps() const {
  PixelRNNEngine::Layer l;
  l.fwd.is = to_step_conv(*is_);
  l.fwd.ss = diagonal_ ? previous_column(to_step_conv(*ss_), -1) : previous_row(to_step_conv(*ss_));
  if (diagonal_) {
    l.bwd.is = to_step_conv(*is_back_);
    l.bwd.ss = previous_column(to_step_conv(*ss_back_), 1);
  }
  l.out = to_step_dense(*out_);
  return l;
}

PixelRNN::PixelRNN(const PixelRNNOptions& o, ImageShape shape, int64_t levels)
    : AutoregressiveModel(shape, levels), options(o) {
  const int64_t C = shape.channels;
  TORCH_CHECK(o.layer == "row-lstm" || o.layer == "diagonal-bilstm",
              "pixelrnn: layer must be 'row-lstm' or 'diagonal-bilstm', got '", o.layer, "'");
  TORCH_CHECK(o.hidden > 0 && o.layers >= 0 && o.out_hidden > 0,
              "pixelrnn: sizes must be positive");
  TORCH_CHECK(o.hidden % C == 0, "pixelrnn: hidden (", o.hidden, ") must be a multiple of the ", C,
              " image channels");
  TORCH_CHECK(o.input_kernel % 2 == 1 && o.kernel % 2 == 1, "pixelrnn: kernel sizes must be odd");
  const bool diagonal = o.layer == "diagonal-bilstm";
  input_ = register_module(
      "input",
      MaskedConv2d(MaskedConv2dOptions(C, o.hidden, o.input_kernel).mask(Mask::kA).colors(C)));
  layers_ = register_module("layers", torch::nn::ModuleList());
  for (int64_t l = 0; l < o.layers; ++l)
    layers_->push_back(PixelRNNLayer(diagonal, o.hidden, o.kernel, C));
  out1_ = register_module("out1",
                          MaskedConv2d(MaskedConv2dOptions(o.hidden, o.out_hidden, 1).colors(C)));
  out2_ = register_module("out2",
                          MaskedConv2d(MaskedConv2dOptions(o.out_hidden, levels * C, 1).colors(C)));
}

torch::Tensor PixelRNN::forward_unit(const torch::Tensor& x) {
  auto h = input_(x);
  for (const auto& l : *layers_) h = l->as<PixelRNNLayer>()->forward(h);
  auto out = out2_(torch::relu(out1_(torch::relu(h))));
  return out.view({x.size(0), levels_, shape_.channels, x.size(2), x.size(3)});
}

std::unique_ptr<StepEngine> PixelRNN::step_engine() {
  auto net = std::make_shared<PixelRNNEngine::Net>();
  net->diagonal = options.layer == "diagonal-bilstm";
  net->hidden = options.hidden;
  net->input = to_step_conv(*input_);
  for (const auto& l : *layers_) net->layers.push_back(l->as<PixelRNNLayer>()->to_steps());
  net->out1 = to_step_dense(*out1_);
  net->out2 = to_step_dense(*out2_);
  return std::make_unique<PixelRNNEngine>(net, shape_.channels, levels_);
}

}  // namespace tame
