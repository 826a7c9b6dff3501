// A trained model as a lossless image codec: the container of files, and the
// block codec of autoregressive models. The model's ImageCoder
// (image_coder.h) codes each block: for an autoregressive model its step
// engine (models/autoregressive/step_engine.h), which writes each sub-pixel's
// integer CDF in its own order (raster order, R -> G -> B within a pixel) and
// pushes the true value onto an rANS message (rans.h) with it; for a latent
// model the bits-back coder of bits_back.h.
//
// Why the decoder gets the encoder's tables bit for bit: every coder's
// parameters are a function of the image alone (fixed-order kernels, no libm,
// no FMA; see nn/step_kernels.h), and its CDF writers (dist/integer_cdf.h) are
// fixed sequences of IEEE operations. Threads split whole blocks of images,
// and a block is coded the same whichever thread runs it, so files don't
// depend on --threads.
//
// File layout (version 2), little-endian:
//   "TAMECODC"  u32 version (2)  u32 meta_len  meta[meta_len]  u32 crc32(all before)
//   payload of block 0, block 1, ...   (the file ends exactly there)
// meta:
//   u64 model fingerprint   u8 n + model name (for messages)
//   u32 levels, precision   u64 count   u32 block size   u32 flags
//   if flags & 4: u32 tile side T
//   u32 runs, per run: u64 images, u32 C, H, W   (consecutive images of one shape)
//   per block: u32 payload bytes, u32 crc32 of the payload
//   if flags & 2, per block: u8 mode (0 = rANS, 1 = stored)
//   if flags & 1, per image: u16 n + file name
// The coded units are the images, except that with flags & 4 an image wider
// or taller than T is split into T x T tiles (raster order; smaller at the
// right and bottom edges), each coded as an image of its own. Runs of
// consecutive units of one shape are cut into blocks of `block` units (the
// last fewer), and each tile of a split image is a block alone, so a block's
// units share one shape. A block is one serialized rANS message
// (8-byte head, then its words) whose symbols pop in the coder's order (for a
// step engine: engine step s, image b, s-major). A stored block (deflate's idea: no image costs
// much more than its raw bytes) holds its values as they are, [n][C][H][W], one byte each when
// levels <= 256, else two (little-endian); the encoder stores a block whenever that is not larger
// than its rANS message. Version 1 (still read) had no runs: u32 C, H, W, levels, precision in
// their place, one shape for every image, at most 256 levels, and a fingerprint that also hashed
// the image size. Free of LibTorch.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "tame/codec/codec.h"
#include "tame/codec/image_coder.h"
#include "tame/models/autoregressive/step_engine.h"

namespace tame {

constexpr uint32_t kCodecVersion = 2;
constexpr uint32_t kCodecPrecision = 24;  // frequencies sum to 2^24
// A step engine steps a block's images together; its caches hold a few rows
// of every layer for each of them: its max_block().
constexpr int64_t kMaxBlock = 256;
// The most units a file's block may declare (a bits-back coder chains a
// block's images one at a time, so its blocks may be long).
constexpr int64_t kMaxFileBlock = int64_t{1} << 24;
constexpr int64_t kMaxSide = 65535;  // the largest height or width a file may declare
// parse_header refuses files whose images would take more memory than this
// once decoded (two bytes per value), before anything is allocated for them.
// The fuzz build lowers it, so that libFuzzer's memory limit catches the
// parser's mistakes rather than a legal 4 GiB file.
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
constexpr int64_t kMaxDecodedBytes = int64_t{1} << 26;
#else
constexpr int64_t kMaxDecodedBytes = int64_t{1} << 32;
#endif

/// Images of any sizes, values < levels (up to 2^16).
struct ImageList {
  std::vector<ImageSize> sizes;    // one per image
  std::vector<uint16_t> values;    // each image's [C][H][W], one after another
  std::vector<std::string> names;  // empty, or one plain file name per image
};
/// n images of one size from uint8 values [n][C][H][W].
ImageList image_list(const uint8_t* values, int64_t n, ImageSize size,
                     std::vector<std::string> names = {});

/// What the codec codes as an image of its own: a whole image, or one tile of
/// an image split into tiles (part = true) at (y, x).
struct Tile {
  int64_t image = 0, y = 0, x = 0;
  ImageSize size;
  bool part = false;
};

/// The codec of one block: its symbols in the engine's order, each with the
/// table the engine writes for it. push adds the ideal and model bits to
/// `stats` when given. `context`: the block's context map for an engine that
/// reads one (float [n][H][W][engine.context_features()]), else nullptr.
void push_block(RansMessage& m, const StepEngine& engine, const ImageBlock& block,
                EncodeStats* stats = nullptr, const float* context = nullptr);
ImageBlock pop_block(RansMessage& m, const StepEngine& engine, int64_t n, ImageSize size,
                     const float* context = nullptr);
/// The same pair as a Codec, for composing.
Codec<ImageBlock> block_codec(const StepEngine& engine, int64_t n, ImageSize size);

/// Called after each block, one call at a time, from the thread that coded
/// it: the units coded so far and in all, and what they are: "images", or
/// "tiles" when some image is split (a whole image then counts as one tile).
using CodecProgress = std::function<void(int64_t done, int64_t total, const char* unit)>;

struct EncodeOptions {
  /// Units per block (1..coder.max_block()), 0: the coder's default_block();
  /// blocks never mix sizes.
  int64_t block = 0;
  int threads = 1;  ///< threads take whole blocks; the file does not depend on them
  /// Store a block's raw values when its rANS message would be no smaller
  /// (tame compress does; off, every block is rANS-coded).
  bool allow_stored = false;
  /// 0: whole images. T >= kMinTile: an image wider or taller than T is coded
  /// as independent T x T tiles (smaller at its right and bottom edges), each
  /// a block of its own, so threads share it and the engine's caches and the
  /// coder's buffers hold one tile. Tiles cost a little: their first rows and
  /// columns see no context across the border.
  int64_t tile = 0;
  CodecProgress progress;  ///< optional
};
constexpr int64_t kMinTile = 8;

/// Encodes the images into one file (any mix of sizes when the coder is
/// fully convolutional; every image must have the coder's channels).
std::string encode_images(const ImageCoder& coder, const std::string& model_name,
                          const ImageList& images, const EncodeOptions& options,
                          EncodeStats* stats = nullptr);
/// The same with options {block, threads, allow_stored}.
std::string encode_images(const ImageCoder& coder, const std::string& model_name,
                          const ImageList& images, int64_t block, int threads,
                          EncodeStats* stats = nullptr, bool allow_stored = false);

/// What a file says about itself; parse_header checks the structure and every
/// checksum, but not the model.
struct CodecHeader {
  uint32_t version = 0;
  uint64_t fingerprint = 0;
  std::string model_name;
  int64_t levels = 0, count = 0, block = 0;
  uint32_t precision = 0;
  std::vector<ImageSize> sizes;        // one per image
  std::vector<std::string> names;      // empty when the file stores none
  int64_t tile = 0;                    // 0, or the side images wider or taller were split at
  std::vector<Tile> units;             // what is coded: images, or their tiles
  std::vector<int64_t> block_first;    // first unit of each block
  std::vector<int64_t> block_images;   // units in each block
  std::vector<uint64_t> block_offset;  // payload start in the file
  std::vector<uint32_t> block_bytes;
  std::vector<uint8_t> block_stored;  // 1 for a stored block, one per block
};
CodecHeader parse_header(const std::string& file);

struct DecodedImages {
  CodecHeader header;
  ImageList images;
};

/// Decodes a whole file with the coder it was written with; throws Error when
/// the file is malformed or corrupt, or was written by another model.
DecodedImages decode_images(const ImageCoder& coder, const std::string& file, int threads,
                            const CodecProgress& progress = nullptr);

}  // namespace tame
