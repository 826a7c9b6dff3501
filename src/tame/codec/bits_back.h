// Bits-back coding with ANS (BB-ANS: Townsend, Bird & Barber 2019; chained
// over a block's images as in craystack and Bit-Swap): a latent-variable model
// with a Gaussian posterior q(z|x) = N(mu(x), diag sigma(x)^2), the prior
// N(0, I) and a decoder p(x|z) whose sub-pixels are independent given z codes
// an image in about -ELBO bits.
//
// Pushing one image x onto the message (the decoder does the reverse):
//   1. pop z with q(z|x): the bits popped are whatever the message holds, so
//      z is a draw from q that the decoder will get back ("bits back");
//   2. push x with p(x|z), sub-pixel by sub-pixel;
//   3. push z with p(z).
// Net cost: -log2 p(x|z) - log2 p(z) + log2 q(z|x), the one-draw ELBO.
//
// Latents: each dimension is cut into 2^kLatentBits buckets of equal mass
// under N(0, 1) (edges Phi^-1(i / 2^b)), and z takes the bucket's median
// (Phi^-1((i + 1/2) / 2^b)). The prior is then uniform over the buckets, b
// bits a dimension exactly; the posterior's table gives bucket i the integer
// mass floor(Phi((e_i - mu) / sigma) M) + i (M = 2^precision - 2^b; then
// differences), so every bucket has frequency >= 1 and the sum is exact.
//
// The chain: a block's images share one message, the first image pushed
// popping its z from `initial` 16-bit symbols of a fixed pseudo-random
// sequence (splitmix64), pushed before it, and their count on top of them.
// That start is the chain's only overhead, 16 (S + 1) bits a block, reported
// as EncodeStats::chain_bits; a long block amortizes it, so this coder's
// default cuts a file into 8 blocks (threads for up to 8 cores). The encoder checks before every
// pop of z that the message holds enough words for the worst case (precision bits a dimension) and
// starts the block again with twice the symbols if not. The decoder, at the end of a block, pops
// the count and checks every initial symbol: a file that decodes to other bits is corrupt.
//
// Determinism: the encoder and decoder networks run on the fixed-order
// kernels (nn/feedforward.h), Phi is written from + - * / (det_normal_cdf),
// and the pixel tables come from dist/integer_cdf.h, so both sides compute
// every table bit for bit. Free of LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/nn/feedforward.h"

namespace tame {

constexpr int kLatentBits = 12;               // 4096 buckets per latent dimension
constexpr uint32_t kPosteriorPrecision = 24;  // the posterior tables sum to 2^24

/// The standard normal CDF from + - * / alone (a rational erfc approximation
/// and an exp of its own; relative error below 2e-7): the same bits everywhere.
double det_normal_cdf(double x);

/// The 2^kLatentBits equal-mass buckets of N(0, 1): edges (2^b + 1, the first
/// -inf and the last +inf) and medians (2^b), computed once per process by
/// bisection on det_normal_cdf.
struct NormalBuckets {
  std::vector<double> edges;
  std::vector<float> medians;
};
const NormalBuckets& normal_buckets();

/// The integer CDF (2^kLatentBits + 1 entries, summing to 2^precision) of
/// N(mu, sigma^2) over the buckets, as described above; sigma > 0.
void gaussian_bucket_cdf(float mu, float sigma, uint32_t precision, uint32_t* cdf);

/// How a decoder's features parameterize each sub-pixel (dist/pixel_likelihood.h):
/// parameter j of channel c is feature j C + c of the pixel.
enum class PixelKind { kBernoulli, kCategorical, kLogistic };

/// A Gaussian latent model's networks, for the coder.
struct GaussianLatentNets {
  /// Image [H][W][C], levels mapped to [-1, 1] -> 2L floats: mu, then log-variance.
  steps::Feedforward encoder;
  /// z (L floats) -> [H][W][features of C channels].
  steps::Feedforward decoder;
  int64_t latent = 0;
  float logvar_min = -12.0f, logvar_max = 8.0f;  // the encoder's clamp
  PixelKind pixels = PixelKind::kCategorical;
};

class BitsBackCoder : public ImageCoder {
 public:
  /// A coder of `size` images with values < levels; throws Error when the
  /// networks do not fit them.
  BitsBackCoder(GaussianLatentNets nets, ImageSize size, int64_t levels);
  int64_t channels() const override { return size_.channels; }
  int64_t levels() const override { return levels_; }
  uint64_t fingerprint() const override;
  int64_t max_block() const override;
  int64_t default_block(int64_t images) const override;
  void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                   const UnitsDone& done) const override;
  ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                        const UnitsDone& done) const override;

 private:
  struct Stats {
    double ideal = 0, model = 0;
  };
  // The posterior tables of image x ([C][H][W]): [L][2^b + 1].
  void posterior(const uint16_t* x, std::vector<uint32_t>& tables) const;
  // Decoder features [H][W][F] of bucket indices z.
  void decode(const std::vector<uint32_t>& z, std::vector<float>& features) const;
  // Sub-pixel t's table (t = (c H + i) W + j) from the features; returns
  // -log2 of the float probability of value when value >= 0.
  double pixel_cdf(const float* features, int64_t t, uint32_t* cdf, int64_t value) const;
  bool push_chain(RansMessage& m, const ImageBlock& block, int64_t initial, Stats& stats,
                  const std::function<void()>& image_done) const;
  void push_image(RansMessage& m, const uint16_t* x, Stats& stats) const;
  void pop_image(RansMessage& m, uint16_t* x) const;
  void check_size(ImageSize size) const;

  GaussianLatentNets nets_;
  ImageSize size_;
  int64_t levels_;
};

}  // namespace tame
