// PNG reading and writing through libpng: 8-bit grayscale and RGB images as
// uint8 tensors [C, H, W].
#pragma once

#include <torch/torch.h>

#include <string>

namespace tame {

/// Reads an 8-bit grayscale or RGB PNG (palette images are expanded) as uint8
/// [C, H, W]. Alpha channels, 16-bit depth and corrupt files give an Error
/// naming the file.
torch::Tensor read_png(const std::string& path);

/// Encodes uint8 [C, H, W] (C = 1 or 3) as PNG bytes; `level` is zlib's 0..9.
std::string encode_png(const torch::Tensor& image, int level = 9);

/// Writes uint8 [C, H, W] to `path` atomically.
void write_png(const std::string& path, const torch::Tensor& image);

/// Tiles uint8 images [N, C, H, W] with values in [0, levels) into one grid
/// image [C, H', W'] scaled to 0..255, `pad` pixels between tiles.
torch::Tensor image_grid(const torch::Tensor& images, int64_t levels, int64_t pad = 2,
                         int64_t columns = 0);

}  // namespace tame
