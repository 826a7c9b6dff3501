// Integer CDFs for the entropy coder and the sampler, written by deterministic
// functions: the same float parameters give the same table on every machine,
// in every process, at every thread count (fixed operation order, no libm, no
// fused multiply-add; see nn/step_kernels.h). A table has levels + 1 entries,
// cdf[0] = 0 < cdf[1] < ... < cdf[levels] = 2^precision: every level keeps a
// frequency >= 1, so every value is codable. Requires 2^precision >= 2 levels
// (MixtureEdges: 4 levels).
// Free of LibTorch.
#pragma once

#include <cstdint>
#include <vector>

namespace tame {

/// Categorical(softmax(logits / T)). freq_k = 1 + floor(e_k * ((2^precision -
/// levels) / S)) with e_k = det_exp(l_k - max l) in float (l = logits, times
/// 1/T in float when T != 1) and S = sum_k e_k in double; the remainder goes
/// to the most probable level. When value >= 0, returns -log2 of the float
/// softmax probability of `value` (for reporting), else 0 (no logarithms on
/// the decoder's path).
double categorical_cdf(const float* logits, int64_t levels, uint32_t precision, uint32_t* cdf,
                       int64_t value = -1, double temperature = 1.0);

/// A mixture of categoricals: mass_k = sum_m w_m e_mk / S_m, with e_mk =
/// det_exp(l_mk - max_k l_mk) (logits times 1/T in float when T != 1) and S_m
/// = sum_k e_mk in double, for `components` weights w (>= 0, not all 0) and
/// logits [components][levels]; then frequencies as for the categorical. When
/// value >= 0, returns -log2 of the float mixture probability of `value`.
double mixture_cdf(const float* weights, const float* logits, int64_t components, int64_t levels,
                   uint32_t precision, uint32_t* cdf, int64_t value = -1, double temperature = 1.0);

/// The discretized logistic of PixelCNN++ (Salimans et al. 2017): level k of
/// `levels` is the bin [x_k - d, x_k + d] around x_k = 2k / (levels - 1) - 1,
/// d = 1 / (levels - 1), with the first bin open to -inf and the last to +inf,
/// under a logistic of location `mean` and scale exp(log_scale). Each bin's
/// mass is a difference of det_sigmoid values, taken on the side of the mean's
/// nearer tail (so small masses keep their precision); then frequencies as for
/// the categorical, every level >= 1.
void logistic_cdf(float mean, float log_scale, int64_t levels, uint32_t precision, uint32_t* cdf);

/// The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017) for
/// channel c of one pixel of C channels: M components shared by the pixel's
/// channels. `features` holds the pixel's mixture_features(C, M) parameters:
/// M mixture logits; the C x M locations (channel-major); the C x M
/// log-scales; for each pair (c, j < c), in the order (1, 0), (2, 0), (2, 1),
/// ..., M raw coefficients. Component m's location for channel c is
/// loc_cm + sum_{j<c} tanh(coef_cjm) x_j (x_j on the [-1, 1] scale) and its
/// log-scale is raised to kMinLogScale. The table is the conditional given
/// the earlier channels' values `earlier` (c of them): the components weighted
/// by softmax(logits)_m prod_{j<c} P_m(x_j), then frequencies as for the
/// categorical. Returns -log2 of that conditional's float probability of
/// `value` when value >= 0, else 0. Temperature T multiplies every scale
/// (after the floor; the inverse scales times 1/T in float when T != 1): the
/// conditional of the mixture whose components are so widened, as
/// DiscretizedLogisticMixture::sample(T) draws from it.
double logistic_mixture_cdf(const float* features, int64_t channels, int64_t c,
                            const uint16_t* earlier, int64_t components, int64_t levels,
                            uint32_t precision, uint32_t* cdf, int64_t value = -1,
                            double temperature = 1.0);
/// The same conditional under the frequency rule of the bin edges (the codec's
/// rule since pixelcnn++'s engine revision 2; logistic_mixture_cdf above is
/// the rule of the files written before it). With G(k) the mixture's CDF at
/// the lower edge of level k, sum_m w_m det_sigmoid((x_k - d - loc_m) s_m) in
/// double (w_m the weights above, normalized in double; x_k - d as
/// logistic_bin_mass computes it), the table is
///   cdf[0] = 0, cdf[levels] = 2^precision,
///   cdf[k] = 2 k + min(floor(G(k) Q), Q), Q = 2^precision - 2 levels.
/// One entry costs M sigmoids, so a coder needs only the entries around its
/// value (two to encode, a binary search of log2(levels) to decode), not the
/// levels x M x 2 sigmoids of the masses. Every level keeps a frequency >= 1
/// although det_sigmoid is not monotone: over all floats it falls by at most
/// 2^-24 (one unit in the last place of [0.5, 1); a test scans it), so G falls
/// by less than 1 / Q between edges and floor(G Q) by at most 1, which the
/// 2 per level covers. Requires 2^precision >= 4 levels.
class MixtureEdges {
 public:
  /// Channel c's conditional, with the arguments of logistic_mixture_cdf.
  void prepare(const float* features, int64_t channels, int64_t c, const uint16_t* earlier,
               int64_t components, int64_t levels, uint32_t precision, double temperature = 1.0);
  /// cdf[k], 0 <= k <= levels.
  uint32_t cdf(int64_t k) const;
  /// The whole table, levels + 1 entries.
  void table(uint32_t* cdf) const;
  /// The level v with cdf(v) <= slot < cdf(v + 1), slot < 2^precision; with
  /// start and end, also cdf(v) and cdf(v + 1).
  uint16_t find(uint32_t slot, uint32_t* start = nullptr, uint32_t* end = nullptr) const;
  /// -log2 of the float mixture's probability of `value` (the masses of
  /// logistic_bin_mass, for reporting).
  double bits(int64_t value) const;

 private:
  int64_t levels_ = 0;
  uint32_t precision_ = 0;
  double q_ = 0;
  std::vector<float> loc_, inv_scale_;
  mutable std::vector<float> x_, s_;  // cdf()'s scratch: one object per thread
  std::vector<double> w_;
};

/// The mixture's parameters per pixel: M (1 + 2C + C (C - 1) / 2).
constexpr int64_t mixture_features(int64_t channels, int64_t components) {
  return components * (1 + 2 * channels + channels * (channels - 1) / 2);
}

/// The pixel likelihoods of dist/pixel_likelihood.h, for code that writes
/// their tables without LibTorch (the torch types and the bits-back coder
/// alike).
enum class PixelKind { kBernoulli, kCategorical, kLogistic };
/// The discretized logistic's floor on the log-scale (PixelCNN++'s).
constexpr float kMinLogScale = -7.0f;
/// Parameters per sub-pixel of a kind: 1 (Bernoulli), levels (categorical),
/// 2 (logistic); a decoder emits this many times C features.
constexpr int64_t pixel_params_per_subpixel(PixelKind kind, int64_t levels) {
  return kind == PixelKind::kBernoulli ? 1 : kind == PixelKind::kLogistic ? 2 : levels;
}
/// One sub-pixel's table from its parameters: Bernoulli, the log-odds l of a
/// 1 (the categorical of logits (0, l)); categorical, `levels` logits;
/// logistic, location and log-scale (raised to kMinLogScale). Returns -log2 of
/// the probability of `value` when value >= 0 (the float softmax's for the
/// first two, the table's for the logistic), else 0.
double pixel_cdf(PixelKind kind, const float* params, int64_t levels, uint32_t precision,
                 uint32_t* cdf, int64_t value = -1);
/// pixel_cdf of sub-pixel t (channel-major: t = c P + p, P pixels) of a
/// decoder's channels-last feature map [P][F] in which parameter j of channel
/// c is feature j C + c (dist/pixel_likelihood.h's layout); `params` holds
/// F / C floats.
double feature_map_cdf(PixelKind kind, const float* features, int64_t feature_channels,
                       int64_t channels, int64_t pixels, int64_t t, float* params, int64_t levels,
                       uint32_t precision, uint32_t* cdf, int64_t value = -1);

/// The symbol s with cdf[s] <= slot < cdf[s + 1], by binary search; cdf has
/// n + 1 entries, cdf[0] = 0 and cdf[n] = 2^precision, strictly increasing.
uint32_t find_symbol(const uint32_t* cdf, uint32_t n, uint32_t slot);

/// The level with the largest frequency in a table (the first of ties).
int64_t cdf_mode(const uint32_t* cdf, int64_t levels);

}  // namespace tame
