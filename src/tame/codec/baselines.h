// Classical lossless image codecs as baselines for learned compression: PNG,
// WebP lossless and JPEG-XL lossless, each driven through its library at its
// strongest setting, measured one file per image with whole file bytes counted
// (signature, headers and trailers included).
//
// Settings, and the command-line tools they stand in for:
//   png   libpng, no ancillary chunks, one IDAT chunk, the smallest of
//         optipng -o7's trials: zlib levels 1-9 x memLevel 8, 9 x strategies
//         default/filtered/Huffman only/RLE x row filters none/sub/up/
//         average/Paeth/adaptive (204 distinct of 432). optipng's colour-type
//         and bit-depth reductions are not tried: they matter for RGB images
//         of few colours and for images of few gray levels.
//   webp  libwebp, WebPConfigLosslessPreset(9) with exact = 1: cwebp -lossless
//         -z 9 -exact. Gray images are expanded to RGB, as cwebp does.
//   jxl   libjxl, lossless (distance 0), effort 9, gray kept as one channel,
//         sRGB colour encoding, bare codestream: cjxl -q 100 -e 9. Effort 7
//         where libjxl 0.7 aborts at effort 9 (counted in fallback_images).
//
// Bilevel images (K = 2: binarized digits) get each codec's bilevel form, the
// settings its tools choose for a two-colour image:
//   png   the same search at bit depth 1 (optipng's bit-depth reduction);
//   webp  unchanged: WebP lossless already packs a two-colour image 8 pixels
//         to a byte through its colour-indexing transform;
//   jxl   bits_per_sample = 1;
//   jbig  JBIG1 (ITU T.82, the bilevel standard) through jbigkit, one stripe,
//         the smallest of typical prediction on/off x two- or three-line
//         template x adaptive-template reach 0 or 8 (pbmtojbg's options).
// The images go to the codecs as black (0) and white (255).
//
// Bits/dim = 8 * total bytes / (N * C * H * W).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace tame {

/// The smallest PNG of uint8 [C, H, W] (C = 1 or 3) over the trials above;
/// bilevel: a gray image of values 0 and 255, written at bit depth 1.
std::string encode_png_best(const torch::Tensor& image, bool bilevel = false);

/// WebP lossless bytes of uint8 [C, H, W] (C = 1 or 3).
std::string encode_webp_lossless(const torch::Tensor& image);

/// Decodes WebP bytes to uint8 [channels, H, W]. WebP has no gray format, so
/// `channels` = 1 asks for a gray image stored as R = G = B; other colours
/// give an Error.
torch::Tensor decode_webp(const std::string& bytes, int64_t channels = 3);

/// JPEG-XL's effort: 9, as cjxl -e 9; and the effort used for an image on
/// which libjxl 0.7 aborts at effort 9 (small or nearly constant images; see
/// baselines.cpp), where cjxl -e 9 itself crashes.
constexpr int kJxlEffort = 9;
constexpr int kJxlFallbackEffort = 7;

/// JPEG-XL lossless bytes (a bare codestream) of uint8 [C, H, W] (C = 1 or 3);
/// `effort`, if given, receives the effort that produced them.
std::string encode_jxl_lossless(const torch::Tensor& image, int* effort = nullptr,
                                bool bilevel = false);

/// The smallest JBIG1 file (a whole BIE: header and data) of a bilevel gray
/// image uint8 [1, H, W] of values 0 and 255, over the trials above.
std::string encode_jbig_best(const torch::Tensor& image);
/// Decodes a JBIG1 BIE to uint8 [1, H, W] of 0 and 255; corrupt data gives an Error.
torch::Tensor decode_jbig(const std::string& bytes);

/// Decodes an 8-bit gray or RGB JPEG-XL image to uint8 [C, H, W]; alpha,
/// other bit depths and corrupt data give an Error.
torch::Tensor decode_jxl(const std::string& bytes);

/// One codec's totals over a set of images.
struct BaselineResult {
  std::string codec;  ///< "png", "webp", "jxl" or "jbig"
  int64_t bytes = 0;  ///< sum of the file sizes, one file per image
  double bits_per_dim = 0;
  bool round_trip_ok = false;   ///< every file decoded to exactly its image
  double seconds = 0;           ///< wall time to encode and decode the whole set
  int64_t fallback_images = 0;  ///< jxl: images encoded at kJxlFallbackEffort
};

/// The codec names measure_baselines reports for images of `levels` levels,
/// in its order (jbig for bilevel images only).
std::vector<std::string> baseline_codecs(int64_t levels = 256);

/// Encodes every image of uint8 [N, C, H, W] (C = 1 or 3) with each codec,
/// decodes every file back and compares it with its image. `threads` workers
/// share the images (0 = every hardware thread). levels = 2: the values are 0
/// and 1 and the codecs run in their bilevel forms (above).
std::vector<BaselineResult> measure_baselines(const torch::Tensor& images, int threads,
                                              int64_t levels = 256);

}  // namespace tame
