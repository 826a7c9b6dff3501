#include "tame/models/autoregressive/pixelrnn_engine.h"

#include <algorithm>

#include "tame/models/autoregressive/engine_parts.h"

namespace tame {

using engine_parts::bytes_of;
using engine_parts::grow;
using engine_parts::put_ring;
using engine_parts::reach;
using steps::dense;
using steps::gather_taps;

PixelRNNEngine::PixelRNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels)
    : StepEngine(channels, levels),
      net_(std::move(net)),
      head_(net_->out1, net_->out2, channels, levels) {}

std::unique_ptr<StepEngine> PixelRNNEngine::clone() const {
  return std::make_unique<PixelRNNEngine>(net_, C_, K_);
}

StepEngine::Identity PixelRNNEngine::identity() const {
  return {net_->diagonal ? 105 : 104, 0, {net_->hidden}};
}

void PixelRNNEngine::hash(steps::Fingerprint& f) const {
  f.add(net_->input);
  for (const auto& l : net_->layers) {
    f.add(l.fwd.is);
    f.add(l.fwd.ss);
    if (net_->diagonal) {
      f.add(l.bwd.is);
      f.add(l.bwd.ss);
    }
    f.add(l.out);
  }
  f.add(net_->out1);
  f.add(net_->out2);
}

int64_t PixelRNNEngine::input_rows() const { return reach(net_->input) + 1; }

size_t PixelRNNEngine::layer_bytes() const {
  return bytes_of(in_) + bytes_of(h_) + bytes_of(c_) + bytes_of(hb_) + bytes_of(cb_);
}

void PixelRNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t h = N.hidden, L = static_cast<int64_t>(N.layers.size());
  const int64_t row = n * W_ * h;
  in_.assign(L, std::vector<float>(row, 0.0f));
  h_.assign(L, std::vector<float>(2 * row, 0.0f));
  c_.assign(L, std::vector<float>(2 * row, 0.0f));
  hb_.assign(N.diagonal ? L : 0, std::vector<float>(2 * row, 0.0f));
  cb_.assign(N.diagonal ? L : 0, std::vector<float>(row, 0.0f));
  backward_done_ = -1;
  int64_t max_in = N.input.dense.in;
  for (const auto& l : N.layers) max_in = std::max({max_in, l.fwd.is.dense.in, l.fwd.ss.dense.in});
  grow(rows_, n * max_in);
  grow(cur_, n * h);
  grow(g_, n * 4 * h);
  grow(s_, n * 4 * h);
  grow(gb_, N.diagonal ? row * 4 : 0);
  zero_.assign(h, 0.0f);
}

template <class CPrev, class Out>
void PixelRNNEngine::step_cells(const steps::Conv& ss, const float* h_ring, int64_t i, int64_t j,
                                CPrev c_prev, Out out) {
  const int64_t n = n_, h = net_->hidden, g4 = 4 * h;
  gather_taps(h_ring, n, 2, H_, W_, h, i, j, ss.taps, rows_.data(), ss.dense.in);
  dense(ss.dense, rows_.data(), ss.dense.in, n, s_.data(), g4);
  for (int64_t b = 0; b < n; ++b) {
    float* g = g_.data() + b * g4;
    const float* s = s_.data() + b * g4;
    for (int64_t m = 0; m < g4; ++m) g[m] = g[m] + s[m];
    auto [c, hh] = out(b);
    steps::lstm_cell(g, c_prev(b), h, c, hh);
  }
}

void PixelRNNEngine::forward_state(size_t l, int64_t i, int64_t j, const float* cur) {
  const Net& N = *net_;
  const Layer& L = N.layers[l];
  const int64_t n = n_, h = N.hidden, g4 = 4 * h, slot = i % 2, prev = (i + 1) % 2;
  if (N.diagonal) {
    dense(L.fwd.is.dense, cur, h, n, g_.data(), g4);
  } else {
    gather_taps(in_[l].data(), n, 1, H_, W_, h, 0, j, L.fwd.is.taps, rows_.data(),
                L.fwd.is.dense.in);
    dense(L.fwd.is.dense, rows_.data(), L.fwd.is.dense.in, n, g_.data(), g4);
  }
  float* hs = h_[l].data();
  float* cs = c_[l].data();
  auto at = [&](float* ring, int64_t b, int64_t s, int64_t col) {
    return ring + ((b * 2 + s) * W_ + col) * h;
  };
  // Row LSTM: the cell of (i-1, j); Diagonal: of (i, j-1). Zero outside the image.
  auto c_prev = [&](int64_t b) -> const float* {
    if (N.diagonal) return j > 0 ? at(cs, b, slot, j - 1) : zero_.data();
    return i > 0 ? at(cs, b, prev, j) : zero_.data();
  };
  auto out = [&](int64_t b) { return std::pair{at(cs, b, slot, j), at(hs, b, slot, j)}; };
  step_cells(L.fwd.ss, hs, i, j, c_prev, out);
}

void PixelRNNEngine::right_to_left_row(int64_t r) {
  const Net& N = *net_;
  const int64_t n = n_, h = N.hidden, g4 = 4 * h, slot = r % 2;
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const Layer& L = N.layers[l];
    // The input-to-state part of the whole row at once: rows (b, j) at b W + j.
    dense(L.bwd.is.dense, in_[l].data(), h, n * W_, gb_.data(), g4);
    float* hs = hb_[l].data();
    float* cs = cb_[l].data();
    for (int64_t j = W_ - 1; j >= 0; --j) {
      for (int64_t b = 0; b < n; ++b)
        std::copy_n(gb_.data() + (b * W_ + j) * g4, g4, g_.data() + b * g4);
      auto c_prev = [&](int64_t b) -> const float* {
        return j + 1 < W_ ? cs + (b * W_ + j + 1) * h : zero_.data();
      };
      auto out = [&](int64_t b) {
        return std::pair{cs + (b * W_ + j) * h, hs + ((b * 2 + slot) * W_ + j) * h};
      };
      step_cells(L.bwd.ss, hs, r, j, c_prev, out);
    }
  }
}

void PixelRNNEngine::compute(SubPixel p, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, h = N.hidden, i = p.i, j = p.j;
  if (N.diagonal && backward_done_ != i - 1) {
    right_to_left_row(i - 1);
    backward_done_ = i - 1;
  }
  gather_taps(x_.data(), n, R_, H_, W_, C_, i, j, N.input.taps, rows_.data(), N.input.dense.in);
  dense(N.input.dense, rows_.data(), N.input.dense.in, n, cur_.data(), h);
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const Layer& L = N.layers[l];
    put_ring(in_[l].data(), n, 1, W_, h, 0, j, cur_.data());
    forward_state(l, i, j, cur_.data());
    // The layer's output: input + out(state), with the right-to-left state of
    // the row above added first (the torch model's shift down).
    for (int64_t b = 0; b < n; ++b) {
      const float* fs = h_[l].data() + ((b * 2 + i % 2) * W_ + j) * h;
      float* s = s_.data() + b * h;
      std::copy_n(fs, h, s);
      if (N.diagonal && i > 0) {
        const float* bs = hb_[l].data() + ((b * 2 + (i + 1) % 2) * W_ + j) * h;
        for (int64_t m = 0; m < h; ++m) s[m] = s[m] + bs[m];
      }
    }
    dense(L.out, s_.data(), h, n, g_.data(), h);
    for (int64_t k = 0; k < n * h; ++k) cur_[k] = cur_[k] + g_[k];
  }
  head_.logits(cur_.data(), n, p.c, logits);
}

}  // namespace tame
