// Binary PGM (P5) and PPM (P6) images with maxval <= 255, and read_image(),
// which reads PNG or PNM by the file's first bytes.
#pragma once

#include <torch/torch.h>

#include <string>

namespace tame {

/// uint8 [C, H, W] (C = 1 for P5, 3 for P6) from a file's bytes; an Error
/// naming `name` otherwise.
torch::Tensor decode_pnm(const std::string& bytes, const std::string& name);
torch::Tensor read_pnm(const std::string& path);

/// A PNG or binary PGM/PPM file as uint8 [C, H, W].
torch::Tensor read_image(const std::string& path);

}  // namespace tame
