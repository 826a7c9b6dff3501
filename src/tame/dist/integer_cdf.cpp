#include "tame/dist/integer_cdf.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "tame/nn/step_kernels.h"

namespace tame {

namespace {

// Frequencies 1 + floor(mass_k * (total - levels) / sum) into cdf[k + 1], the
// remainder (or excess, from rounding) to the largest, then the running sum.
// The frequencies, their sum and their maximum come from a vectorized kernel
// (the sum and the maximum don't depend on the order); "the largest" is the
// first level holding the maximum.
void masses_to_cdf(const float* mass, double sum, int64_t levels, uint32_t precision,
                   uint32_t* cdf) {
  const uint32_t total = uint32_t{1} << precision;
  const double scale = static_cast<double>(total - levels) / sum;
  uint32_t* f = cdf + 1;  // frequencies for now
  // mass_k <= sum and precision <= 31, so every product is in [0, 2^31). One
  // that is not (NaN or infinite masses, from a model whose weights diverged)
  // gives frequency 1, so that the table stays valid.
  uint32_t top = 0;
  const uint32_t used = steps::frequencies(mass, levels, scale, f, &top);
  int64_t best = 0;
  while (f[best] != top) ++best;
  // The floors leave a small remainder (under `levels`, up to rounding): give
  // it to the most probable level, or take an excess from it.
  if (used <= total)
    f[best] += total - used;
  else
    f[best] -= used - total;
  // The running sum in a register (the same integers as cdf[k + 1] += cdf[k]).
  cdf[0] = 0;
  uint32_t run = 0;
  for (int64_t k = 0; k < levels; ++k) {
    run += f[k];
    f[k] = run;
  }
}

// The largest of x[0..n), n >= 1, as the loop top = x[k] > top ? x[k] : top
// gives it (the same value in any order when no x[k] is NaN), in 8 lanes.
float max_of(const float* x, int64_t n) {
  float lane[8];
  std::fill_n(lane, 8, x[0]);
  int64_t k = 0;
  for (; k + 8 <= n; k += 8)
    for (int i = 0; i < 8; ++i) lane[i] = x[k + i] > lane[i] ? x[k + i] : lane[i];
  for (; k < n; ++k) lane[0] = x[k] > lane[0] ? x[k] : lane[0];
  float top = lane[0];
  for (int i = 1; i < 8; ++i) top = lane[i] > top ? lane[i] : top;
  return top;
}

std::vector<float>& scratch(int which, int64_t size) {
  thread_local std::vector<float> buffers[2];
  if (static_cast<int64_t>(buffers[which].size()) < size) buffers[which].resize(size);
  return buffers[which];
}

}  // namespace

double categorical_cdf(const float* logits, int64_t levels, uint32_t precision, uint32_t* cdf,
                       int64_t value, double temperature) {
  if (temperature != 1.0) {
    float* scaled = scratch(1, levels).data();
    const float inv_t = static_cast<float>(1.0 / temperature);
    for (int64_t k = 0; k < levels; ++k) scaled[k] = logits[k] * inv_t;
    logits = scaled;
  }
  const float top = max_of(logits, levels);
  // e_k in (0, 1]: the maximum gives exactly 1, so the sum is >= 1.
  float* e = scratch(0, levels).data();
  steps::exp_shifted(logits, levels, top, e);
  double sum = 0;
  for (int64_t k = 0; k < levels; ++k) sum = sum + static_cast<double>(e[k]);
  masses_to_cdf(e, sum, levels, precision, cdf);
  return value < 0 ? 0.0 : std::log2(sum) - std::log2(static_cast<double>(e[value]));
}

double mixture_cdf(const float* weights, const float* logits, int64_t components, int64_t levels,
                   uint32_t precision, uint32_t* cdf, int64_t value, double temperature) {
  float* mass = scratch(1, levels).data();
  std::fill_n(mass, levels, 0.0f);
  float* e = scratch(0, levels).data();
  const float inv_t = static_cast<float>(1.0 / temperature);
  std::vector<float> scaled(temperature != 1.0 ? levels : 0);
  for (int64_t m = 0; m < components; ++m) {
    const float* l = logits + m * levels;
    if (temperature != 1.0) {
      for (int64_t k = 0; k < levels; ++k) scaled[k] = l[k] * inv_t;
      l = scaled.data();
    }
    const float top = max_of(l, levels);
    steps::exp_shifted(l, levels, top, e);
    double sum = 0;
    for (int64_t k = 0; k < levels; ++k) sum = sum + static_cast<double>(e[k]);
    const float scale = static_cast<float>(static_cast<double>(weights[m]) / sum);
    for (int64_t k = 0; k < levels; ++k) mass[k] = mass[k] + e[k] * scale;
  }
  double total = 0;
  for (int64_t k = 0; k < levels; ++k) total = total + static_cast<double>(mass[k]);
  masses_to_cdf(mass, total > 0 ? total : 1.0, levels, precision, cdf);
  return value < 0 ? 0.0 : std::log2(total) - std::log2(static_cast<double>(mass[value]));
}

void logistic_cdf(float mean, float log_scale, int64_t levels, uint32_t precision, uint32_t* cdf) {
  const float inv_scale = steps::det_exp(-log_scale);
  float* mass = scratch(0, levels).data();
  steps::logistic_masses(mean, inv_scale, levels, mass);
  double sum = 0;
  for (int64_t k = 0; k < levels; ++k) sum = sum + static_cast<double>(mass[k]);
  masses_to_cdf(mass, sum > 0 ? sum : 1.0, levels, precision, cdf);
}

namespace {

// Channel c's components: locations, inverse scales (times 1/T) and weights
// softmax(logits)_m prod_{j<c} P_m(x_j) unnormalized, in double (equal when
// the earlier values have no mass under any component); returns their sum.
double mixture_components(const float* f, int64_t C, int64_t c, const uint16_t* earlier, int64_t M,
                          int64_t levels, double temperature, float* loc_c, float* inv_c,
                          double* w) {
  const float* logits = f;
  const float *loc = f + M, *log_scale = f + M + C * M, *coef = f + M + 2 * C * M;
  const float to_unit = 2.0f / static_cast<float>(levels - 1);
  // Component m's location for channel j, given the values before j.
  auto location = [&](int64_t j, int64_t m) {
    float l = loc[j * M + m];
    for (int64_t i = 0; i < j; ++i)
      l = l + steps::det_tanh(coef[(j * (j - 1) / 2 + i) * M + m]) *
                  (static_cast<float>(earlier[i]) * to_unit - 1.0f);
    return l;
  };
  const float inv_t = temperature == 1.0 ? 1.0f : static_cast<float>(1.0 / temperature);
  auto inv_scale = [&](int64_t j, int64_t m) {
    const float s = steps::det_exp(-std::max(log_scale[j * M + m], kMinLogScale));
    return inv_t == 1.0f ? s : s * inv_t;
  };
  const float top = max_of(logits, M);
  double w_sum = 0;
  for (int64_t m = 0; m < M; ++m) {
    double wm = static_cast<double>(steps::det_exp(logits[m] - top));
    for (int64_t j = 0; j < c; ++j)
      wm = wm * static_cast<double>(
                    steps::logistic_bin_mass(location(j, m), inv_scale(j, m), earlier[j], levels));
    w[m] = wm;
    w_sum = w_sum + wm;
    loc_c[m] = location(c, m);
    inv_c[m] = inv_scale(c, m);
  }
  if (!(w_sum > 0)) {  // the earlier values have no mass under any component: equal weights
    std::fill_n(w, M, 1.0);
    w_sum = static_cast<double>(M);
  }
  return w_sum;
}

}  // namespace

double logistic_mixture_cdf(const float* f, int64_t C, int64_t c, const uint16_t* earlier,
                            int64_t M, int64_t levels, uint32_t precision, uint32_t* cdf,
                            int64_t value, double temperature) {
  std::vector<double> w(M);
  std::vector<float> loc(M), inv(M);
  const double w_sum = mixture_components(f, C, c, earlier, M, levels, temperature, loc.data(),
                                          inv.data(), w.data());
  float* mass = scratch(0, levels).data();
  float* component = scratch(1, levels).data();
  std::fill_n(mass, levels, 0.0f);
  for (int64_t m = 0; m < M; ++m) {
    const float weight = static_cast<float>(w[m] / w_sum);
    steps::logistic_masses(loc[m], inv[m], levels, component);
    for (int64_t k = 0; k < levels; ++k) mass[k] = mass[k] + weight * component[k];
  }
  double total = 0;
  for (int64_t k = 0; k < levels; ++k) total = total + static_cast<double>(mass[k]);
  masses_to_cdf(mass, total > 0 ? total : 1.0, levels, precision, cdf);
  return value < 0 || !(total > 0) ? 0.0
                                   : std::log2(total) - std::log2(static_cast<double>(mass[value]));
}

void MixtureEdges::prepare(const float* f, int64_t C, int64_t c, const uint16_t* earlier, int64_t M,
                           int64_t levels, uint32_t precision, double temperature) {
  if (levels < 2 || precision > 31 ||
      (uint64_t{1} << precision) < 4 * static_cast<uint64_t>(levels))
    throw std::invalid_argument("MixtureEdges: 2^precision must be >= 4 levels");
  levels_ = levels;
  precision_ = precision;
  q_ = static_cast<double>((uint64_t{1} << precision) - 2 * static_cast<uint64_t>(levels));
  loc_.resize(M);
  inv_scale_.resize(M);
  x_.resize(M);
  s_.resize(M);
  w_.resize(M);
  const double w_sum = mixture_components(f, C, c, earlier, M, levels, temperature, loc_.data(),
                                          inv_scale_.data(), w_.data());
  for (double& w : w_) w = w / w_sum;
}

uint32_t MixtureEdges::cdf(int64_t k) const {
  if (k <= 0) return 0;
  if (k >= levels_) return uint32_t{1} << precision_;
  // The lower edge of level k, as logistic_bin_mass computes it.
  const float d = 1.0f / static_cast<float>(levels_ - 1);
  const float edge = 2.0f * static_cast<float>(k) * d - 1.0f - d;
  const int64_t M = static_cast<int64_t>(w_.size());
  float *x = x_.data(), *s = s_.data();
  for (int64_t m = 0; m < M; ++m) x[m] = (edge - loc_[m]) * inv_scale_[m];
  steps::sigmoid(x, M, s);
  double g = 0;
  for (int64_t m = 0; m < M; ++m) g = g + w_[m] * static_cast<double>(s[m]);
  const double q = std::min(std::floor(g * q_), q_);
  return static_cast<uint32_t>(2 * k) + static_cast<uint32_t>(q);
}

void MixtureEdges::table(uint32_t* out) const {
  for (int64_t k = 0; k <= levels_; ++k) out[k] = cdf(k);
}

uint16_t MixtureEdges::find(uint32_t slot, uint32_t* start, uint32_t* end) const {
  int64_t lo = 0, hi = levels_;  // invariant: cdf(lo) = at_lo <= slot < cdf(hi) = at_hi
  uint32_t at_lo = 0, at_hi = uint32_t{1} << precision_;
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    const uint32_t at = cdf(mid);
    if (at <= slot) {
      lo = mid;
      at_lo = at;
    } else {
      hi = mid;
      at_hi = at;
    }
  }
  if (start) *start = at_lo;
  if (end) *end = at_hi;
  return static_cast<uint16_t>(lo);
}

double MixtureEdges::bits(int64_t value) const {
  double mass = 0;
  for (size_t m = 0; m < w_.size(); ++m)
    mass = mass + w_[m] * static_cast<double>(
                              steps::logistic_bin_mass(loc_[m], inv_scale_[m], value, levels_));
  if (mass > 0) return -std::log2(mass);
  // Beyond float's reach under every component: the table's own cost.
  return precision_ - std::log2(static_cast<double>(cdf(value + 1) - cdf(value)));
}

double feature_map_cdf(PixelKind kind, const float* features, int64_t feature_channels,
                       int64_t channels, int64_t pixels, int64_t t, float* params, int64_t levels,
                       uint32_t precision, uint32_t* cdf, int64_t value) {
  const int64_t c = t / pixels;
  const float* f = features + (t % pixels) * feature_channels;
  for (int64_t k = 0; k < feature_channels / channels; ++k) params[k] = f[k * channels + c];
  return pixel_cdf(kind, params, levels, precision, cdf, value);
}

double pixel_cdf(PixelKind kind, const float* params, int64_t levels, uint32_t precision,
                 uint32_t* cdf, int64_t value) {
  switch (kind) {
    case PixelKind::kBernoulli: {
      const float pair[2] = {0.0f, params[0]};
      return categorical_cdf(pair, 2, precision, cdf, value);
    }
    case PixelKind::kCategorical:
      return categorical_cdf(params, levels, precision, cdf, value);
    case PixelKind::kLogistic:
      logistic_cdf(params[0], std::max(params[1], kMinLogScale), levels, precision, cdf);
      return value < 0 ? 0.0
                       : precision - std::log2(static_cast<double>(cdf[value + 1] - cdf[value]));
  }
  return 0.0;
}

uint32_t find_symbol(const uint32_t* cdf, uint32_t n, uint32_t slot) {
  uint32_t lo = 0, hi = n;  // invariant: cdf[lo] <= slot < cdf[hi]
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= slot)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

int64_t cdf_mode(const uint32_t* cdf, int64_t levels) {
  int64_t best = 0;
  for (int64_t k = 1; k < levels; ++k)
    if (cdf[k + 1] - cdf[k] > cdf[best + 1] - cdf[best]) best = k;
  return best;
}

}  // namespace tame
