// Two tiny step engines (1 channel, 4 levels, any image size), a tiny
// bits-back coder (1x4x4 images, 4 levels, 3 latents), a tiny flow coder
// (1x4x4, 4 levels: logit, squeeze, affine coupling, scale, a 1x1 row) and a
// tiny codes coder (1x4x4, 4 levels, 2x2 codes of 3 entries, uniform prior) with
// fixed pseudo-random weights, shared by the fuzz target and the program that
// writes its seed corpus.
#pragma once

#include <memory>

#include "tame/codec/bits_back.h"
#include "tame/codec/codes_coder.h"
#include "tame/codec/flow_coder.h"
#include "tame/models/autoregressive/step_engine.h"

namespace tame::fuzz {

inline steps::Dense random_dense(int64_t in, int64_t out, uint64_t& state) {
  steps::Dense d;
  d.in = in;
  d.out = out;
  auto next = [&state] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int64_t>(state >> 40) - (int64_t{1} << 23)) /
           (1 << 23);  // [-1, 1)
  };
  for (int64_t k = 0; k < in * out; ++k) d.w.push_back(next());
  for (int64_t m = 0; m < out; ++m) d.b.push_back(next());
  return d;
}

inline steps::Conv random_conv(std::vector<steps::Tap> taps, int64_t in_ch, int64_t out,
                               uint64_t& state) {
  steps::Conv c;
  c.dense = random_dense(static_cast<int64_t>(taps.size()) * in_ch, out, state);
  c.taps = std::move(taps);
  return c;
}

inline std::unique_ptr<StepEngine> gated_engine() {
  uint64_t s = 1;
  auto net = std::make_shared<GatedPixelCNNEngine::Net>();
  net->hidden = 4;
  for (int l = 0; l < 2; ++l) {
    GatedPixelCNNEngine::Layer layer;
    const int64_t in = l == 0 ? 1 : 4;
    layer.first = l == 0;
    layer.v = random_conv({{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 0}, {0, 1}}, in, 8, s);
    layer.h = random_conv({{0, -1}, {0, 0}}, in, 8, s);
    layer.v2h = random_dense(8, 8, s);
    if (l > 0) layer.hout = random_dense(4, 4, s);
    net->layers.push_back(std::move(layer));
  }
  net->out1 = random_dense(4, 8, s);
  net->out2 = random_dense(8, 4, s);
  return std::make_unique<GatedPixelCNNEngine>(net, 1, 4);
}

inline std::unique_ptr<StepEngine> pixelcnn_engine() {
  uint64_t s = 2;
  auto net = std::make_shared<PixelCNNEngine::Net>();
  net->input = random_conv({{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 0}}, 1, 8, s);
  PixelCNNEngine::Block b;
  b.reduce = random_dense(8, 4, s);
  b.conv = random_conv({{-1, -1}, {-1, 0}, {-1, 1}, {0, -1}, {0, 0}}, 4, 4, s);
  b.expand = random_dense(4, 8, s);
  net->blocks.push_back(std::move(b));
  net->out1 = random_dense(8, 8, s);
  net->out2 = random_dense(8, 4, s);
  return std::make_unique<PixelCNNEngine>(net, 1, 4);
}

inline std::unique_ptr<ImageCoder> bits_back_coder() {
  uint64_t s = 3;
  LatentNets nets;
  nets.latent = 3;
  nets.encoder = steps::Feedforward({4, 4, 1});
  nets.encoder.add_dense(random_dense(16, 8, s));
  nets.encoder.add_tanh();
  nets.encoder.add_dense(random_dense(8, 6, s));
  nets.decoder = steps::Feedforward({1, 1, 3});
  nets.decoder.add_dense(random_dense(3, 8, s));
  nets.decoder.add_tanh();
  nets.decoder.add_dense(random_dense(8, 64, s), {4, 4, 4});  // 4 logits a pixel
  return std::make_unique<BitsBackCoder>(std::move(nets), ImageSize{1, 4, 4}, 4);
}

inline std::unique_ptr<ImageCoder> flow_coder() {
  uint64_t s = 4;
  FlowProgram p;
  p.channels = 1;
  p.height = 4;
  p.width = 4;
  FlowStep logit = flow_step(FlowStep::Kind::kLogit, 1, 4, 4);
  logit.alpha = 0.05;
  p.steps.push_back(logit);
  FlowStep squeeze = flow_step(FlowStep::Kind::kPermute, 1, 4, 4);
  for (int64_t c = 0; c < 4; ++c)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 2; ++j) squeeze.from.push_back((2 * i + c / 2) * 4 + 2 * j + c % 2);
  p.steps.push_back(squeeze);
  FlowStep coupling = flow_step(FlowStep::Kind::kCoupling, 4, 2, 2);
  coupling.reads = 2;
  coupling.first = 2;
  coupling.bound = 2.0;
  coupling.net = steps::Feedforward({2, 2, 2});
  coupling.net.add_conv(random_dense(18, 4, s), 3, 1, 1);
  p.steps.push_back(coupling);
  FlowStep scale = flow_step(FlowStep::Kind::kScale, 4, 2, 2);
  for (int64_t i = 0; i < 16; ++i) {
    scale.a.push_back(0.5 + 0.1 * static_cast<double>(i));
    scale.t.push_back(0.01 * static_cast<double>(i));
  }
  p.steps.push_back(scale);
  FlowStep row = flow_step(FlowStep::Kind::kRow, 4, 2, 2);
  row.row = 1;
  row.w = {0.3, -1.5, 0.2, 0.1};
  p.steps.push_back(row);
  FlowNets nets;
  nets.flow = std::move(p);
  return std::make_unique<FlowCoder>(std::move(nets), ImageSize{1, 4, 4}, 4);
}

inline std::unique_ptr<ImageCoder> codes_coder() {
  uint64_t s = 5;
  CodeNets nets;
  nets.codes = 3;
  nets.dim = 2;
  nets.encoder = steps::Feedforward({4, 4, 1});
  nets.encoder.add_conv(random_dense(4, 2, s), 2, 2, 0);  // -> 2x2x2
  nets.decoder = steps::Feedforward({2, 2, 2});
  nets.decoder.add_upsample2();
  nets.decoder.add_conv(random_dense(2, 4, s), 1, 1, 0);  // 4 logits a pixel
  const steps::Dense book = random_dense(1, 6, s);
  nets.codebook = book.w;
  return std::make_unique<CodesCoder>(std::move(nets), std::make_unique<UniformCoder>(1, 3),
                                      ImageSize{1, 4, 4}, 4);
}

}  // namespace tame::fuzz
