// Bits-back coding with ANS (BB-ANS: Townsend, Bird & Barber 2019; chained
// over a block's images as in craystack and Bit-Swap): a latent-variable model
// with a Gaussian posterior q(z|x) = N(mu(x), diag sigma(x)^2), the prior
// N(0, I) and a decoder p(x|z) whose sub-pixels are independent given z codes
// an image in about -ELBO bits. Categorical latents with a uniform prior (the
// Gumbel-softmax VAE) are coded the same way, with exact tables. With an autoregressive decoder
// (VLAE), x is coded through its step engine, conditioned on the decoder network's map of z.
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
// bits a dimension exactly; the posterior's table has the entries
// cdf(i) = floor(Phi((e_i - mu) / sigma) M) + 2i (M = 2^precision - 2^(b+1)),
// computed one by one where the coder needs them (a pop bisects for its
// bucket: about b + 2 entries, not 2^b), and the sum is exact. Every bucket
// has frequency >= 1: the computed Phi is monotone up to rounding, which moves
// Phi M by far less than 1, so a floor falls by at most 1 where it should
// rise, and the 2i pays for it; the coder checks it anyway.
//
// The chain: a block's images share one message, the first image pushed
// popping its z from a start pushed before it: S 16-bit symbols of a
// pseudo-random sequence (splitmix64, seeded by a hash of the block's images,
// so that no two chains start alike), their count S, and two more such
// symbols over the count, so that the first pop reads random bits. That start
// is the chain's only overhead, 16 (S + 3) bits a block, reported as
// EncodeStats::chain_bits; a long block amortizes it, so this coder's default
// cuts a file into 8 blocks (threads for up to 8 cores). S = ceil(L b / 16) + 4
// covers the first pop in nearly every case; when a pop of z finds the
// message dry, the encoder starts the block again with twice the symbols. The
// decoder, at the end of a block, pops the start and checks every symbol of
// it: a file that decodes to other bits is corrupt.
//
// Determinism: the encoder and decoder networks run on the fixed-order
// kernels (nn/feedforward.h), Phi is written from + - * / (det_normal_cdf),
// and the pixel tables come from dist/integer_cdf.h, so both sides compute
// every table bit for bit. Free of LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/dist/integer_cdf.h"
#include "tame/models/autoregressive/step_engine.h"
#include "tame/nn/feedforward.h"

namespace tame {

constexpr int kLatentBits = 12;               // 4096 buckets per latent dimension
constexpr uint32_t kPosteriorPrecision = 24;  // the posterior tables sum to 2^24

/// The standard normal CDF from + - * / alone (a rational erfc approximation
/// and an exp of its own; relative error below 2e-7): the same bits everywhere.
double det_normal_cdf(double x);
/// e^x and ln x (x > 0) the same way, from + - * / and exact scalings
/// (floor, ldexp, frexp): relative error below 1e-14.
double det_exp_double(double x);
double det_log_double(double x);

/// The chain that BB-ANS coders share (the comment above): a block's images
/// pushed last first onto one message over a pseudo-random start of at least
/// `initial` 16-bit symbols, doubled until the first image's pops find bits
/// (a push that finds the message dry throws TruncatedMessage). `push` pushes
/// one image and adds its ideal and model bits; the start goes to
/// stats->chain_bits.
using ChainPush =
    std::function<void(RansMessage& m, const uint16_t* x, double& ideal, double& model)>;
using ChainPop = std::function<void(RansMessage& m, uint16_t* x)>;
void push_chained(RansMessage& m, const ImageBlock& block, int64_t initial, const ChainPush& push,
                  EncodeStats* stats, const UnitsDone& done);
/// Pops n images of `size` with `pop`, then pops the chain's start and checks
/// every symbol of it: a message that ends elsewhere is corrupt.
ImageBlock pop_chained(RansMessage& m, int64_t n, ImageSize size, const ChainPop& pop,
                       const UnitsDone& done);
/// Blocks of a chained coder's file when the caller leaves it to the coder:
/// 8 chains (threads for up to 8 cores).
int64_t chained_default_block(int64_t images);

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
class BucketCdf {
 public:
  BucketCdf(float mu, float sigma, uint32_t precision);
  /// Entry i of the table, 0 <= i <= 2^kLatentBits.
  uint32_t operator()(int64_t i) const;
  /// The bucket i with cdf(i) <= slot < cdf(i + 1), by bisection.
  int64_t find(uint32_t slot) const;
  /// The whole table (2^kLatentBits + 1 entries), for tests.
  void write(uint32_t* cdf) const;

 private:
  double mu_, inv_sigma_, mass_;
  uint32_t precision_;
};

/// A latent model's networks, for the coder. Its L latent variables are
/// Gaussian (classes = 0; the buckets above) or categorical over `classes`
/// values each (the Gumbel-softmax VAE's exact form: q's table from the
/// encoder's logits by categorical_cdf, a uniform prior, one-hot z).
struct LatentNets {
  /// Image [H][W][C], levels mapped to [-1, 1] -> Gaussian: 2L floats, mu
  /// then log-variance; categorical: L x classes logits.
  steps::Feedforward encoder;
  /// z -> [H][W][features of C channels], or, with an engine, the engine's
  /// context map [H][W][engine->context_features()]. z is L bucket medians,
  /// or L one-hot vectors of `classes`.
  steps::Feedforward decoder;
  /// An autoregressive p(x|z) (VLAE): the step engine that codes x, reading
  /// the decoder's map as its context; null: independent sub-pixels.
  std::shared_ptr<const StepEngine> engine;
  int64_t latent = 0;
  int64_t classes = 0;
  float logvar_min = -12.0f, logvar_max = 8.0f;  // a Gaussian encoder's clamp (the model's)
  /// A second Gaussian layer z2 of latent2 variables above z (latent2 > 0,
  /// Gaussian z only: the two-layer VAE): `up` maps z's L values to q(z2|z)
  /// and `down` maps z2's medians to p(z|z2), each as mu then log-variance
  /// (clamped as the encoder's). z2 then has the uniform bucket prior and z
  /// the prior p(z|z2). z has no fixed N(0, 1) scale in such a model (a
  /// trained one puts posterior means 15 units out), so z's buckets are those
  /// of N(0, 1) mapped through z = loc + scale u per unit, loc and scale the
  /// moments of the prior's marginal p(z) = E p(z|z2) over 256 fixed z2 points
  /// (bucket medians picked by splitmix64), computed from the weights alone
  /// with the fixed-order kernels. The order: pop z with q(z|x), pop z2 with
  /// q(z2|z), push x with p(x|z), push z with p(z|z2), push z2 with p(z2);
  /// the net cost is the two-layer one-draw ELBO.
  int64_t latent2 = 0;
  steps::Feedforward up, down;
  /// Without an engine, how the decoder's features parameterize each
  /// sub-pixel (dist/integer_cdf.h): parameter j of channel c is feature
  /// j C + c of the pixel, as in dist/pixel_likelihood.h.
  PixelKind pixels = PixelKind::kCategorical;
};

class BitsBackCoder : public ImageCoder {
 public:
  /// A coder of `size` images with values < levels; throws Error when the
  /// networks do not fit them.
  BitsBackCoder(LatentNets nets, ImageSize size, int64_t levels);
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
  // One latent variable's posterior table: Gaussian buckets entry by entry,
  // or a categorical's whole table.
  struct Table {
    std::optional<BucketCdf> buckets;  // Gaussian
    std::vector<uint32_t> cdf;         // categorical: classes + 1 entries
    uint32_t at(int64_t i) const { return buckets ? (*buckets)(i) : cdf[i]; }
    int64_t find(uint32_t slot) const;
  };
  // The posterior of image x ([C][H][W]): one table per latent variable.
  std::vector<Table> posterior(const uint16_t* x) const;
  // The values that the networks read for buckets z: the medians, or for
  // the first of two layers (`grid`) their image under the grid, loc + scale u.
  std::vector<float> z_values(const std::vector<uint32_t>& z, bool grid = true) const;
  // Bucket tables of n Gaussians from `net`'s 2n outputs (mu, log-variance)
  // for inputs `in`; on the grid when `grid` (tables of z under two layers).
  std::vector<Table> gaussians(const steps::Feedforward& net, const std::vector<float>& in,
                               bool grid) const;
  // Latent values z, one per table of q: pop_with draws them from the message
  // (bits back: their bits leave *ideal and *model); push_with pushes them,
  // last first, as a prior's push or as the decoder's mirror of a pop (bits
  // added). Null accounts are not kept.
  static void pop_with(RansMessage& m, const std::vector<Table>& q, std::vector<uint32_t>& z,
                       double* ideal, double* model);
  static void push_with(RansMessage& m, const std::vector<Table>& q, const std::vector<uint32_t>& z,
                        double* ideal, double* model);
  // Each latent's values and the prior's bits for value z (a uniform prior).
  int64_t values() const;
  double push_prior(RansMessage& m, uint32_t z) const;  // returns its -log2 p(z)
  uint32_t pop_prior(RansMessage& m) const;
  // What the decoder (and `up`) read for latent values z: z_values, or one-hot
  // classes.
  std::vector<float> z_input(const std::vector<uint32_t>& z) const;
  // Decoder features [H][W][F] of that input.
  void decode(const std::vector<float>& z, std::vector<float>& features) const;
  // Parameters per sub-pixel of a decoder without an engine.
  int64_t subpixel_params() const;
  // Sub-pixel t's table (t = (c H + i) W + j) from the features, its
  // parameters gathered into `params`; returns -log2 p(value) when value >= 0.
  double subpixel_cdf(const float* features, int64_t t, std::vector<float>& params, uint32_t* cdf,
                      int64_t value) const;
  void push_image(RansMessage& m, const uint16_t* x, double& ideal, double& model) const;
  void pop_image(RansMessage& m, uint16_t* x) const;
  void check_size(ImageSize size) const;

  LatentNets nets_;
  ImageSize size_;
  int64_t levels_;
  std::vector<uint32_t> prior_;  // categorical: the uniform prior's table
  // Two layers: z's grid per unit, z = loc + scale u (LatentNets::latent2).
  std::vector<double> loc_, scale_;
};

}  // namespace tame
