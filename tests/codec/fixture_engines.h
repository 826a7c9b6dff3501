// The step engines behind the committed codec fixtures (tests/codec/fixtures/):
// a tiny PixelCNN and a tiny Gated PixelCNN (1 channel, 16 levels), and a
// colour-masked RGB Gated PixelCNN (v2-gated-rgb.tamez), whose
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

/// Zeroes the weights from the centre tap's inputs (in_ch of them, from row
/// centre_from of d's weights) that a colour mask over C colours drops:
/// feature o has colour o % C; mask A keeps colours before the output's,
/// mask B up to it.
inline void mask_colours(steps::Dense& d, int64_t centre_from, int64_t in_ch, bool mask_a,
                         int64_t C) {
  for (int64_t ci = 0; ci < in_ch; ++ci)
    for (int64_t o = 0; o < d.out; ++o) {
      const bool keep = mask_a ? ci % C < o % C : ci % C <= o % C;
      float& v = d.w[(centre_from + ci) * d.out + o];
      if (!keep) v = v * 0.0f;
    }
}

/// The RGB Gated PixelCNN of v2-gated-rgb.tamez: hidden 6, two layers, its
/// horizontal stack and head masked by colour as the torch model's are
/// (feature o has colour o % 3; the first layer's centre tap reads colours
/// before its own, the others' up to their own), so that colour c's
/// conditional does not read colours >= c of its pixel.
inline std::shared_ptr<const GatedPixelCNNEngine::Net> gated_rgb_net() {
  constexpr int64_t C = 3, n = 6;
  Weights w(20261203);
  auto mask = [](steps::Dense& d, int64_t centre_from, int64_t in_ch, bool mask_a) {
    mask_colours(d, centre_from, in_ch, mask_a, C);
  };
  auto net = std::make_shared<GatedPixelCNNEngine::Net>();
  net->hidden = n;
  for (int l = 0; l < 2; ++l) {
    GatedPixelCNNEngine::Layer layer;
    const int64_t in = l == 0 ? C : n, k = l == 0 ? 5 : 3;
    layer.first = l == 0;
    std::vector<steps::Tap> v, h;
    for (int64_t dy = -k / 2; dy <= 0; ++dy)
      for (int64_t dx = -k / 2; dx <= k / 2; ++dx) v.push_back({dy, dx});
    for (int64_t dx = -k / 2; dx <= 0; ++dx) h.push_back({0, dx});
    layer.v = w.conv(v, in, 2 * n);
    layer.h = w.conv(h, in, 2 * n);
    mask(layer.h.dense, (static_cast<int64_t>(h.size()) - 1) * in, in, l == 0);
    layer.v2h = w.dense(2 * n, 2 * n);
    if (l > 0) {
      layer.hout = w.dense(n, n);
      mask(layer.hout, 0, n, false);
    }
    net->layers.push_back(std::move(layer));
  }
  net->out1 = w.dense(n, 8);
  mask(net->out1, 0, n, false);
  net->out2 = w.dense(8, kLevels * C);
  mask(net->out2, 0, 8, false);
  return net;
}

/// The RGB plain PixelCNN of v2-pixelcnn-rgb.tamez: 2h = 12, two blocks,
/// every layer masked by colour as the torch model's are (the input's centre
/// tap reads colours before its own, every later layer up to its own).
inline std::shared_ptr<const PixelCNNEngine::Net> pixelcnn_rgb_net() {
  constexpr int64_t C = 3, h = 6;
  Weights w(20261204);
  auto mask = [](steps::Dense& d, int64_t centre_from, int64_t in_ch, bool mask_a) {
    mask_colours(d, centre_from, in_ch, mask_a, C);
  };
  auto net = std::make_shared<PixelCNNEngine::Net>();
  const auto in_taps = mask_taps(5, true);
  net->input = w.conv(in_taps, C, 2 * h);
  mask(net->input.dense, (static_cast<int64_t>(in_taps.size()) - 1) * C, C, true);
  for (int b = 0; b < 2; ++b) {
    PixelCNNEngine::Block block;
    block.reduce = w.dense(2 * h, h);
    mask(block.reduce, 0, 2 * h, false);
    const auto taps = mask_taps(3, true);
    block.conv = w.conv(taps, h, h);
    mask(block.conv.dense, (static_cast<int64_t>(taps.size()) - 1) * h, h, false);
    block.expand = w.dense(h, 2 * h);
    mask(block.expand, 0, h, false);
    net->blocks.push_back(std::move(block));
  }
  net->out1 = w.dense(2 * h, 8);
  mask(net->out1, 0, 2 * h, false);
  net->out2 = w.dense(8, kLevels * C);
  mask(net->out2, 0, 8, false);
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

/// Two RGB images [2][3][7][9] with values < 16.
inline std::vector<uint8_t> fixture_rgb_images() {
  std::vector<uint8_t> x;
  for (int64_t b = 0; b < 2; ++b)
    for (int64_t c = 0; c < 3; ++c)
      for (int64_t i = 0; i < 7; ++i)
        for (int64_t j = 0; j < 9; ++j)
          x.push_back(static_cast<uint8_t>((i * (b + 2) + j * (c + 1) + (i > j ? 5 * c : 0)) % 16));
  return x;
}

}  // namespace tame::fixtures
