// Two tiny step engines (1 channel, 4 levels, any image size) and a tiny
// bits-back coder (1x4x4 images, 4 levels, 3 latents) with fixed pseudo-random
// weights, shared by the fuzz target and the program that writes its seed corpus.
#pragma once

#include <memory>

#include "tame/codec/bits_back.h"
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

}  // namespace tame::fuzz
