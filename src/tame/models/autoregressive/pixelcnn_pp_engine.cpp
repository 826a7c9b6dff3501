#include "tame/models/autoregressive/pixelcnn_pp_engine.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "tame/dist/integer_cdf.h"
#include "tame/models/autoregressive/engine_parts.h"

namespace tame {

using engine_parts::grow;

namespace {

// ceil(size / 2^level): the side of a map at that level.
int64_t side(int64_t size, int64_t level) {
  for (int64_t l = 0; l < level; ++l) size = (size + 1) / 2;
  return size;
}

float elu(float x) { return x > 0.0f ? x : steps::det_exp(x) - 1.0f; }

// out = [elu(v) | elu(-v)] for F values, through the vectorized exp (the same
// bits as det_exp, so the same values as elu() above).
void concat_elu(const float* v, int64_t F, float* out) {
  for (int64_t q = 0; q < F; ++q) {
    out[q] = std::min(v[q], 0.0f);
    out[F + q] = std::min(-v[q], 0.0f);
  }
  steps::exp_shifted(out, 2 * F, 0.0f, out);
  for (int64_t q = 0; q < F; ++q) {
    out[q] = v[q] > 0.0f ? v[q] : out[q] - 1.0f;
    out[F + q] = -v[q] > 0.0f ? -v[q] : out[F + q] - 1.0f;
  }
}

// Rows [lo, hi] of a map; empty when lo > hi.
struct Span {
  int64_t lo = 1, hi = 0;
  bool empty() const { return lo > hi; }
  void join(Span s) {
    if (s.empty()) return;
    if (empty()) {
      *this = s;
    } else {
      lo = std::min(lo, s.lo);
      hi = std::max(hi, s.hi);
    }
  }
};

// The input rows a term reads for output rows s, clipped to [0, height).
Span term_rows(const PixelCnnPPEngine::Term& t, Span s, int64_t height) {
  if (s.empty()) return s;
  int64_t dy_lo = 0, dy_hi = 0;
  bool any = false;
  for (const auto& conv : t.convs)
    for (const auto& tap : conv.taps) {
      dy_lo = any ? std::min(dy_lo, tap.dy) : tap.dy;
      dy_hi = any ? std::max(dy_hi, tap.dy) : tap.dy;
      any = true;
    }
  if (!any) return {};
  Span r;
  if (t.up) {
    r = {s.lo / 2 + dy_lo, s.hi / 2 + dy_hi};
  } else {
    const int64_t a = std::max<int64_t>(s.lo + t.shift_y, 0), b = s.hi + t.shift_y;
    if (a > b) return {};
    r = {t.stride * a + dy_lo, t.stride * b + dy_hi};
  }
  r.lo = std::max<int64_t>(r.lo, 0);
  r.hi = std::min(r.hi, height - 1);
  return r;
}

// Where a term's taps are anchored for output (i, j), and which tap set it
// uses; no conv where the term's shift makes it zero.
struct Source {
  int64_t y = 0, x = 0;
  const steps::Conv* conv = nullptr;
};
Source source(const PixelCnnPPEngine::Term& t, int64_t i, int64_t j) {
  if (t.up) return {i / 2, j / 2, &t.convs[(i % 2) * 2 + j % 2]};
  if (i + t.shift_y < 0 || j + t.shift_x < 0) return {};
  return {t.stride * (i + t.shift_y), t.stride * (j + t.shift_x), &t.convs[0]};
}

}  // namespace

PixelCnnPPEngine::PixelCnnPPEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels,
                                   int rule)
    : StepEngine(channels, levels), net_(std::move(net)), rule_(rule) {
  if (rule != kMassRule && rule != kEdgeRule)
    throw std::invalid_argument("PixelCnnPPEngine: unknown frequency rule");
  P_ = mixture_features(channels, net_->mixtures);
  if (channels > kMaxChannels) throw std::invalid_argument("PixelCnnPPEngine: at most 16 channels");
  if (net_->nodes.empty() || net_->head.out != P_)
    throw std::invalid_argument("PixelCnnPPEngine: the head must give the mixture's parameters");
  elu_read_.assign(net_->nodes.size(), 0);
  for (const auto& node : net_->nodes)
    for (const auto& t : node.terms) {
      int64_t raw = 0;  // channels of the concatenation
      for (int64_t in : t.inputs) {
        raw += in == kImage ? C_ + 1 : net_->nodes[in].channels;
        if (!t.concat_elu) continue;
        if (in == kImage)
          throw std::invalid_argument("PixelCnnPPEngine: the image is read without concat_elu");
        elu_read_[in] = 1;
      }
      for (const auto& conv : t.convs)
        if (conv.dense.in != (t.concat_elu ? 2 : 1) * raw * static_cast<int64_t>(conv.taps.size()))
          throw std::invalid_argument("PixelCnnPPEngine: a term's weights do not match its inputs");
    }
}

std::unique_ptr<StepEngine> PixelCnnPPEngine::clone() const {
  return std::make_unique<PixelCnnPPEngine>(net_, C_, K_, rule_);
}

std::unique_ptr<PixelCnnPPEngine> PixelCnnPPEngine::with_rule(int rule) const {
  return std::make_unique<PixelCnnPPEngine>(net_, C_, K_, rule);
}

std::shared_ptr<const ImageCoder> PixelCnnPPEngine::earlier_rule(uint64_t fingerprint) const {
  if (rule_ == kMassRule) return nullptr;
  std::shared_ptr<const ImageCoder> masses = with_rule(kMassRule);
  return masses->fingerprint() == fingerprint ? masses : nullptr;
}

StepEngine::Identity PixelCnnPPEngine::identity() const {
  // Rule 1's identity has no rule in it: its files came first.
  std::vector<int64_t> geometry{net_->mixtures, static_cast<int64_t>(net_->nodes.size())};
  if (rule_ != kMassRule) geometry.push_back(rule_);
  return {106, 0, geometry};
}

void PixelCnnPPEngine::hash(steps::Fingerprint& f) const {
  for (const auto& node : net_->nodes) {
    for (int64_t v : {node.level, node.channels, node.residual}) f.add(v);
    for (const auto& t : node.terms) {
      for (int64_t in : t.inputs) f.add(in);
      for (int64_t v : {int64_t{t.concat_elu}, t.stride, int64_t{t.up}, t.shift_y, t.shift_x})
        f.add(v);
      for (const auto& c : t.convs) f.add(c);
    }
  }
  f.add(net_->head);
}

int64_t PixelCnnPPEngine::map_height(int64_t in) const {
  return in == kImage ? H_ : cache_[in].height;
}
int64_t PixelCnnPPEngine::map_width(int64_t in) const {
  return in == kImage ? W_ : cache_[in].width;
}

std::vector<int64_t> PixelCnnPPEngine::ring_rows(int64_t height) const {
  const auto& nodes = net_->nodes;
  const int64_t N = static_cast<int64_t>(nodes.size());
  auto rows_of = [&](int64_t in) { return in == kImage ? height : side(height, nodes[in].level); };
  auto slot_of = [&](int64_t in) { return in == kImage ? N : in; };
  // While the head works on row i, node k has computed rows up to need[k].hi
  // (the rows its readers reach, carried back from the head's row). Rows it
  // computes now lie in [previous hi - 1, hi] (the one before the previous hi
  // too, as a margin), and only those read their inputs, so an input must
  // still hold the lowest row they read, up to its own hi.
  std::vector<int64_t> ring(N + 1, 1), prev_hi(N, -1);  // the image last
  std::vector<Span> need(N + 1);
  std::vector<int64_t> lowest(N + 1);
  for (int64_t i = 0; i < height; ++i) {
    std::fill(need.begin(), need.end(), Span{});
    need[N - 1] = {i, i};
    for (int64_t k = N - 1; k >= 0; --k) {
      if (need[k].empty()) continue;
      if (nodes[k].residual >= 0) need[nodes[k].residual].join(need[k]);
      for (const auto& t : nodes[k].terms)
        for (int64_t in : t.inputs) need[slot_of(in)].join(term_rows(t, need[k], rows_of(in)));
    }
    need[N].join({i, i});  // the row being observed
    for (int64_t k = 0; k <= N; ++k) lowest[k] = need[k].empty() ? 0 : need[k].hi;
    lowest[N - 1] = std::min<int64_t>(lowest[N - 1], i);  // the head reads row i
    lowest[N] = std::min<int64_t>(lowest[N], i);
    for (int64_t k = 0; k < N; ++k) {
      if (need[k].empty()) continue;
      const Span fresh = {prev_hi[k] < 0 ? need[k].lo : std::max(need[k].lo, prev_hi[k] - 1),
                          need[k].hi};
      prev_hi[k] = need[k].hi;
      if (nodes[k].residual >= 0)
        lowest[nodes[k].residual] = std::min(lowest[nodes[k].residual], fresh.lo);
      for (const auto& t : nodes[k].terms)
        for (int64_t in : t.inputs) {
          const Span r = term_rows(t, fresh, rows_of(in));
          if (!r.empty()) lowest[slot_of(in)] = std::min(lowest[slot_of(in)], r.lo);
        }
    }
    for (int64_t k = 0; k <= N; ++k)
      if (!need[k].empty()) ring[k] = std::max(ring[k], need[k].hi - lowest[k] + 1);
  }
  return ring;
}

int64_t PixelCnnPPEngine::input_rows() const { return ring_rows(H_).back(); }

void PixelCnnPPEngine::start(int64_t n) {
  const auto& nodes = net_->nodes;
  const auto ring = ring_rows(H_);
  cache_.assign(nodes.size(), {});
  int64_t max_in = net_->head.in, max_out = P_;
  for (size_t k = 0; k < nodes.size(); ++k) {
    Cache& c = cache_[k];
    c.height = side(H_, nodes[k].level);
    c.width = side(W_, nodes[k].level);
    c.rows = std::min(ring[k], c.height);
    c.data.assign(n * c.rows * c.width * nodes[k].channels, 0.0f);
    if (elu_read_[k]) c.elu.assign(2 * c.data.size(), 0.0f);
    c.tag.assign(c.rows, -1);
    c.done.assign(c.rows * c.width, 0);
    for (const auto& t : nodes[k].terms)
      for (const auto& conv : t.convs) {
        max_in = std::max(max_in, conv.dense.in);
        max_out = std::max(max_out, conv.dense.out);
      }
  }
  grow(rows_, n * max_in);
  grow(acc_, n * max_out);
  grow(out_, n * max_out);
  grow(t_, n * net_->head.in);
  grow(pix_, n * P_);
  grow(gate_, n * max_out);
}

size_t PixelCnnPPEngine::layer_bytes() const {
  size_t total = 0;
  for (const auto& c : cache_) total += sizeof(float) * (c.data.size() + c.elu.size());
  return total;
}

const float* PixelCnnPPEngine::read(int64_t in, int64_t b, int64_t y, int64_t x, bool elu) const {
  if (in == kImage) throw std::logic_error("PixelCnnPPEngine::read: the image is gathered");
  const Cache& c = cache_[in];
  const int64_t slot = y % c.rows;
  if (c.tag[slot] != y || !c.done[slot * c.width + x])
    throw std::logic_error("PixelCnnPPEngine: a cached row was overwritten before it was read");
  const int64_t at = ((b * c.rows + slot) * c.width + x) * net_->nodes[in].channels;
  return elu ? c.elu.data() + 2 * at : c.data.data() + at;
}

void PixelCnnPPEngine::ensure(int64_t node, int64_t i, int64_t j) {
  Cache& c = cache_[node];
  const int64_t slot = i % c.rows;
  if (c.tag[slot] != i) {
    if (c.tag[slot] > i)
      throw std::logic_error("PixelCnnPPEngine: a row was needed after its slot was reused");
    c.tag[slot] = i;
    std::fill_n(c.done.begin() + slot * c.width, c.width, char{0});
  }
  if (c.done[slot * c.width + j]) return;
  const Node& nd = net_->nodes[node];
  if (nd.residual >= 0) ensure(nd.residual, i, j);
  for (const auto& t : nd.terms) {
    const Source src = source(t, i, j);
    if (!src.conv) continue;
    const int64_t y0 = src.y, x0 = src.x;
    const steps::Conv* conv = src.conv;
    for (int64_t in : t.inputs) {
      if (in == kImage) continue;
      const int64_t h = map_height(in), w = map_width(in);
      for (const auto& tap : conv->taps) {
        const int64_t y = y0 + tap.dy, x = x0 + tap.dx;
        if (y >= 0 && y < h && x >= 0 && x < w) ensure(in, y, x);
      }
    }
  }
  run(node, i, j);
  c.done[slot * c.width + j] = 1;
}

void PixelCnnPPEngine::run(int64_t node, int64_t i, int64_t j) {
  const Node& nd = net_->nodes[node];
  const int64_t n = n_, out_ch = nd.residual >= 0 ? 2 * nd.channels : nd.channels;
  std::fill_n(acc_.begin(), n * out_ch, 0.0f);
  for (const auto& t : nd.terms) {
    const Source src = source(t, i, j);
    if (!src.conv) continue;
    const int64_t y0 = src.y, x0 = src.x;
    const steps::Conv* conv = src.conv;
    int64_t raw = 0;  // channels of the concatenation
    for (int64_t in : t.inputs) raw += in == kImage ? C_ + 1 : net_->nodes[in].channels;
    const int64_t per_tap = t.concat_elu ? 2 * raw : raw, in_dim = conv->dense.in;
    for (int64_t b = 0; b < n; ++b) {
      float* row = rows_.data() + b * in_dim;
      for (size_t k = 0; k < conv->taps.size(); ++k) {
        const int64_t y = y0 + conv->taps[k].dy, x = x0 + conv->taps[k].dx;
        float* seg = row + k * per_tap;
        int64_t at = 0;
        for (int64_t in : t.inputs) {
          const int64_t ch = in == kImage ? C_ + 1 : net_->nodes[in].channels;
          const bool inside = y >= 0 && y < map_height(in) && x >= 0 && x < map_width(in);
          if (!inside) {
            std::fill_n(seg + at, ch, 0.0f);
            if (t.concat_elu) std::fill_n(seg + raw + at, ch, 0.0f);
          } else if (t.concat_elu) {  // elu(x) here, elu(-x) after the concatenation
            const float* e = read(in, b, y, x, true);
            std::memcpy(seg + at, e, sizeof(float) * ch);
            std::memcpy(seg + raw + at, e + ch, sizeof(float) * ch);
          } else if (in == kImage) {
            if (y * W_ + x >= pixel_)
              throw std::logic_error("PixelCnnPPEngine: read a pixel that is not known yet");
            std::memcpy(seg + at, x_.data() + ((b * R_ + y % R_) * W_ + x) * C_,
                        sizeof(float) * C_);
            seg[at + C_] = 1.0f;
          } else {
            std::memcpy(seg + at, read(in, b, y, x), sizeof(float) * ch);
          }
          at += ch;
        }
      }
    }
    steps::dense(conv->dense, rows_.data(), in_dim, n, out_.data(), out_ch);
    for (int64_t q = 0; q < n * out_ch; ++q) acc_[q] = acc_[q] + out_[q];
  }
  Cache& c = cache_[node];
  const int64_t F = nd.channels, slot = i % c.rows;
  for (int64_t b = 0; b < n; ++b) {
    float* dst = c.data.data() + ((b * c.rows + slot) * c.width + j) * F;
    const float* a = acc_.data() + b * out_ch;
    if (nd.residual < 0) {
      std::memcpy(dst, a, sizeof(float) * F);
    } else {
      const float* x = read(nd.residual, b, i, j);
      steps::sigmoid(a + F, F, gate_.data());
      for (int64_t q = 0; q < F; ++q) dst[q] = x[q] + a[q] * gate_[q];
    }
    if (elu_read_[node]) concat_elu(dst, F, c.elu.data() + 2 * (dst - c.data.data()));
  }
}

void PixelCnnPPEngine::compute(SubPixel p, float* params) {
  const int64_t n = n_;
  if (p.c == 0) {
    pixel_ = p.i * W_ + p.j;
    const int64_t last = static_cast<int64_t>(net_->nodes.size()) - 1;
    ensure(last, p.i, p.j);
    const int64_t F = net_->head.in;
    for (int64_t b = 0; b < n; ++b) {
      const float* h = read(last, b, p.i, p.j);
      for (int64_t q = 0; q < F; ++q) t_[b * F + q] = elu(h[q]);
    }
    steps::dense(net_->head, t_.data(), F, n, pix_.data(), P_);
  }
  std::memcpy(params, pix_.data(), sizeof(float) * n * P_);
}

void PixelCnnPPEngine::prepare_edges(int64_t b, SubPixel p, const float* params, uint32_t precision,
                                     double temperature) const {
  edges_.prepare(params, C_, p.c, earlier(b, p).data(), net_->mixtures, K_, precision, temperature);
}

std::array<uint16_t, PixelCnnPPEngine::kMaxChannels> PixelCnnPPEngine::earlier(int64_t b,
                                                                               SubPixel p) const {
  std::array<uint16_t, kMaxChannels> out{};
  const auto& v = images();
  for (int64_t c = 0; c < p.c; ++c) out[c] = v[((b * C_ + c) * H_ + p.i) * W_ + p.j];
  return out;
}

double PixelCnnPPEngine::write_cdf(int64_t b, SubPixel p, const float* params, uint32_t precision,
                                   double temperature, uint32_t* cdf, int64_t value) const {
  if (rule_ == kMassRule)
    return logistic_mixture_cdf(params, C_, p.c, earlier(b, p).data(), net_->mixtures, K_,
                                precision, cdf, value, temperature);
  prepare_edges(b, p, params, precision, temperature);
  edges_.table(cdf);
  return value < 0 ? 0.0 : edges_.bits(value);
}

Symbol PixelCnnPPEngine::code_symbol(int64_t b, SubPixel p, const float* params, uint32_t precision,
                                     double temperature, int64_t value, uint32_t slot,
                                     double* bits) const {
  if (rule_ == kMassRule)
    return StepEngine::code_symbol(b, p, params, precision, temperature, value, slot, bits);
  prepare_edges(b, p, params, precision, temperature);
  uint32_t start = 0, end = 0;
  if (value < 0) {
    const uint16_t v = edges_.find(slot, &start, &end);
    return {start, end - start, v};
  }
  if (bits) *bits += edges_.bits(value);
  start = edges_.cdf(value);
  return {start, edges_.cdf(value + 1) - start, static_cast<uint16_t>(value)};
}

}  // namespace tame
