// Fixed-order float kernels for the step engine (cached autoregressive evaluation).
//
// The codec needs bit-identical conditionals in the encoder and the decoder:
// another thread count, another batch size, another process. LibTorch's kernels
// don't promise that, because oneDNN and BLAS choose their blocking and reduction
// order by shape and by thread count. So the engine uses these kernels instead,
// and they follow three rules:
//  1. Every output element is bias + sum_k in[k] * w[k], summed for k = 0, 1, ...
//     in that order, with a separate multiply and add (the library is built with
//     -ffp-contract=off, so no fused multiply-add). Blocking over rows or
//     columns and the vector width (SSE, AVX2 or AVX-512) only choose which elements are
//     computed together, never the order within one element.
//  2. Rows (images) never interact, so a result doesn't depend on the batch it
//     was computed in. Threads split whole images.
//  3. Nonlinearities (exp, tanh, sigmoid) are written here from + - * / alone,
//     not taken from libm, whose results may differ between versions.
// IEEE-754 single precision then gives the same bits on every x86-64 and
// AArch64 machine. Free of LibTorch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace tame::steps {

/// A linear map out = b + in * W, with W stored input-major: w[k * out + m].
/// A masked convolution becomes one Dense over its kept taps (tap-major, then
/// input channel), which the engine gathers into one input row.
struct Dense {
  int64_t in = 0, out = 0;
  std::vector<float> w;  // [in][out]
  std::vector<float> b;  // [out]
};

/// A kernel offset: output (i, j) reads input (i + dy, j + dx); outside the
/// image the input is zero (as with the zero padding of the torch model).
struct Tap {
  int64_t dy = 0, dx = 0;
};

/// A masked convolution: the taps its mask leaves non-zero, in raster order,
/// and one Dense over them (row t * in_channels + c holds tap t, channel c).
struct Conv {
  std::vector<Tap> taps;
  Dense dense;
};

/// For images b < n of maps [n][ring][width][ch] that hold rows of a
/// height x width map, row y in slot y % ring (ring = height: the whole map;
/// fewer: the last `ring` rows, as the engine's caches keep them), writes row
/// b = (map at (i, j) + tap, for each tap in order), each ch floats, to
/// rows + b * row_stride.
void gather_taps(const float* maps, int64_t n, int64_t ring, int64_t height, int64_t width,
                 int64_t ch, int64_t i, int64_t j, const std::vector<Tap>& taps, float* rows,
                 int64_t row_stride);
/// Where a cache keeps image b's ch floats of position (y, x): at maps + b *
/// image + (y % ring) * row + x * column. [n][ring][width][ch] is {ring width
/// ch, width ch, ch, ring}; one row stored by column first, [width][n][ch],
/// is {ch, 0, n ch, 1}.
struct MapLayout {
  int64_t image, row, column, ring;
};
/// gather_taps of maps laid out as `at` says.
void gather_taps(const float* maps, int64_t n, const MapLayout& at, int64_t height, int64_t width,
                 int64_t ch, int64_t i, int64_t j, const std::vector<Tap>& taps, float* rows,
                 int64_t row_stride);

/// out[r * out_stride + m] = b[m] + sum_k in[r * in_stride + k] * w[k][m], for
/// r < rows, m < d.out, in the order stated above.
void dense(const Dense& d, const float* in, int64_t in_stride, int64_t rows, float* out,
           int64_t out_stride);

/// The vector widths the kernels below are built for. Every width gives the
/// same bits; the kernels take the widest this CPU runs, or the one the
/// environment variable TAME_CPU_CAPABILITY names (baseline, avx2, avx512),
/// and the *_at forms a given one (tests and benchmarks compare them).
enum class Width { baseline, avx2, avx512 };
/// The widths this CPU runs, narrowest first (baseline is always there).
std::vector<Width> widths();
const char* name(Width w);
/// The width the kernels use in this process.
Width width();
void dense_at(Width w, const Dense& d, const float* in, int64_t in_stride, int64_t rows, float* out,
              int64_t out_stride);

/// Elementwise, deterministic: exp (relative error ~2e-7, inputs clamped to
/// [-87, 88]), tanh and logistic sigmoid built from it.
float det_exp(float x);
float det_tanh(float x);
float det_sigmoid(float x);

void relu_inplace(float* x, int64_t n);
/// out[k] = det_exp(x[k] - shift), vectorized (the same bits as det_exp).
void exp_shifted(const float* x, int64_t n, float shift, float* out);
/// The integer CDF writers' frequencies (dist/integer_cdf.h): f[k] = 1 +
/// floor(mass[k] * scale), the product in double, for a product in [0, 2^31);
/// 1 for one that is not (NaN or infinite masses). Returns their sum (modulo
/// 2^32) and writes their largest to *top. Vectorized: the same integers at
/// every width.
uint32_t frequencies(const float* mass, int64_t n, double scale, uint32_t* f, uint32_t* top);
uint32_t frequencies_at(Width w, const float* mass, int64_t n, double scale, uint32_t* f,
                        uint32_t* top);
/// out[i] = det_sigmoid(in[i]), vectorized (the same bits).
void sigmoid(const float* in, int64_t n, float* out);
/// Gated activation of PixelCNN: out[i] = tanh(in[i]) * sigmoid(in[n + i]), i < n.
void gate(const float* in, int64_t n, float* out);
/// gate() on each of `rows` rows: row r reads in + r * in_stride (2n floats)
/// and writes out + r * out_stride (n floats); the same bits, one call.
void gate_rows(const float* in, int64_t rows, int64_t n, int64_t in_stride, float* out,
               int64_t out_stride);
void exp_shifted_at(Width w, const float* x, int64_t n, float shift, float* out);
void gate_at(Width w, const float* in, int64_t n, float* out);

/// The mass of level k < levels of the discretized logistic (mean, scale 1 /
/// inv_scale) on [-1, 1] (level k's centre 2k / (levels - 1) - 1, the end
/// levels taking the tails): a difference of det_sigmoid values on the side
/// of the mean's nearer tail, never < 0.
float logistic_bin_mass(float mean, float inv_scale, int64_t k, int64_t levels);
/// logistic_bin_mass of every level into mass[levels], vectorized (the same bits).
void logistic_masses(float mean, float inv_scale, int64_t levels, float* mass);
void logistic_masses_at(Width w, float mean, float inv_scale, int64_t levels, float* mass);

/// One LSTM cell on n units, deterministic: gates [i | f | o | g] (4n
/// pre-activations), c = sigmoid(f) c_prev + sigmoid(i) tanh(g), h = sigmoid(o)
/// tanh(c). c may be c_prev (updated in place).
void lstm_cell(const float* gates, const float* c_prev, int64_t n, float* c, float* h);

/// The gradient of lstm_cell: given dL/dh and dL/dc (either null: zero),
/// writes dL/dgates [4n] and dL/dc_prev [n], recomputing the activations from
/// the gates. Training uses it (nn/lstm.h); it needs no fixed order.
void lstm_cell_backward(const float* gates, const float* c_prev, int64_t n, const float* dh,
                        const float* dc, float* dgates, float* dc_prev);

/// Hashes floats and integers into a 64-bit fingerprint (FNV-1a over bytes).
class Fingerprint {
 public:
  void add(const void* data, size_t bytes);
  void add(const Dense& d);
  void add(const Conv& c);
  void add(int64_t v) { add(&v, sizeof v); }
  uint64_t value() const { return h_; }

 private:
  uint64_t h_ = 1469598103934665603ull;
};

}  // namespace tame::steps
