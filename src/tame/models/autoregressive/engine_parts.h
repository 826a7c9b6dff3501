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

/// The outputs of a colour-masked layer that belong to colour c, in order:
/// output o has colour o % colours (nn/masked_conv.h).
inline std::vector<int64_t> colour_columns(int64_t outputs, int64_t colours, int64_t c) {
  std::vector<int64_t> cols;
  for (int64_t o = c; o < outputs; o += colours) cols.push_back(o);
  return cols;
}

/// The layer restricted to the outputs `cols`, in that order: each is computed
/// exactly as `d` computes it (the same sum over every input, in the same order).
inline steps::Dense columns_of(const steps::Dense& d, const std::vector<int64_t>& cols) {
  steps::Dense out;
  out.in = d.in;
  out.out = static_cast<int64_t>(cols.size());
  out.w.resize(out.in * out.out);
  out.b.resize(out.out);
  for (int64_t m = 0; m < out.out; ++m) {
    out.b[m] = d.b[cols[m]];
    for (int64_t k = 0; k < d.in; ++k) out.w[k * out.out + m] = d.w[k * d.out + cols[m]];
  }
  return out;
}

/// The two 1x1 head layers, out2(relu(out1(relu(h)))), split by colour: the
/// step for colour c computes only the out1 features of colour c and colour
/// c's K logits (out2's features k * C + c). Both layers are colour-masked
/// (mask B), so colour c's outputs read only features of colours <= c: those
/// of earlier colours are kept from their steps of the same pixel, and the
/// later colours' ones (stale) meet weights the mask set to zero. Each value is
/// the full layer's, bit for bit; C colours cost one head pass, not C.
class ColourHead {
 public:
  ColourHead(const steps::Dense& out1, const steps::Dense& out2, int64_t colours, int64_t levels)
      : in_(out1.in), mid_(out1.out), levels_(levels) {
    for (int64_t c = 0; c < colours; ++c) {
      cols1_.push_back(colour_columns(out1.out, colours, c));
      out1_.push_back(columns_of(out1, cols1_.back()));
      out2_.push_back(columns_of(out2, colour_columns(levels * colours, colours, c)));
    }
  }
  /// Colour c's logits [n][levels] from h [n][out1.in]. Steps of one pixel run
  /// in colour order, as the engines do.
  void logits(const float* h, int64_t n, int64_t c, float* logits) {
    grow(t_, n * in_);
    grow(mid_c_, n * mid_);
    grow(mid_all_, n * mid_);
    relu_copy(h, n * in_, t_.data());
    const auto& cols = cols1_[c];
    const int64_t k = static_cast<int64_t>(cols.size());
    steps::dense(out1_[c], t_.data(), in_, n, mid_c_.data(), k);
    for (int64_t b = 0; b < n; ++b)
      for (int64_t m = 0; m < k; ++m) {
        const float v = mid_c_[b * k + m];
        mid_all_[b * mid_ + cols[m]] = v > 0.0f ? v : 0.0f;
      }
    steps::dense(out2_[c], mid_all_.data(), mid_, n, logits, levels_);
  }

 private:
  int64_t in_, mid_, levels_;
  std::vector<std::vector<int64_t>> cols1_;
  std::vector<steps::Dense> out1_, out2_;
  std::vector<float> t_, mid_c_, mid_all_;
};

}  // namespace tame::engine_parts
