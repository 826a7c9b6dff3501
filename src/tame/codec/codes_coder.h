// The coder of a two-stage model (models/latent/code_prior.h): each image's
// discrete codes z, chosen by the encoder, coded with the prior's own coder,
// then the image with p(x | z). The posterior is deterministic, so nothing
// comes back: a block costs -log2 p_prior(z) - log2 p(x | z) bits, the pair's
// bound, with no chain to start.
//
// Pushing a block (the decoder pops in the reverse order):
//   1. every image's code map: the encoder's map of z_e and, at each
//      position, the nearest codebook entry (squared distance summed over the
//      dimensions in order, the first of equal ones);
//   2. each image x with p(x | z), last image and last sub-pixel first;
//   3. the block's code maps with the prior's coder.
// The encoder, the lookup and the decoder run on the fixed-order kernels
// (nn/feedforward.h), so a file depends on neither the thread count nor the
// process. Free of LibTorch.
#pragma once

#include <memory>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/dist/integer_cdf.h"
#include "tame/nn/feedforward.h"

namespace tame {

struct CodeNets {
  /// Image [H][W][C], levels mapped to [-1, 1] -> z_e [h][w][dim].
  steps::Feedforward encoder;
  /// The quantized map [h][w][dim] -> [H][W][features of C channels].
  steps::Feedforward decoder;
  std::vector<float> codebook;  // [codes][dim]
  int64_t codes = 0, dim = 0;
  /// How the decoder's features parameterize each sub-pixel (as in bits_back.h).
  PixelKind pixels = PixelKind::kCategorical;
};

class CodesCoder : public ImageCoder {
 public:
  /// A coder of `size` images with values < levels whose codes the prior
  /// codes as 1 x h x w maps of nets.codes levels; throws Error when they do
  /// not fit.
  CodesCoder(CodeNets nets, std::unique_ptr<ImageCoder> prior, ImageSize size, int64_t levels);
  int64_t channels() const override { return size_.channels; }
  int64_t levels() const override { return levels_; }
  uint64_t fingerprint() const override;
  int64_t max_block() const override { return prior_->max_block(); }
  int64_t default_block(int64_t images) const override { return prior_->default_block(images); }
  void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                   const UnitsDone& done) const override;
  ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                        const UnitsDone& done) const override;
  /// Image x's code map [h w] (step 1 above).
  std::vector<uint16_t> codes_of(const uint16_t* x) const;

 private:
  void check_size(ImageSize size) const;
  /// The decoder's features for a code map.
  std::vector<float> features(const uint16_t* z) const;
  /// Sub-pixel t's table from the features; -log2 p(value) when value >= 0.
  double subpixel_cdf(const float* features, int64_t t, std::vector<float>& params, uint32_t* cdf,
                      int64_t value) const;

  CodeNets nets_;
  std::unique_ptr<ImageCoder> prior_;
  ImageSize size_, code_size_;
  int64_t levels_;
};

/// Images whose every value is uniform over `levels`, independent of the
/// others: log2 K bits a value (exactly, for K a power of 2; a table summing
/// to 2^24 otherwise). The prior a VQ model's codes have without a trained
/// one, so that the model alone is a codec at its uniform-prior bound. Any
/// image size.
class UniformCoder : public ImageCoder {
 public:
  UniformCoder(int64_t channels, int64_t levels);
  int64_t channels() const override { return channels_; }
  int64_t levels() const override { return levels_; }
  uint64_t fingerprint() const override;
  int64_t max_block() const override;
  int64_t default_block(int64_t images) const override;
  void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                   const UnitsDone& done) const override;
  ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                        const UnitsDone& done) const override;

 private:
  int64_t channels_, levels_;
  std::vector<uint32_t> cdf_;  // levels + 1 entries
};

}  // namespace tame
