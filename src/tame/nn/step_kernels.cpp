#include "tame/nn/step_kernels.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

// The 32-byte vectors never cross a non-inlined call, so the ABI note is moot.
#pragma GCC diagnostic ignored "-Wpsabi"

namespace tame::steps {

namespace {

typedef float v8 __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));

#define TAME_INLINE __attribute__((always_inline)) inline
// The LSTM kernels come in an AVX2 and a baseline version, picked at load
// time; the others in a baseline, an AVX2 and an AVX-512 version, picked by
// width() (the environment can name one). All give the same bits: lanes are
// independent and there is no FMA. Clang (the fuzz build) rejects the
// 32-byte helpers across clones, so it builds the baseline alone.
#if defined(__clang__)
#define TAME_CLONES
#else
#define TAME_CLONES __attribute__((target_clones("avx2", "default")))
#endif
#if defined(__x86_64__) && !defined(__clang__)
#define TAME_WIDE 1
#else
#define TAME_WIDE 0
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

// A vector type, its integer twin, its lane count and its broadcast. The AVX2
// and AVX-512 forms spell the broadcast out in place (through a helper it
// became a chain of inserts in a target function); the baseline's, lowered to
// SSE2 or to the clones' AVX2, is fastest through splat().
struct Sse8 {
  typedef v8 Vec;
  typedef v8i IVec;
  static constexpr int n = 8;
  static TAME_INLINE v8 broadcast(float a) { return splat(a); }
};
#if TAME_WIDE
struct Avx8 {
  typedef v8 Vec;
  typedef v8i IVec;
  static constexpr int n = 8;
  static TAME_INLINE v8 broadcast(float a) { return __builtin_shuffle(v8{a}, v8i{}); }
};
struct Avx16 {
  typedef v16 Vec;
  typedef v16i IVec;
  static constexpr int n = 16;
  static TAME_INLINE v16 broadcast(float a) { return __builtin_shuffle(v16{a}, v16i{}); }
};
#endif

template <class Vec>
TAME_INLINE Vec loadv(const float* p) {
  Vec v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class Vec>
TAME_INLINE void storev(float* p, const Vec& v) {
  std::memcpy(p, &v, sizeof v);
}
template <class V, class I>
TAME_INLINE V select(I mask, V a, V b) {
  I r = (mask & reinterpret_cast<I>(a)) | (~mask & reinterpret_cast<I>(b));
  return reinterpret_cast<V>(r);
}

// exp(x) = 2^n * exp(f), n = round(x / ln 2), f = x - n ln 2 in [-ln2/2, ln2/2]
// (ln 2 split in two parts so that n * ln2_hi is exact), exp(f) by its
// degree-7 Taylor polynomial (truncation error < 1e-8 on that interval).
// Inputs are clamped to [-87, 88].
template <class T>
TAME_INLINE typename T::Vec expv(typename T::Vec x) {
  typedef typename T::Vec V;
  typedef typename T::IVec I;
  auto c = [](float a) __attribute__((always_inline)) { return T::broadcast(a); };
  x = select(x > c(88.0f), c(88.0f), x);
  x = select(x < c(-87.0f), c(-87.0f), x);
  const V t = x * c(1.44269504088896341f);
  const I n = __builtin_convertvector(t + select(t < c(0.0f), c(-0.5f), c(0.5f)), I);
  const V nf = __builtin_convertvector(n, V);
  V f = x - nf * c(0.693145751953125f);
  f = f - nf * c(1.428606765330187e-06f);
  V p = c(1.0f / 5040);
  p = p * f + c(1.0f / 720);
  p = p * f + c(1.0f / 120);
  p = p * f + c(1.0f / 24);
  p = p * f + c(1.0f / 6);
  p = p * f + c(0.5f);
  p = p * f + c(1.0f);
  p = p * f + c(1.0f);
  const I bits = (n + 127) << 23;  // 2^n, n in [-126, 127]
  return p * reinterpret_cast<V>(bits);
}

// tanh x = sign(x) (1 - e) / (1 + e), e = exp(-2|x|); below |x| = 1/16 the odd
// Taylor series instead, which avoids the cancellation in 1 - e.
template <class T>
TAME_INLINE typename T::Vec tanhv(typename T::Vec x) {
  typedef typename T::Vec V;
  typedef typename T::IVec I;
  auto c = [](float a) __attribute__((always_inline)) { return T::broadcast(a); };
  const I sign = reinterpret_cast<I>(x) & (I{} + INT32_MIN);
  const V a = reinterpret_cast<V>(reinterpret_cast<I>(x) & ~sign);
  const V a2 = a * a;
  const V small = a + a * a2 * (c(-1.0f / 3) + a2 * (c(2.0f / 15) + a2 * c(-17.0f / 315)));
  const V e = expv<T>(c(-2.0f) * a);
  const V big = (c(1.0f) - e) / (c(1.0f) + e);
  const V r = select(a < c(0.0625f), small, big);
  return reinterpret_cast<V>(reinterpret_cast<I>(r) | sign);
}

template <class T>
TAME_INLINE typename T::Vec sigmoid_direct(typename T::Vec x) {
  return T::broadcast(1.0f) / (T::broadcast(1.0f) + expv<T>(-x));
}

// sigmoid(x) for x <= -88, where expv clamps its argument to 88: a constant,
// and a subnormal one, which the CPU would otherwise produce through a slow
// microcode assist in every such lane (the far tails of a sharp logistic).
// It is 1 / (1 + expv(88)), written as a literal so that no static
// initializer can read it unset (the test
// StepKernels.LogisticMassesMatchTheScalarDefinition checks the two agree).
constexpr float kSigmoidFloor = 0x1.07b71p-127f;

// 1 / (1 + exp(-x)), the clamped lanes given kSigmoidFloor (the same bits).
template <class T>
TAME_INLINE typename T::Vec sigmoidv(typename T::Vec x) {
  const auto c = [](float a) __attribute__((always_inline)) { return T::broadcast(a); };
  const typename T::IVec floor = x <= c(-88.0f);
  return select(floor, c(kSigmoidFloor), sigmoid_direct<T>(select(floor, c(0.0f), x)));
}

TAME_INLINE v8 exp8(v8 x) { return expv<Sse8>(x); }
TAME_INLINE v8 tanh8(v8 x) { return tanhv<Sse8>(x); }
TAME_INLINE v8 sigmoid8(v8 x) { return sigmoidv<Sse8>(x); }

// A kernel K (a struct with template <class T> static void run(...)) at
// each width; run_at() calls the one for a given width.
template <class K, class... A>
void at_baseline(A... a) {
  K::template run<Sse8>(a...);
}
#if TAME_WIDE
template <class K, class... A>
__attribute__((target("avx2"))) void at_avx2(A... a) {
  K::template run<Avx8>(a...);
}
template <class K, class... A>
__attribute__((target("avx512f"))) void at_avx512(A... a) {
  K::template run<Avx16>(a...);
}
#endif
template <class K, class... A>
void run_at(Width w, A... a) {
  switch (w) {
#if TAME_WIDE
    case Width::avx2:
      return at_avx2<K>(a...);
    case Width::avx512:
      return at_avx512<K>(a...);
#endif
    default:
      return at_baseline<K>(a...);
  }
}

// An elementwise kernel over n floats, L at a time: f(i, m) for the m <= L
// floats from i. load_part and store_part move them, the last n % L through a
// zero-padded buffer (lanes are independent: the same bits as a full vector).
template <class T, class F>
TAME_INLINE void each(int64_t n, F f) {
  constexpr int L = T::n;
  int64_t i = 0;
  for (; i + L <= n; i += L) f(i, L);
  if (i < n) f(i, n - i);
}
template <class T>
TAME_INLINE typename T::Vec load_part(const float* p, int64_t m) {
  if (m == T::n) return loadv<typename T::Vec>(p);
  float t[T::n] = {};
  std::memcpy(t, p, sizeof(float) * m);
  return loadv<typename T::Vec>(t);
}
template <class T>
TAME_INLINE void store_part(float* p, const typename T::Vec& v, int64_t m) {
  if (m == T::n) return storev(p, v);
  float t[T::n];
  storev(t, v);
  std::memcpy(p, t, sizeof(float) * m);
}

// dense() at three widths: the baseline (SSE2, each 8-lane vector lowered to
// two), AVX2 (8 lanes) and AVX-512 (16 lanes). Lanes are output columns, so
// the width only decides which columns are computed together; each column
// still sums its k in order with a separate multiply and add, and every width
// gives the same bits (StepKernels.DenseFollowsItsSummationOrder checks each
// one this machine has).
// R rows x (L * V) columns starting at column m0 (L lanes a vector):
// accumulators live in registers, k runs in order. Lanes past d.out are
// computed but never stored.
template <class T, int R, int V>
TAME_INLINE void dense_block(const Dense& d, const float* in, int64_t in_stride, float* out,
                             int64_t out_stride, int64_t m0, int64_t ncols) {
  typedef typename T::Vec Vec;
  constexpr int L = T::n;
  Vec acc[R][V];
  const int64_t M = d.out;
  float bias[L * V];
  for (int v = 0; v < L * V; ++v) bias[v] = m0 + v < M ? d.b[m0 + v] : 0.0f;
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < V; ++v) acc[r][v] = loadv<Vec>(bias + L * v);
  const float* w = d.w.data() + m0;
  auto step = [&](const Vec* wv, int64_t k) __attribute__((always_inline)) {
    for (int r = 0; r < R; ++r) {
      const Vec av = T::broadcast(in[r * in_stride + k]);
      for (int v = 0; v < V; ++v) acc[r][v] = acc[r][v] + av * wv[v];
    }
  };
  // Inputs k < direct load their L V weights in place: for a ragged block
  // (ncols < L V) that reads on into the next input's weights (lanes computed
  // but never stored) while it stays inside w; the last inputs of a ragged
  // block copy their columns into a zero-padded buffer instead.
  const int64_t room = d.in * M - m0 - L * V;  // w's floats past the last direct read
  const int64_t direct = ncols == L * V ? d.in : room < 0 ? 0 : std::min(d.in, room / M + 1);
  int64_t k = 0;
  for (; k < direct; ++k, w += M) {
    Vec wv[V];
    for (int v = 0; v < V; ++v) wv[v] = loadv<Vec>(w + L * v);
    step(wv, k);
  }
  for (; k < d.in; ++k, w += M) {
    float tmp[L * V] = {};
    std::memcpy(tmp, w, sizeof(float) * ncols);
    Vec wv[V];
    for (int v = 0; v < V; ++v) wv[v] = loadv<Vec>(tmp + L * v);
    step(wv, k);
  }
  for (int r = 0; r < R; ++r) {
    float* o = out + r * out_stride + m0;
    if (ncols == L * V) {
      for (int v = 0; v < V; ++v) storev(o + L * v, acc[r][v]);
    } else {
      float tmp[L * V];
      for (int v = 0; v < V; ++v) storev(tmp + L * v, acc[r][v]);
      std::memcpy(o, tmp, sizeof(float) * ncols);
    }
  }
}

// Columns in blocks of L V, then the rest in blocks of 2 L and one of at
// most 2 L (more accumulators hide the adds' latency when R is small).
template <class T, int R, int V>
TAME_INLINE void dense_rows(const Dense& d, const float* in, int64_t in_stride, float* out,
                            int64_t out_stride) {
  constexpr int L = T::n;
  int64_t m0 = 0;
  for (; m0 + L * V <= d.out; m0 += L * V)
    dense_block<T, R, V>(d, in, in_stride, out, out_stride, m0, L * V);
  for (; m0 + 2 * L <= d.out; m0 += 2 * L)
    dense_block<T, R, 2>(d, in, in_stride, out, out_stride, m0, 2 * L);
  const int64_t tail = d.out - m0;
  if (tail > L)
    dense_block<T, R, 2>(d, in, in_stride, out, out_stride, m0, tail);
  else if (tail > 0)
    dense_block<T, R, 1>(d, in, in_stride, out, out_stride, m0, tail);
}

// Six rows at a time (2 vectors of columns), then four (2), two (4) and one
// (4): each weight loaded is used by as many rows as there are.
template <class T>
TAME_INLINE void dense_all(const Dense& d, const float* in, int64_t in_stride, int64_t rows,
                           float* out, int64_t out_stride) {
  int64_t r = 0;
  for (; r + 6 <= rows; r += 6)
    dense_rows<T, 6, 2>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
  if (rows - r >= 4) {
    dense_rows<T, 4, 2>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
    r += 4;
  }
  if (rows - r >= 2) {
    dense_rows<T, 2, 4>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
    r += 2;
  }
  if (rows - r == 1)
    dense_rows<T, 1, 4>(d, in + r * in_stride, in_stride, out + r * out_stride, out_stride);
}

struct DenseK {
  template <class T>
  static TAME_INLINE void run(const Dense* d, const float* in, int64_t in_stride, int64_t rows,
                              float* out, int64_t out_stride) {
    dense_all<T>(*d, in, in_stride, rows, out, out_stride);
  }
};

struct ExpShiftedK {
  template <class T>
  static TAME_INLINE void run(const float* x, int64_t n, float shift, float* out) {
    each<T>(
        n, [&](int64_t i, int64_t m) __attribute__((always_inline)) {
          store_part<T>(out + i, expv<T>(load_part<T>(x + i, m) - T::broadcast(shift)), m);
        });
  }
};

// Plain loops: the target attribute of each width lets the compiler vectorize
// them; the double product and the conversion are exact at any width.
struct FrequenciesK {
  template <class T>
  static TAME_INLINE void run(const float* mass, int64_t n, double scale, uint32_t* f,
                              uint32_t* sum, uint32_t* largest) {
    // Through int32, which is the floor on [0, 2^31) and vectorizes.
    for (int64_t k = 0; k < n; ++k) {
      const double x = static_cast<double>(mass[k]) * scale;
      f[k] =
          1 + (x >= 0.0 && x < 2147483648.0 ? static_cast<uint32_t>(static_cast<int32_t>(x)) : 0u);
    }
    uint32_t used = 0, top = 0;
    for (int64_t k = 0; k < n; ++k) used += f[k];
    for (int64_t k = 0; k < n; ++k) top = f[k] > top ? f[k] : top;
    *sum = used;
    *largest = top;
  }
};

struct SigmoidK {
  template <class T>
  static TAME_INLINE void run(const float* in, int64_t n, float* out) {
    each<T>(
        n, [&](int64_t i, int64_t m) __attribute__((always_inline)) {
          store_part<T>(out + i, sigmoidv<T>(load_part<T>(in + i, m)), m);
        });
  }
};

struct GateK {
  template <class T>
  static TAME_INLINE void run(const float* in, int64_t rows, int64_t n, int64_t in_stride,
                              float* out, int64_t out_stride) {
    for (int64_t r = 0; r < rows; ++r) {
      const float* a = in + r * in_stride;
      float* o = out + r * out_stride;
      each<T>(
          n, [&](int64_t i, int64_t m) __attribute__((always_inline)) {
            store_part<T>(
                o + i, tanhv<T>(load_part<T>(a + i, m)) * sigmoidv<T>(load_part<T>(a + n + i, m)),
                m);
          });
    }
  }
};

// logistic_bin_mass for every level: the same operations lane by lane, the
// end levels' tails (1 or 0 in place of a sigmoid) chosen by lane masks.
struct LogisticMassesK {
  template <class T>
  static TAME_INLINE void run(float mean, float inv_scale, int64_t levels, float* mass) {
    typedef typename T::Vec V;
    typedef typename T::IVec I;
    auto c = [](float a) __attribute__((always_inline)) { return T::broadcast(a); };
    const float d = 1.0f / static_cast<float>(levels - 1);
    float iota[T::n];
    for (int l = 0; l < T::n; ++l) iota[l] = static_cast<float>(l);
    const V lane = loadv<V>(iota), last_k = c(static_cast<float>(levels - 1));
    each<T>(
        levels, [&](int64_t i, int64_t m) __attribute__((always_inline)) {
          const V k = lane + c(static_cast<float>(i));  // exact: integers below 2^24
          const V centre = c(2.0f) * k * c(d) - c(1.0f);
          const V lo = (centre - c(d) - c(mean)) * c(inv_scale);
          const V hi = (centre + c(d) - c(mean)) * c(inv_scale);
          const I up = centre >= c(mean);  // 1 - F on this side: sigmoid(-t)
          const V a = select(up, -lo, hi), b = select(up, -hi, lo);  // b <= a
          // Lanes with a <= -88 give sigmoid(a) = sigmoid(b) = kSigmoidFloor, so
          // a mass of 0. a falls away from the mean on either side (each step of
          // it is monotone in k, rounding included), so when a chunk without an
          // end level lies on one side and its end lanes have a <= -88, all do.
          if (i > 0 && i + T::n < levels && up[0] == up[T::n - 1] && a[0] <= -88.0f &&
              a[T::n - 1] <= -88.0f) {
            storev(mass + i, c(0.0f));
            return;
          }
          const I first = k == c(0.0f), last = k == last_k;
          const V sa = sigmoidv<T>(a), sb = sigmoidv<T>(b);
          const V r = select((up & first) | (~up & last), c(1.0f), sa) -
                      select((up & last) | (~up & first), c(0.0f), sb);
          store_part<T>(mass + i, select(r > c(0.0f), r, c(0.0f)), m);
        });
  }
};

// The widest width, or the one TAME_CPU_CAPABILITY names (as PyTorch's
// ATEN_CPU_CAPABILITY does for its kernels), for timing one against another.
Width chosen_width() {
  const auto all = widths();
  const char* want = std::getenv("TAME_CPU_CAPABILITY");
  if (!want || !*want) return all.back();
  for (auto w : all)
    if (std::strcmp(want, name(w)) == 0) return w;
  std::fprintf(stderr, "tame: TAME_CPU_CAPABILITY=%s is not one this CPU runs; using %s\n", want,
               name(all.back()));
  return all.back();
}

}  // namespace

std::vector<Width> widths() {
  std::vector<Width> w{Width::baseline};
#if TAME_WIDE
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2")) w.push_back(Width::avx2);
  if (__builtin_cpu_supports("avx512f")) w.push_back(Width::avx512);
#endif
  return w;
}

const char* name(Width w) {
  switch (w) {
    case Width::avx2:
      return "avx2";
    case Width::avx512:
      return "avx512";
    default:
      return "baseline";
  }
}

Width width() {
  static const Width chosen = chosen_width();
  return chosen;
}

void dense_at(Width w, const Dense& d, const float* in, int64_t in_stride, int64_t rows, float* out,
              int64_t out_stride) {
  run_at<DenseK>(w, &d, in, in_stride, rows, out, out_stride);
}

void dense(const Dense& d, const float* in, int64_t in_stride, int64_t rows, float* out,
           int64_t out_stride) {
  run_at<DenseK>(width(), &d, in, in_stride, rows, out, out_stride);
}

// The scalar forms run the vector code on lane 0, so that both give the same bits.
float det_exp(float x) { return exp8(splat(x))[0]; }
float det_tanh(float x) { return tanh8(splat(x))[0]; }
float det_sigmoid(float x) { return sigmoid8(splat(x))[0]; }

void relu_inplace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void exp_shifted(const float* x, int64_t n, float shift, float* out) {
  run_at<ExpShiftedK>(width(), x, n, shift, out);
}
uint32_t frequencies(const float* mass, int64_t n, double scale, uint32_t* f, uint32_t* top) {
  return frequencies_at(width(), mass, n, scale, f, top);
}
uint32_t frequencies_at(Width w, const float* mass, int64_t n, double scale, uint32_t* f,
                        uint32_t* top) {
  uint32_t sum = 0;
  run_at<FrequenciesK>(w, mass, n, scale, f, &sum, top);
  return sum;
}
void sigmoid(const float* in, int64_t n, float* out) { run_at<SigmoidK>(width(), in, n, out); }
void gate(const float* in, int64_t n, float* out) {
  run_at<GateK>(width(), in, int64_t{1}, n, n, out, n);
}
void gate_rows(const float* in, int64_t rows, int64_t n, int64_t in_stride, float* out,
               int64_t out_stride) {
  run_at<GateK>(width(), in, rows, n, in_stride, out, out_stride);
}

float logistic_bin_mass(float mean, float inv_scale, int64_t k, int64_t levels) {
  const float d = 1.0f / static_cast<float>(levels - 1);
  const float centre = 2.0f * static_cast<float>(k) * d - 1.0f;
  const float lo = (centre - d - mean) * inv_scale, hi = (centre + d - mean) * inv_scale;
  const bool first = k == 0, last = k == levels - 1;
  float m;
  if (centre >= mean)  // 1 - F on this side: sigmoid(-t), both ends small
    m = (first ? 1.0f : det_sigmoid(-lo)) - (last ? 0.0f : det_sigmoid(-hi));
  else
    m = (last ? 1.0f : det_sigmoid(hi)) - (first ? 0.0f : det_sigmoid(lo));
  return m > 0.0f ? m : 0.0f;
}

void logistic_masses(float mean, float inv_scale, int64_t levels, float* mass) {
  run_at<LogisticMassesK>(width(), mean, inv_scale, levels, mass);
}

void logistic_masses_at(Width w, float mean, float inv_scale, int64_t levels, float* mass) {
  run_at<LogisticMassesK>(w, mean, inv_scale, levels, mass);
}

void exp_shifted_at(Width w, const float* x, int64_t n, float shift, float* out) {
  run_at<ExpShiftedK>(w, x, n, shift, out);
}

void gate_at(Width w, const float* in, int64_t n, float* out) {
  run_at<GateK>(w, in, int64_t{1}, n, n, out, n);
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
  gather_taps(maps, n, MapLayout{ring * width * ch, width * ch, ch, ring}, height, width, ch, i, j,
              taps, rows, row_stride);
}

void gather_taps(const float* maps, int64_t n, const MapLayout& at, int64_t height, int64_t width,
                 int64_t ch, int64_t i, int64_t j, const std::vector<Tap>& taps, float* rows,
                 int64_t row_stride) {
  for (int64_t b = 0; b < n; ++b) {
    float* dst = rows + b * row_stride;
    for (const auto& t : taps) {
      const int64_t y = i + t.dy, x = j + t.dx;
      const bool outside = y < 0 || y >= height || x < 0 || x >= width;
      const float* src =
          outside ? nullptr : maps + b * at.image + (y % at.ring) * at.row + x * at.column;
      if (ch == 1)  // one grey input: no call per tap
        *dst = outside ? 0.0f : *src;
      else if (outside)
        std::memset(dst, 0, sizeof(float) * ch);
      else
        std::memcpy(dst, src, sizeof(float) * ch);
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
