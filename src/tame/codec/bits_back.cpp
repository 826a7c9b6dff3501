#include "tame/codec/bits_back.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "tame/codec/model_codec.h"  // kCodecPrecision, kMaxFileBlock
#include "tame/dist/integer_cdf.h"
#include "tame/error.h"
#include "tame/random.h"

namespace tame {

namespace {

constexpr int64_t kBuckets = int64_t{1} << kLatentBits;
constexpr uint32_t kStartBits = 16;  // the chain's initial symbols are 16-bit
// Symbols pushed over the count, so that the first pop of z reads random bits
// (the count itself would be the low bits of the slot it takes).
constexpr int64_t kCover = 2;
constexpr uint64_t kStartSeed = 0x74616d6562626b31ull;
// A file's images are cut into this many chains by default: threads for up to
// 8 cores, at 16 (S + 3) bits of start each.
constexpr int64_t kDefaultChains = 8;

// The seed of a block's start: a hash of its images, so that every chain
// starts from other bits (a shared start would draw every chain's first z
// from the same quantiles); the decoder knows the images when it checks it.
uint64_t start_seed(const ImageBlock& block) {
  steps::Fingerprint f;
  f.add(kStartSeed);
  f.add(block.values.data(), block.values.size() * sizeof(uint16_t));
  return f.value();
}

// The chain's s-th start symbol.
uint32_t start_symbol(uint64_t seed, int64_t s) {
  return static_cast<uint32_t>(splitmix64(seed + static_cast<uint64_t>(s)) & 0xffff);
}

// Phi^-1(p) by bisection on det_normal_cdf, to the last bit of a double.
double inverse_normal_cdf(double p) {
  double lo = -40.0, hi = 40.0;
  for (int it = 0; it < 200; ++it) {
    const double mid = 0.5 * (lo + hi);
    if (mid == lo || mid == hi) break;
    (det_normal_cdf(mid) < p ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

// The exponent's polynomial of the Chebyshev-fitted form of erfc (below).
double erfc_poly(double t) {
  return -1.26551223 +
         t * (1.00002368 +
              t * (0.37409196 +
                   t * (0.09678418 +
                        t * (-0.18628806 +
                             t * (0.27886807 +
                                  t * (-1.13520398 +
                                       t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
}

}  // namespace

double det_normal_cdf(double x) {
  // Phi(x) = erfc(-x / sqrt 2) / 2, erfc by the Chebyshev-fitted form
  // erfc(z) ~ t exp(-z^2 + P(t)), t = 1 / (1 + z/2), z >= 0 (fractional error
  // below 1.2e-7), and erfc(-z) = 2 - erfc(z). The exponent is shifted by
  // -P(1) so that erfc(0) = 1 exactly and the two halves meet at Phi(0) = 1/2.
  static const double p1 = erfc_poly(1.0);
  const double u = -x * 0.70710678118654752440;
  const double z = std::fabs(u);
  const double t = 1.0 / (1.0 + 0.5 * z);
  const double e = t * det_exp_double(-z * z + (erfc_poly(t) - p1));
  return 0.5 * (u >= 0 ? e : 2.0 - e);
}

// e^x from + - * / and exact scalings (floor, ldexp): x = k ln 2 + r with
// |r| <= ln 2 / 2, and e^r = 1 + r (1 + r/2 (1 + ... (1 + r/11))), each 1/n a
// constant; the truncation error is below 1e-14 relative, far under erfc's.
double det_exp_double(double x) {
  static constexpr double kInverse[12] = {0,       1.0,     1.0 / 2, 1.0 / 3, 1.0 / 4,  1.0 / 5,
                                          1.0 / 6, 1.0 / 7, 1.0 / 8, 1.0 / 9, 1.0 / 10, 1.0 / 11};
  if (x < -745.0) return 0.0;
  x = std::min(x, 709.0);
  const double k = std::floor(x * 1.4426950408889634 + 0.5);
  const double r = (x - k * 0.693147180369123816490) - k * 1.90821492927058770002e-10;
  double p = 1.0;
  for (int n = 11; n >= 1; --n) p = 1.0 + r * p * kInverse[n];
  // p 2^k, exact: by a power of 2 built from its bits where the result is
  // normal (what ldexp gives, without its cost), else by ldexp.
  if (k > -1022 && k < 1023) {
    const uint64_t bits = static_cast<uint64_t>(static_cast<int64_t>(k) + 1023) << 52;
    double two_k;
    std::memcpy(&two_k, &bits, sizeof two_k);
    return p * two_k;
  }
  return std::ldexp(p, static_cast<int>(k));
}

// ln x = e ln 2 + 2 atanh(s), x = m 2^e with m in [sqrt(1/2), sqrt(2)) (frexp,
// exact) and s = (m - 1) / (m + 1), |s| < 0.172: the series s + s^3/3 + ...
// to s^25 leaves an error below 1e-16 relative.
double det_log_double(double x) {
  if (!(x > 0))
    return x == 0 ? -std::numeric_limits<double>::infinity()
                  : std::numeric_limits<double>::quiet_NaN();
  if (x == std::numeric_limits<double>::infinity()) return x;
  int e = 0;
  double m = std::frexp(x, &e);  // m in [0.5, 1)
  if (m < 0.70710678118654752440) {
    m *= 2;
    --e;
  }
  const double s = (m - 1) / (m + 1), s2 = s * s;
  double p = 0;
  for (int n = 25; n >= 3; n -= 2) p = (p + 1.0 / n) * s2;
  const double k = static_cast<double>(e);
  return k * 0.693147180369123816490 + (2 * s * (1 + p) + k * 1.90821492927058770002e-10);
}

const NormalBuckets& normal_buckets() {
  static const NormalBuckets buckets = [] {
    NormalBuckets b;
    b.edges.resize(kBuckets + 1);
    b.medians.resize(kBuckets);
    b.edges[0] = -std::numeric_limits<double>::infinity();
    b.edges[kBuckets] = std::numeric_limits<double>::infinity();
    for (int64_t i = 1; i < kBuckets; ++i)
      b.edges[i] = inverse_normal_cdf(static_cast<double>(i) / kBuckets);
    for (int64_t i = 0; i < kBuckets; ++i)
      b.medians[i] = static_cast<float>(inverse_normal_cdf((i + 0.5) / kBuckets));
    return b;
  }();
  return buckets;
}

BucketCdf::BucketCdf(float mu, float sigma, uint32_t precision)
    : mu_(mu),
      inv_sigma_(1.0 / static_cast<double>(sigma)),
      mass_(static_cast<double>((uint64_t{1} << precision) - 2 * kBuckets)),
      precision_(precision) {}

uint32_t BucketCdf::operator()(int64_t i) const {
  if (i <= 0) return 0;
  if (i >= kBuckets) return static_cast<uint32_t>(uint64_t{1} << precision_);
  const double t = (normal_buckets().edges[i] - mu_) * inv_sigma_;
  // Beyond 6 standard deviations a bucket edge is taken as -inf or +inf:
  // Phi(-6) M < 0.02, so the lower side changes nothing, and the upper side
  // moves a mass below 2^-24 to the next bucket.
  const double phi = t < -6.0 ? 0.0 : t > 6.0 ? 1.0 : std::min(1.0, det_normal_cdf(t));
  return static_cast<uint32_t>(std::floor(phi * mass_)) + static_cast<uint32_t>(2 * i);
}

int64_t BucketCdf::find(uint32_t slot) const {
  int64_t lo = 0, hi = kBuckets;  // cdf(lo) <= slot < cdf(hi)
  while (hi - lo > 1) {
    const int64_t mid = lo + (hi - lo) / 2;
    ((*this)(mid) <= slot ? lo : hi) = mid;
  }
  return lo;
}

void BucketCdf::write(uint32_t* cdf) const {
  for (int64_t i = 0; i <= kBuckets; ++i) cdf[i] = (*this)(i);
}

// ------------------------------------------------------------------ coder

BitsBackCoder::BitsBackCoder(LatentNets nets, ImageSize size, int64_t levels)
    : nets_(std::move(nets)), size_(size), levels_(levels) {
  const int64_t C = size.channels,
                features = nets_.engine ? nets_.engine->context_features()
                                        : pixel_params_per_subpixel(nets_.pixels, levels) * C;
  if (nets_.engine && (nets_.engine->channels() != C || nets_.engine->levels() != levels))
    throw Error("bits-back coder: the engine does not take these images");
  const steps::MapShape in = nets_.encoder.input(), out = nets_.decoder.output();
  if (levels < 2 || levels > 65536 || (nets_.pixels == PixelKind::kBernoulli && levels != 2))
    throw Error("bits-back coder: levels " + std::to_string(levels) + " do not fit the pixels");
  const int64_t L = nets_.latent, M = nets_.classes;
  if (in.height != size.height || in.width != size.width || in.channels != C ||
      nets_.encoder.output().size() != (M > 0 ? L * M : 2 * L) ||
      nets_.decoder.input().size() != (M > 0 ? L * M : L) || out.height != size.height ||
      out.width != size.width || out.channels != features || M == 1 || M > 65536)
    throw Error("bits-back coder: the networks do not fit " + size.str() + " images");
  const int64_t L2 = nets_.latent2;
  if (L2 < 0 ||
      (L2 > 0 && (M > 0 || nets_.up.input().size() != L || nets_.up.output().size() != 2 * L2 ||
                  nets_.down.input().size() != L2 || nets_.down.output().size() != 2 * L)))
    throw Error("bits-back coder: the second latent layer's networks do not fit");
  if (M > 0) {  // the uniform prior over the classes, exact
    const std::vector<float> zeros(M, 0.0f);
    prior_.resize(M + 1);
    categorical_cdf(zeros.data(), M, kPosteriorPrecision, prior_.data());
  }
  normal_buckets();  // computed once, before threads share it
  if (L2 > 0) {      // z's grid: the moments of p(z) = E p(z|z2) over fixed z2 points
    constexpr int64_t kPoints = 256;
    const auto& medians = normal_buckets().medians;
    std::vector<float> z2(L2), out(2 * L);
    std::vector<double> sum(L, 0.0), square(L, 0.0);
    for (int64_t j = 0; j < kPoints; ++j) {
      for (int64_t d = 0; d < L2; ++d)
        z2[d] = medians[splitmix64(static_cast<uint64_t>(j * L2 + d)) & ((1u << kLatentBits) - 1)];
      nets_.down.run(z2.data(), out.data());
      for (int64_t d = 0; d < L; ++d) {
        const double mu = out[d],
                     logvar = std::min(std::max(out[L + d], nets_.logvar_min), nets_.logvar_max);
        sum[d] += mu;
        square[d] += mu * mu + det_exp_double(logvar);
      }
    }
    loc_.resize(L);
    scale_.resize(L);
    for (int64_t d = 0; d < L; ++d) {
      loc_[d] = sum[d] / kPoints;
      const double var = square[d] / kPoints - loc_[d] * loc_[d];
      scale_[d] = std::sqrt(std::max(var, 1e-6));  // correctly rounded: the same bits anywhere
    }
  }
}

uint64_t BitsBackCoder::fingerprint() const {
  steps::Fingerprint f;
  for (int64_t v : {int64_t{300}, size_.channels, size_.height, size_.width, levels_,
                    int64_t{kLatentBits}, int64_t{kPosteriorPrecision}, nets_.latent, nets_.classes,
                    static_cast<int64_t>(nets_.pixels)})
    f.add(v);
  f.add(&nets_.logvar_min, sizeof(float));
  f.add(&nets_.logvar_max, sizeof(float));
  nets_.encoder.hash(f);
  nets_.decoder.hash(f);
  if (nets_.engine) f.add(static_cast<int64_t>(nets_.engine->fingerprint()));
  if (nets_.latent2 > 0) {  // one-layer models keep the fingerprints they had
    f.add(nets_.latent2);
    nets_.up.hash(f);
    nets_.down.hash(f);
  }
  return f.value();
}

int64_t BitsBackCoder::max_block() const { return kMaxFileBlock; }

int64_t BitsBackCoder::default_block(int64_t images) const { return chained_default_block(images); }

void BitsBackCoder::check_size(ImageSize size) const {
  if (size != size_)
    throw Error("this model codes " + size_.str() + " images only, not " + size.str());
}

int64_t BitsBackCoder::Table::find(uint32_t slot) const {
  return buckets ? buckets->find(slot)
                 : find_symbol(cdf.data(), static_cast<uint32_t>(cdf.size() - 1), slot);
}

namespace {
// Bucket tables of n Gaussians from 2n floats: the means, then the
// log-variances (clamped to [lo, hi]); with loc and scale (n each), of
// (v - loc) / scale, the buckets' variable under a grid.
template <class Table>
std::vector<Table> gaussian_tables(const std::vector<float>& out, float lo, float hi,
                                   const double* loc = nullptr, const double* scale = nullptr) {
  const int64_t n = static_cast<int64_t>(out.size()) / 2;
  std::vector<Table> q;
  q.reserve(n);
  for (int64_t d = 0; d < n; ++d) {
    const float logvar = std::min(std::max(out[n + d], lo), hi);
    const double sigma = det_exp_double(0.5 * logvar);
    const double mu = loc ? (out[d] - loc[d]) / scale[d] : out[d];
    q.push_back({BucketCdf(static_cast<float>(mu),
                           static_cast<float>(loc ? sigma / scale[d] : sigma), kPosteriorPrecision),
                 {}});
  }
  return q;
}
}  // namespace

std::vector<BitsBackCoder::Table> BitsBackCoder::posterior(const uint16_t* x) const {
  const int64_t L = nets_.latent, M = nets_.classes;
  const std::vector<float> in = unit_image(x, size_, levels_);
  std::vector<float> out(nets_.encoder.output().size());
  nets_.encoder.run(in.data(), out.data());
  if (M == 0)
    return gaussian_tables<Table>(out, nets_.logvar_min, nets_.logvar_max,
                                  loc_.empty() ? nullptr : loc_.data(), scale_.data());
  std::vector<Table> q;
  for (int64_t d = 0; d < L; ++d) {
    Table t{std::nullopt, std::vector<uint32_t>(M + 1)};
    categorical_cdf(out.data() + d * M, M, kPosteriorPrecision, t.cdf.data());
    q.push_back(std::move(t));
  }
  return q;
}

std::vector<float> BitsBackCoder::z_values(const std::vector<uint32_t>& z, bool grid) const {
  const auto& medians = normal_buckets().medians;
  std::vector<float> v(z.size());
  for (size_t d = 0; d < z.size(); ++d)
    v[d] = !grid || loc_.empty() ? medians[z[d]]
                                 : static_cast<float>(loc_[d] + scale_[d] * medians[z[d]]);
  return v;
}

std::vector<BitsBackCoder::Table> BitsBackCoder::gaussians(const steps::Feedforward& net,
                                                           const std::vector<float>& in,
                                                           bool grid) const {
  std::vector<float> out(net.output().size());
  net.run(in.data(), out.data());
  return gaussian_tables<Table>(out, nets_.logvar_min, nets_.logvar_max,
                                grid ? loc_.data() : nullptr, scale_.data());
}

int64_t BitsBackCoder::subpixel_params() const {
  return nets_.decoder.output().channels / size_.channels;
}

int64_t BitsBackCoder::values() const { return nets_.classes > 0 ? nets_.classes : kBuckets; }

double BitsBackCoder::push_prior(RansMessage& m, uint32_t z) const {
  if (prior_.empty()) {
    rans_push(m, z, 1, kLatentBits);  // equal-mass buckets: uniform, b bits
    return kLatentBits;
  }
  push_symbol(m, prior_.data(), z, kPosteriorPrecision);
  return kPosteriorPrecision - std::log2(static_cast<double>(prior_[z + 1] - prior_[z]));
}

uint32_t BitsBackCoder::pop_prior(RansMessage& m) const {
  if (!prior_.empty())
    return pop_symbol(m, prior_.data(), static_cast<uint32_t>(nets_.classes), kPosteriorPrecision);
  const uint32_t z = rans_peek(m, kLatentBits);
  rans_pop(m, z, 1, kLatentBits);
  return z;
}

namespace {
// Value z's (start, freq) in a posterior table, freq >= 1 checked.
template <class Table>
std::pair<uint32_t, uint32_t> slot_of(const Table& q, int64_t z) {
  const uint32_t start = q.at(z), end = q.at(z + 1);
  if (end <= start) throw Error("bits-back coding: a posterior value without mass");
  return {start, end - start};
}
}  // namespace

std::vector<float> BitsBackCoder::z_input(const std::vector<uint32_t>& z) const {
  const int64_t M = nets_.classes;
  if (M == 0) return z_values(z);
  std::vector<float> zf(nets_.decoder.input().size(), 0.0f);
  for (size_t d = 0; d < z.size(); ++d) zf[d * M + z[d]] = 1.0f;  // one-hot
  return zf;
}

void BitsBackCoder::decode(const std::vector<float>& z, std::vector<float>& features) const {
  features.resize(nets_.decoder.output().size());
  nets_.decoder.run(z.data(), features.data());
}

double BitsBackCoder::subpixel_cdf(const float* features, int64_t t, std::vector<float>& params,
                                   uint32_t* cdf, int64_t value) const {
  return feature_map_cdf(nets_.pixels, features, nets_.decoder.output().channels, size_.channels,
                         size_.height * size_.width, t, params.data(), levels_, kCodecPrecision,
                         cdf, value);
}

void BitsBackCoder::pop_with(RansMessage& m, const std::vector<Table>& q, std::vector<uint32_t>& z,
                             double* ideal, double* model) {
  z.resize(q.size());
  for (size_t d = 0; d < q.size(); ++d) {
    z[d] = static_cast<uint32_t>(q[d].find(rans_peek(m, kPosteriorPrecision)));
    const auto [start, freq] = slot_of(q[d], z[d]);
    rans_pop(m, start, freq, kPosteriorPrecision);
    const double bits = kPosteriorPrecision - std::log2(static_cast<double>(freq));
    if (ideal) *ideal -= bits;
    if (model) *model -= bits;
  }
}

void BitsBackCoder::push_with(RansMessage& m, const std::vector<Table>& q,
                              const std::vector<uint32_t>& z, double* ideal, double* model) {
  for (size_t d = q.size(); d-- > 0;) {
    const auto [start, freq] = slot_of(q[d], z[d]);
    rans_push(m, start, freq, kPosteriorPrecision);
    const double bits = kPosteriorPrecision - std::log2(static_cast<double>(freq));
    if (ideal) *ideal += bits;
    if (model) *model += bits;
  }
}

void BitsBackCoder::push_image(RansMessage& m, const uint16_t* x, double& ideal,
                               double& model) const {
  const int64_t L = nets_.latent, D = size_.dims();
  std::vector<uint32_t> z(L), z2, cdf(levels_ + 1);
  // 1. z from the message with q(z|x): the bits the decoder gets back; then
  // z2 with q(z2|z).
  pop_with(m, posterior(x), z, &ideal, &model);
  const std::vector<float> zin = z_input(z);
  if (nets_.latent2 > 0) pop_with(m, gaussians(nets_.up, zin, false), z2, &ideal, &model);
  // 2. x with p(x|z), last sub-pixel first: the decoder pops them in order.
  std::vector<float> features;
  decode(zin, features);
  if (nets_.engine) {
    EncodeStats e;
    push_block(m, *nets_.engine, ImageBlock{size_, 1, std::vector<uint16_t>(x, x + D)}, &e,
               features.data());
    ideal += e.ideal_bits;
    model += e.model_bits;
  } else {
    std::vector<float> params(subpixel_params());
    for (int64_t t = D; t-- > 0;) {
      model += subpixel_cdf(features.data(), t, params, cdf.data(), x[t]);
      ideal += kCodecPrecision - std::log2(static_cast<double>(cdf[x[t] + 1] - cdf[x[t]]));
      push_symbol(m, cdf.data(), x[t], kCodecPrecision);
    }
  }
  // 3. z with the prior: p(z|z2), then z2 with its own.
  if (nets_.latent2 > 0)
    push_with(m, gaussians(nets_.down, z_values(z2, false), true), z, &ideal, &model);
  const std::vector<uint32_t>& top = nets_.latent2 > 0 ? z2 : z;
  for (size_t d = top.size(); d-- > 0;) {
    const double bits = push_prior(m, top[d]);
    ideal += bits;
    model += bits;
  }
}

void BitsBackCoder::pop_image(RansMessage& m, uint16_t* x) const {
  const int64_t L = nets_.latent, L2 = nets_.latent2, D = size_.dims();
  std::vector<uint32_t> z(L), z2(L2), cdf(levels_ + 1);
  if (L2 > 0) {
    for (int64_t d = 0; d < L2; ++d) z2[d] = pop_prior(m);
    pop_with(m, gaussians(nets_.down, z_values(z2, false), true), z, nullptr, nullptr);
  } else {
    for (int64_t d = 0; d < L; ++d) z[d] = pop_prior(m);
  }
  const std::vector<float> zin = z_input(z);
  std::vector<float> features;
  decode(zin, features);
  if (nets_.engine) {
    const auto values = pop_block(m, *nets_.engine, 1, size_, features.data()).values;
    std::copy(values.begin(), values.end(), x);
  } else {
    std::vector<float> params(subpixel_params());
    for (int64_t t = 0; t < D; ++t) {
      subpixel_cdf(features.data(), t, params, cdf.data(), -1);
      x[t] = static_cast<uint16_t>(
          pop_symbol(m, cdf.data(), static_cast<uint32_t>(levels_), kCodecPrecision));
    }
  }
  if (L2 > 0) push_with(m, gaussians(nets_.up, zin, false), z2, nullptr, nullptr);
  push_with(m, posterior(x), z, nullptr, nullptr);
}

void BitsBackCoder::push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                                const UnitsDone& done) const {
  check_size(block.size);
  // Enough for the first image's z in nearly every case: the prior's bits.
  int64_t bits = 1;
  while ((int64_t{1} << bits) < values()) ++bits;
  push_chained(
      m, block, ((nets_.latent + nets_.latent2) * bits + kStartBits - 1) / kStartBits + 4,
      [this](RansMessage& t, const uint16_t* x, double& ideal, double& model) {
        push_image(t, x, ideal, model);
      },
      stats, done);
}

ImageBlock BitsBackCoder::pop_images(RansMessage& m, int64_t n, ImageSize size,
                                     const UnitsDone& done) const {
  check_size(size);
  return pop_chained(
      m, n, size, [this](RansMessage& t, uint16_t* x) { pop_image(t, x); }, done);
}

// ------------------------------------------------------------------ the chain

int64_t chained_default_block(int64_t images) {
  return std::max<int64_t>(1, (images + kDefaultChains - 1) / kDefaultChains);
}

void push_chained(RansMessage& m, const ImageBlock& block, int64_t initial, const ChainPush& push,
                  EncodeStats* stats, const UnitsDone& done) {
  const uint64_t seed = start_seed(block);
  const int64_t D = block.size.dims();
  int64_t reported = 0;  // progress: n images in all, even when the chain starts again
  for (;; initial *= 2) {
    if (initial >= (int64_t{1} << kStartBits))
      throw Error("bits-back coding: the chain's start ran dry");
    RansMessage t = m;
    for (int64_t s = 0; s < initial; ++s) rans_push(t, start_symbol(seed, s), 1, kStartBits);
    rans_push(t, static_cast<uint32_t>(initial), 1, kStartBits);
    for (int64_t s = 0; s < kCover; ++s) rans_push(t, start_symbol(seed, -1 - s), 1, kStartBits);
    double ideal = 0, model = 0;
    try {
      for (int64_t b = block.n; b-- > 0;) {  // the decoder pops image 0 first
        push(t, block.values.data() + b * D, ideal, model);
        if (block.n - b > reported) {
          reported = block.n - b;
          if (done) done(1);
        }
      }
    } catch (const TruncatedMessage&) {
      continue;  // a pop found the message dry: start again with more bits
    }
    m = std::move(t);
    if (stats) {
      stats->ideal_bits += ideal;
      stats->model_bits += model;
      stats->chain_bits += static_cast<double>((initial + 1 + kCover) * kStartBits);
    }
    return;
  }
}

ImageBlock pop_chained(RansMessage& m, int64_t n, ImageSize size, const ChainPop& pop,
                       const UnitsDone& done) {
  ImageBlock block{size, n, std::vector<uint16_t>(n * size.dims())};
  for (int64_t b = 0; b < n; ++b) {
    pop(m, block.values.data() + b * size.dims());
    if (done) done(1);
  }
  // The start, top down: the cover, the count, the initial symbols.
  const uint64_t seed = start_seed(block);
  auto check = [&m, seed](int64_t s) {
    const uint32_t v = rans_peek(m, kStartBits);
    if (v != start_symbol(seed, s))
      throw Error("the bits-back chain does not end at its start (corrupt data)");
    rans_pop(m, v, 1, kStartBits);
  };
  for (int64_t s = kCover; s-- > 0;) check(-1 - s);
  const uint32_t initial = rans_peek(m, kStartBits);
  rans_pop(m, initial, 1, kStartBits);
  for (int64_t s = initial; s-- > 0;) check(s);
  return block;
}

}  // namespace tame
