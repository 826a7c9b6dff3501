#include "tame/nn/step_kernels.h"

#include <climits>
#include <cstdint>
#include <cstring>

// The 32-byte vectors never cross a non-inlined call, so the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tame::steps {

namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

// Everything below is inlined into the avx2 and the default clone of each
// public kernel, so each clone runs at its own vector width.
#define TAME_INLINE __attribute__((always_inline)) inline
// The public kernels come in an AVX2 and a baseline version, picked at load
// time; both give the same bits (lanes are independent, no FMA). Clang (the
// fuzz build) rejects the 32-byte helpers across clones, so it builds one.
#if defined(__clang__)
#define TAME_CLONES
#else
#define TAME_CLONES __attribute__((target_clones("avx2", "default")))
#endif

TAME_INLINE v8 load8(const float* p) {
  v8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
TAME_INLINE void store8(float* p, v8 v) { std::memcpy(p, &v, sizeof v); }
// A broadcast (vbroadcastss): an initializer list of eight copies compiles to a
// chain of inserts instead, which made dense() three times slower.
TAME_INLINE v8 splat(float a) {
#if defined(__clang__)
  const v8 v{a};
  return __builtin_shufflevector(v, v, 0, 0, 0, 0, 0, 0, 0, 0);
#else
  return __builtin_shuffle(v8{a}, v8i{});
#endif
}
TAME_INLINE v8 select(v8i mask, v8 a, v8 b) {
  v8i r = (mask & reinterpret_cast<v8i>(a)) | (~mask & reinterpret_cast<v8i>(b));
  return reinterpret_cast<v8>(r);
}

// exp(x) = 2^n * exp(f), n = round(x / ln 2), f = x - n ln 2 in [-ln2/2, ln2/2]
// (ln 2 split in two parts so that n * ln2_hi is exact), exp(f) by its
// degree-7 Taylor polynomial (truncation error < 1e-8 on that interval).
// Inputs are clamped to [-87, 88].
TAME_INLINE v8 exp8(v8 x) {
  x = select(x > splat(88.0f), splat(88.0f), x);
  x = select(x < splat(-87.0f), splat(-87.0f), x);
  const v8 t = x * splat(1.44269504088896341f);
  const v8i n =
      __builtin_convertvector(t + select(t < splat(0.0f), splat(-0.5f), splat(0.5f)), v8i);
  const v8 nf = __builtin_convertvector(n, v8);
  v8 f = x - nf * splat(0.693145751953125f);
  f = f - nf * splat(1.428606765330187e-06f);
  v8 p = splat(1.0f / 5040);
  p = p * f + splat(1.0f / 720);
  p = p * f + splat(1.0f / 120);
  p = p * f + splat(1.0f / 24);
  p = p * f + splat(1.0f / 6);
  p = p * f + splat(0.5f);
  p = p * f + splat(1.0f);
  p = p * f + splat(1.0f);
  const v8i bits = (n + 127) << 23;  // 2^n, n in [-126, 127]
  return p * reinterpret_cast<v8>(bits);
}

// tanh x = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); below |x| = 1/16 the odd
// Taylor series instead, which avoids the cancellation in 1 - e.
TAME_INLINE v8 tanh8(v8 x) {
  const v8i sign = reinterpret_cast<v8i>(x) & (v8i{} + INT32_MIN);
  const v8 a = reinterpret_cast<v8>(reinterpret_cast<v8i>(x) & ~sign);
  const v8 a2 = a * a;
  const v8 small =
      a + a * a2 * (splat(-1.0f / 3) + a2 * (splat(2.0f / 15) + a2 * splat(-17.0f / 315)));
  const v8 e = exp8(splat(-2.0f) * a);
  const v8 big = (splat(1.0f) - e) / (splat(1.0f) + e);
  const v8 r = select(a < splat(0.0625f), small, big);
  return reinterpret_cast<v8>(reinterpret_cast<v8i>(r) | sign);
}

TAME_INLINE v8 sigmoid8(v8 x) { return splat(1.0f) / (splat(1.0f) + exp8(-x)); }

// R rows x (8 * V) columns starting at column m0: accumulators live in
// registers, k runs in order. Columns past d.out are computed from the padded
// weights but never stored.
template <int R, int V>
TAME_INLINE void dense_block(const Dense& d, const float* in, int64_t in_stride, float* out,
                             int64_t out_stride, int64_t m0, int64_t ncols) {
  v8 acc[R][V];
  const int64_t M = d.out;
  float bias[8 * V];
  for (int v = 0; v < 8 * V; ++v) bias[v] = m0 + v < M ? d.b[m0 + v] : 0.0f;
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = load8(bias + 8 * v);
  const float* w = d.w.data() + m0;
  auto step = [&](const v8* wv, int64_t k) __attribute__((always_inline)) {
    for (int r = 0; r < R; ++r) {
      const v8 av = splat(in[r * in_stride + k]);
      for (int v = 0; v < V; ++v) acc[r][v] = acc[r][v] + av * wv[v];
    }
  };
  if (ncols == 8 * V) {
    for (int64_t k = 0; k < d.in; ++k, w += M) {
      v8 wv[V];
      for (int v = 0; v < V; ++v) wv[v] = load8(w + 8 * v);
      step(wv, k);
    }
    for (int r = 0; r < R; ++r)
      for (int v = 0; v < V; ++v) store8(out + r * out_stride + m0 + 8 * v, acc[r][v]);
  } else {
    for (int64_t k = 0; k < d.in; ++k, w += M) {
      float tmp[8 * V] = {};
      std::memcpy(tmp, w, sizeof(float) * ncols);
      v8 wv[V];
      for (int v = 0; v < V; ++v) wv[v] = load8(tmp + 8 * v);
      step(wv, k);
    }
    for (int r = 0; r < R; ++r) {
      float tmp[8 * V];
      for (int v = 0; v < V; ++v) store8(tmp + 8 * v, acc[r][v]);
      std::memcpy(out + r * out_stride + m0, tmp, sizeof(float) * ncols);
    }
  }
}

// Columns in blocks of 8 V, then the rest in blocks of 16 and one of at
// most 8 (more accumulators hide the adds' latency when R is small).
template <int R, int V>
TAME_INLINE void dense_rows(const Dense& d, const float* in, int64_t in_stride, float* out,
                            int64_t out_stride) {
  int64_t m0 = 0;
  for (; m0 + 8 * V <= d.out; m0 += 8 * V)
    dense_block<R, V>(d, in, in_stride, out, out_stride, m0, 8 * V);
  for (; m0 + 16 <= d.out; m0 += 16) dense_block<R, 2>(d, in, in_stride, out, out_stride, m0, 16);
  const int64_t tail = d.out - m0;
  if (tail > 8)
    dense_block<R, 2>(d, in, in_stride, out, out_stride, m0, tail);
  else if (tail > 0)
    dense_block<R, 1>(d, in, in_stride, out, out_stride, m0, tail);
}

}  // namespace

TAME_CLONES void dense(const Dense& d, const float* in, int64_t in_stride, int64_t rows, float* out,
                       int64_t out_stride) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6)
    dense_rows<6, 2>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
  for (; r < rows; ++r)
    dense_rows<1, 4>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
}

// The scalar forms run the vector code on lane 0, so that both give the same bits.
float det_exp(float x) { return exp8(splat(x))[0]; }
float det_tanh(float x) { return tanh8(splat(x))[0]; }
float det_sigmoid(float x) { return sigmoid8(splat(x))[0]; }

void relu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

TAME_CLONES void exp_shifted(const float* x, int64_t n, float shift, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, exp8(load8(x + i) - splat(shift)));
  for (; i < n; ++i) out[i] = exp8(splat(x[i]) - splat(shift))[0];
}

TAME_CLONES void sigmoid(const float* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, sigmoid8(load8(in + i)));
  for (; i < n; ++i) out[i] = sigmoid8(splat(in[i]))[0];
}

TAME_CLONES void gate(const float* in, int64_t n, float* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) store8(out + i, tanh8(load8(in + i)) * sigmoid8(load8(in + n + i)));
  if (i < n) {
    float a[8] = {}, b[8] = {}, r[8];
    std::memcpy(a, in + i, sizeof(float) * (n - i));
    std::memcpy(b, in + n + i, sizeof(float) * (n - i));
    store8(r, tanh8(load8(a)) * sigmoid8(load8(b)));
    std::memcpy(out + i, r, sizeof(float) * (n - i));
  }
}

namespace {

TAME_INLINE void lstm8(const float* g, const float* c_prev, int64_t n, float* c, float* h) {
  const v8 i = sigmoid8(load8(g)), f = sigmoid8(load8(g + n)), o = sigmoid8(load8(g + 2 * n));
  const v8 cell = f * load8(c_prev) + i * tanh8(load8(g + 3 * n));
  store8(c, cell);
  store8(h, o * tanh8(cell));
}

}  // namespace

TAME_CLONES void lstm_cell(const float* gates, const float* c_prev, int64_t n, float* c, float* h) {
  int64_t k = 0;
  for (; k + 8 <= n; k += 8) {
    // The four gates of lanes k..k+7 sit n apart; lstm8 reads them through g.
    float g[32];
    for (int q = 0; q < 4; ++q) std::memcpy(g + 8 * q, gates + q * n + k, sizeof(float) * 8);
    lstm8(g, c_prev + k, 8, c + k, h + k);
  }
  if (k < n) {
    const int64_t r = n - k;
    float g[32] = {}, cp[8] = {}, cc[8], hh[8];
    for (int q = 0; q < 4; ++q) std::memcpy(g + 8 * q, gates + q * n + k, sizeof(float) * r);
    std::memcpy(cp, c_prev + k, sizeof(float) * r);
    lstm8(g, cp, 8, cc, hh);
    std::memcpy(c + k, cc, sizeof(float) * r);
    std::memcpy(h + k, hh, sizeof(float) * r);
  }
}

namespace {

// Lanes k..k+7 of lstm_cell_backward; dh, dc may be null (zero).
TAME_INLINE void lstm8_backward(const float* g, const float* c_prev, const float* dh,
                                const float* dc, float* dg, float* dcp) {
  const v8 one = splat(1.0f);
  const v8 i = sigmoid8(load8(g)), f = sigmoid8(load8(g + 8)), o = sigmoid8(load8(g + 16));
  const v8 gg = tanh8(load8(g + 24)), cp = load8(c_prev);
  const v8 tc = tanh8(f * cp + i * gg);
  const v8 vdh = dh ? load8(dh) : splat(0.0f);
  const v8 dcell = (dc ? load8(dc) : splat(0.0f)) + vdh * o * (one - tc * tc);
  store8(dg, dcell * gg * i * (one - i));
  store8(dg + 8, dcell * cp * f * (one - f));
  store8(dg + 16, vdh * tc * o * (one - o));
  store8(dg + 24, dcell * i * (one - gg * gg));
  store8(dcp, dcell * f);
}

}  // namespace

TAME_CLONES void lstm_cell_backward(const float* gates, const float* c_prev, int64_t n,
                                    const float* dh, const float* dc, float* dgates,
                                    float* dc_prev) {
  for (int64_t k = 0; k < n; k += 8) {
    const int64_t r = n - k < 8 ? n - k : 8;
    float g[32] = {}, cp[8] = {}, h[8] = {}, c[8] = {}, dg[32], dcp[8];
    for (int q = 0; q < 4; ++q) std::memcpy(g + 8 * q, gates + q * n + k, sizeof(float) * r);
    std::memcpy(cp, c_prev + k, sizeof(float) * r);
    if (dh) std::memcpy(h, dh + k, sizeof(float) * r);
    if (dc) std::memcpy(c, dc + k, sizeof(float) * r);
    lstm8_backward(g, cp, dh ? h : nullptr, dc ? c : nullptr, dg, dcp);
    for (int q = 0; q < 4; ++q) std::memcpy(dgates + q * n + k, dg + 8 * q, sizeof(float) * r);
    std::memcpy(dc_prev + k, dcp, sizeof(float) * r);
  }
}

void gather_taps(const float* maps, int64_t n, int64_t ring, int64_t height, int64_t width,
                 int64_t ch, int64_t i, int64_t j, const std::vector<Tap>& taps, float* rows,
                 int64_t row_stride) {
  const int64_t image_stride = ring * width * ch;
  for (int64_t b = 0; b < n; ++b) {
    float* dst = rows + b * row_stride;
    for (const auto& t : taps) {
      const int64_t y = i + t.dy, x = j + t.dx;
      if (y < 0 || y >= height || x < 0 || x >= width)
        std::memset(dst, 0, sizeof(float) * ch);
      else
        std::memcpy(dst, maps + b * image_stride + ((y % ring) * width + x) * ch,
                    sizeof(float) * ch);
      dst += ch;
    }
  }
}

void Fingerprint::add(const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
  for (size_t i = 0; i < bytes; ++i) h_ = (h_ ^ p[i]) * 1099511628211ull;
}

void Fingerprint::add(const Conv& c) {
  add(static_cast<int64_t>(c.taps.size()));
  for (const auto& t : c.taps) {
    add(t.dy);
    add(t.dx);
  }
  add(c.dense);
}

void Fingerprint::add(const Dense& d) {
  add(d.in);
  add(d.out);
  add(d.w.data(), d.w.size() * sizeof(float));
  add(d.b.data(), d.b.size() * sizeof(float));
}

}  // namespace tame::steps
