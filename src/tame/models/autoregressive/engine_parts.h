// Small pieces the step engines share (step_engine.cpp, pixelrnn_engine.cpp):
// ring writes, tap reach, the head's colour pick. Internal to the engines.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "tame/nn/step_kernels.h"

namespace tame::engine_parts {

inline void relu_copy(const float* in, int64_t n, float* out) {
  for (int64_t k = 0; k < n; ++k) out[k] = in[k] > 0.0f ? in[k] : 0.0f;
}

/// logits[b][k] = features[b][k * C + c]: the output feature of level k, colour c.
inline void pick_colour(const float* features, int64_t n, int64_t levels, int64_t colours,
                        int64_t c, float* logits) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < levels; ++k)
      logits[b * levels + k] = features[(b * levels + k) * colours + c];
}

inline void grow(std::vector<float>& v, int64_t size) {
  if (static_cast<int64_t>(v.size()) < size) v.resize(size);
}

/// Rows above the current one that a convolution's taps reach.
inline int64_t reach(const steps::Conv& conv) {
  int64_t up = 0;
  for (const auto& t : conv.taps) up = std::max(up, -t.dy);
  return up;
}

inline size_t bytes_of(const std::vector<std::vector<float>>& maps) {
  size_t total = 0;
  for (const auto& m : maps) total += sizeof(float) * m.size();
  return total;
}

/// Writes ch floats per image into a ring [n][rows][W][ch] at pixel (i, j).
inline void put_ring(float* ring, int64_t n, int64_t rows, int64_t W, int64_t ch, int64_t i,
                     int64_t j, const float* src) {
  for (int64_t b = 0; b < n; ++b)
    std::memcpy(ring + ((b * rows + i % rows) * W + j) * ch, src + b * ch, sizeof(float) * ch);
}

/// The two 1x1 head layers on relu(h) [n][hidden]: out2(relu(out1(relu(h)))),
/// then colour c's K logits (feature k * C + c). t, o1, o2: scratch.
inline void head(const steps::Dense& out1, const steps::Dense& out2, const float* h, int64_t n,
                 int64_t levels, int64_t colours, int64_t c, std::vector<float>& t,
                 std::vector<float>& o1, std::vector<float>& o2, float* logits) {
  grow(t, n * out1.in);
  grow(o1, n * out1.out);
  grow(o2, n * out2.out);
  relu_copy(h, n * out1.in, t.data());
  steps::dense(out1, t.data(), out1.in, n, o1.data(), out1.out);
  steps::relu_inplace(o1.data(), n * out1.out);
  steps::dense(out2, o1.data(), out1.out, n, o2.data(), out2.out);
  pick_colour(o2.data(), n, levels, colours, c, logits);
}

}  // namespace tame::engine_parts
