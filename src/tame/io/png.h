// PNG reading and writing through libpng: 8-bit grayscale and RGB images as
// uint8 tensors [C, H, W].
#pragma once

#include <torch/torch.h>

#include <string>

namespace tame {

/// Reads a PNG as uint8 [C, H, W], gray (C = 1) or RGB (C = 3). Other forms
/// convert when that loses nothing: a palette expands to RGB, 1/2/4-bit gray
/// to 8 bits, an alpha channel (or tRNS) that is opaque everywhere is
/// dropped, 16-bit samples that are 8-bit values times 257 narrow to 8 bits.
/// Transparent pixels, other 16-bit samples, images above kMaxImageSide or
/// kMaxImagePixels (common.h) and corrupt files give an Error naming the file.
torch::Tensor read_png(const std::string& path);

/// Decodes PNG bytes held in memory, as read_png does; `name` goes into error
/// messages.
torch::Tensor decode_png(const std::string& bytes, const std::string& name = "PNG data");

/// How encode_png compresses. The numbers are those of zlib and of optipng's
/// -zc, -zm, -zs and -f options; -1 leaves the choice to libpng.
struct PngOptions {
  int level = 9;      ///< zlib compression level, 0..9
  int mem_level = 8;  ///< zlib memLevel, 1..9
  int strategy = -1;  ///< zlib strategy: 0 default, 1 filtered, 2 Huffman only, 3 RLE
  int filter = -1;    ///< row filter: 0 none, 1 sub, 2 up, 3 average, 4 Paeth, 5 adaptive
  int bit_depth = 8;  ///< 8, or 1 for a bilevel gray image of values 0 and 1 (1 = white)
};

/// Encodes uint8 [C, H, W] (C = 1 or 3) as PNG bytes with no ancillary chunks
/// and the image data in one IDAT chunk.
std::string encode_png(const torch::Tensor& image, const PngOptions& options);

/// encode_png with libpng's defaults at zlib level `level` (0..9).
std::string encode_png(const torch::Tensor& image, int level = 9);

/// Writes uint8 [C, H, W] to `path` atomically.
void write_png(const std::string& path, const torch::Tensor& image);

/// Tiles uint8 images [N, C, H, W] with values in [0, levels) into one grid
/// image [C, H', W'] scaled to 0..255, `pad` pixels between tiles.
torch::Tensor image_grid(const torch::Tensor& images, int64_t levels, int64_t pad = 2,
                         int64_t columns = 0);

}  // namespace tame
