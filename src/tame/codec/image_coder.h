// What the container (model_codec.h) needs of a model to code its images: an
// ImageCoder pushes a block of images onto an rANS message and pops them back.
// Two kinds exist:
//   - a step engine (models/autoregressive/step_engine.h): every sub-pixel's
//     conditional, in the engine's order (model_codec.cpp);
//   - a bits-back coder (codec/bits_back.h): a latent-variable model's
//     q(z|x), p(x|z) and p(z), chained over the block's images.
// The container stays the same for both: header, runs, tiles, blocks on
// threads, stored blocks, checksums and the model's fingerprint. Free of
// LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tame/codec/rans.h"

namespace tame {

/// The size of one image, channels first.
struct ImageSize {
  int64_t channels = 0, height = 0, width = 0;
  int64_t dims() const { return channels * height * width; }
  std::string str() const;  // "1x28x28"
  bool operator==(const ImageSize& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const ImageSize& o) const { return !(*this == o); }
};

/// An image's values [C][H][W] as the channels-last map [H][W][C] of floats
/// v * 2 / (levels - 1) - 1 in [-1, 1]: what a coder's encoder network reads.
inline std::vector<float> unit_image(const uint16_t* x, ImageSize size, int64_t levels) {
  const int64_t C = size.channels, P = size.height * size.width;
  std::vector<float> out(C * P);
  const float scale = 2.0f / static_cast<float>(levels - 1);
  for (int64_t c = 0; c < C; ++c)
    for (int64_t p = 0; p < P; ++p) out[p * C + c] = static_cast<float>(x[c * P + p]) * scale - 1;
  return out;
}

/// n images of one size, the unit the codec codes as one message.
struct ImageBlock {
  ImageSize size;
  int64_t n = 0;
  std::vector<uint16_t> values;  // [n][C][H][W]
};

struct EncodeStats {
  double file_bits = 0;   // 8 * file bytes
  double ideal_bits = 0;  // net sum of -log2(freq / 2^precision) pushed, less what was popped
  double model_bits = 0;  // the same under the model's float probabilities (its NLL or bound)
  /// Bits a coder spends to start a block's message (bits-back coding's
  /// initial bits), part of file_bits and of neither sum above.
  double chain_bits = 0;
};

/// Told how many more images of a block a coder has finished (for progress).
using UnitsDone = std::function<void(int64_t units)>;

class ImageCoder {
 public:
  virtual ~ImageCoder() = default;
  /// The images this coder takes: channels and levels (2..2^16).
  virtual int64_t channels() const = 0;
  virtual int64_t levels() const = 0;
  /// Hash of everything that decides the coder's frequencies (kind, geometry,
  /// weights): a file decodes only with the fingerprint it was written with.
  virtual uint64_t fingerprint() const = 0;
  /// What container version 1 stored instead (the engines that had one).
  virtual uint64_t fingerprint_v1(int64_t height, int64_t width) const { return fingerprint(); }
  /// This model's coder under an earlier frequency rule whose files carry
  /// `fingerprint` (so that they still decode), or null when none does.
  virtual std::shared_ptr<const ImageCoder> earlier_rule(uint64_t fingerprint) const {
    return nullptr;
  }
  /// The most images one block may hold (what one block costs in memory), and
  /// the block size for `images` units when the caller leaves it to the coder
  /// (never the thread count: a file does not depend on it).
  virtual int64_t max_block() const = 0;
  virtual int64_t default_block(int64_t images) const = 0;
  /// Pushes a block's images, so that pop_images() gives them back and leaves
  /// the message as it was; adds to `stats` when given, and tells `done` (when
  /// set) as images are finished. Both are const and thread-safe: one coder
  /// serves every thread.
  virtual void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                           const UnitsDone& done) const = 0;
  virtual ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                                const UnitsDone& done) const = 0;
};

}  // namespace tame
