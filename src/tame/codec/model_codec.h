// A trained autoregressive model as a lossless image codec: the cached step
// engine (models/autoregressive/step_engine.h) gives each sub-pixel's
// conditional in raster order, R -> G -> B within a pixel; it is quantized to
// integer frequencies and the true value is coded with rANS (rans.h).
//
// Why the decoder gets the encoder's frequencies bit for bit: the engine's
// logits are a function of the image alone (fixed-order kernels, no libm, no
// FMA; see nn/step_kernels.h), and logits_to_cdf() below is a fixed sequence of
// IEEE operations. Threads split whole blocks of images, and a block is coded
// the same whichever thread runs it, so files don't depend on --threads.
//
// File layout, little-endian:
//   "TAMECODC"  u32 version (1)  u32 meta_len  meta[meta_len]  u32 crc32(all before)
//   payload of block 0, block 1, ...   (the file ends exactly there)
// meta:
//   u64 model fingerprint   u8 n + model name (for messages)
//   u32 C, H, W, levels, precision   u64 count   u32 block size   u32 flags
//   per block: u32 payload bytes, u32 crc32 of the payload
//   if flags & 1, per image: u16 n + file name
// A block holds `block` images (the last one fewer) as one rANS stream whose
// symbols are in order (sub-pixel s, image b), s-major. Free of LibTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tame/codec/codec.h"
#include "tame/models/autoregressive/step_engine.h"

namespace tame {

constexpr uint32_t kCodecVersion = 1;
constexpr uint32_t kCodecPrecision = 24;  // frequencies sum to 2^24
// A block's images are stepped together, and the engine keeps every layer's
// activations for all of them (about 0.5 GB for 256 images of the demo's model).
constexpr int64_t kMaxBlock = 256;
// decode_images refuses files that would decode to more image bytes than this.
constexpr int64_t kMaxDecodedBytes = int64_t{1} << 32;

/// Quantizes one conditional: cdf[0] = 0 <= ... <= cdf[levels] = 2^precision,
/// every frequency >= 1. freq_k = 1 + floor(e_k * ((2^precision - levels) / S))
/// with e_k = det_exp(l_k - max l) in float and S = sum_k e_k in double, and the
/// remainder goes to the most probable level. Requires 2^precision >= 2 * levels.
/// Returns -log2 of the float softmax probability of `value` (for reporting)
/// when value >= 0, else 0 (the decoder's case: no logarithms on its hot path).
double logits_to_cdf(const float* logits, int64_t levels, uint32_t precision, uint32_t* cdf,
                     int64_t value = -1);

struct EncodeStats {
  double file_bits = 0;   // 8 * file bytes
  double ideal_bits = 0;  // sum of -log2(freq / 2^precision): what an ideal coder would spend
  double model_bits = 0;  // sum of -log2 p under the float conditionals (the model's NLL)
};

/// The codec of one block of n images, uint8 [n][C][H][W]: its symbols in the
/// engine's order (sub-pixel s in raster order, then image b), each with its
/// conditional's table. push adds the ideal and model bits to `stats` when
/// given; pop returns the images.
void push_block(RansMessage& m, const StepEngine& engine, const uint8_t* images, int64_t n,
                EncodeStats* stats = nullptr);
std::vector<uint8_t> pop_block(RansMessage& m, const StepEngine& engine, int64_t n);
/// The same pair as a Codec, for composing.
Codec<std::vector<uint8_t>> block_codec(const StepEngine& engine, int64_t n);

/// Encodes n images, uint8 [n][C][H][W] with values < levels, into one file.
/// names: empty, or one per image (plain file names, stored in the file).
std::string encode_images(const StepEngine& engine, const std::string& model_name,
                          const uint8_t* images, int64_t n, const std::vector<std::string>& names,
                          int64_t block, int threads, EncodeStats* stats = nullptr);

/// What a file says about itself; parse_header checks the structure and every
/// checksum, but not the model.
struct CodecHeader {
  uint64_t fingerprint = 0;
  std::string model_name;
  int64_t channels = 0, height = 0, width = 0, levels = 0, count = 0, block = 0;
  uint32_t precision = 0;
  std::vector<std::string> names;      // empty when the file stores none
  std::vector<uint64_t> block_offset;  // payload start in the file
  std::vector<uint32_t> block_bytes;
};
CodecHeader parse_header(const std::string& file);

struct DecodedImages {
  CodecHeader header;
  std::vector<uint8_t> pixels;  // [count][C][H][W]
};

/// Decodes a whole file with the engine it was written with; throws Error when
/// the file is malformed or corrupt, or was written by another model.
DecodedImages decode_images(const StepEngine& engine, const std::string& file, int threads);

}  // namespace tame
