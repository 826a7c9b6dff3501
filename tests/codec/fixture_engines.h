// The step engines behind the committed codec fixtures (tests/codec/fixtures/):
// a tiny PixelCNN and a tiny Gated PixelCNN (1 channel, 16 levels) whose
// weights come from a fixed linear congruential generator, not from LibTorch's
// initialisation, so they can be rebuilt exactly by any later version of tame.
// The fixture files were written by the first container version's encoder;
// the test checks that they still decode to fixture_images() bit for bit.
#pragma once

#include <memory>
#include <vector>

#include "tame/models/autoregressive/step_engine.h"

namespace tame::fixtures {

constexpr int64_t kLevels = 16, kImages = 5, kHeight = 8, kWidth = 8;

class Weights {
 public:
  explicit Weights(uint64_t seed) : state_(seed) {}
  float next() {  // in [-1, 1)
    state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>(static_cast<int64_t>(state_ >> 40) - (int64_t{1} << 23)) / (1 << 23);
  }
  steps::Dense dense(int64_t in, int64_t out) {
    steps::Dense d;
    d.in = in;
    d.out = out;
    for (int64_t k = 0; k < in * out; ++k) d.w.push_back(next());
    for (int64_t m = 0; m < out; ++m) d.b.push_back(next());
    return d;
  }
  steps::Conv conv(std::vector<steps::Tap> taps, int64_t in_ch, int64_t out) {
    steps::Conv c;
    c.dense = dense(static_cast<int64_t>(taps.size()) * in_ch, out);
    c.taps = std::move(taps);
    return c;
  }

 private:
  uint64_t state_;
};

/// The taps of a k x k single-channel mask: rows above in full, the current
/// row up to the centre (mask B) or before it (mask A).
inline std::vector<steps::Tap> mask_taps(int64_t k, bool include_centre) {
  std::vector<steps::Tap> taps;
  for (int64_t dy = -k / 2; dy <= 0; ++dy)
    for (int64_t dx = -k / 2; dx <= k / 2; ++dx)
      if (dy < 0 || dx < 0 || (dx == 0 && include_centre)) taps.push_back({dy, dx});
  return taps;
}

inline std::shared_ptr<const PixelCNNEngine::Net> pixelcnn_net() {
  Weights w(20261201);
  auto net = std::make_shared<PixelCNNEngine::Net>();
  net->input = w.conv(mask_taps(5, false), 1, 8);
  PixelCNNEngine::Block b;
  b.reduce = w.dense(8, 4);
  b.conv = w.conv(mask_taps(3, true), 4, 4);
  b.expand = w.dense(4, 8);
  net->blocks.push_back(std::move(b));
  net->out1 = w.dense(8, 8);
  net->out2 = w.dense(8, kLevels);
  return net;
}

inline std::shared_ptr<const GatedPixelCNNEngine::Net> gated_net() {
  Weights w(20261202);
  auto net = std::make_shared<GatedPixelCNNEngine::Net>();
  net->hidden = 4;
  for (int l = 0; l < 2; ++l) {
    GatedPixelCNNEngine::Layer layer;
    const int64_t in = l == 0 ? 1 : 4, k = l == 0 ? 5 : 3;
    layer.first = l == 0;
    std::vector<steps::Tap> v, h;
    for (int64_t dy = -k / 2; dy <= 0; ++dy)
      for (int64_t dx = -k / 2; dx <= k / 2; ++dx) v.push_back({dy, dx});
    for (int64_t dx = -k / 2; dx <= (l == 0 ? -1 : 0); ++dx) h.push_back({0, dx});
    layer.v = w.conv(v, in, 8);
    layer.h = w.conv(h, in, 8);
    layer.v2h = w.dense(8, 8);
    if (l > 0) layer.hout = w.dense(4, 4);
    net->layers.push_back(std::move(layer));
  }
  net->out1 = w.dense(4, 8);
  net->out2 = w.dense(8, kLevels);
  return net;
}

/// Images [kImages][1][8][8] with values < 16: gradients with a few edges.
inline std::vector<uint8_t> fixture_images() {
  std::vector<uint8_t> x;
  for (int64_t b = 0; b < kImages; ++b)
    for (int64_t i = 0; i < kHeight; ++i)
      for (int64_t j = 0; j < kWidth; ++j)
        x.push_back(static_cast<uint8_t>((i * (b + 1) + j * 2 + (i * j > 12 + b ? 7 : 0)) % 16));
  return x;
}

}  // namespace tame::fixtures
