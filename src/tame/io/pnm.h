// Binary PGM (P5) and PPM (P6) images with maxval <= 255, and read_image(),
// which reads PNG or PNM by the file's first bytes.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace tame {

/// uint8 [C, H, W] (C = 1 for P5, 3 for P6) from a file's bytes; an Error
/// naming `name` otherwise.
torch::Tensor decode_pnm(const std::string& bytes, const std::string& name);
torch::Tensor read_pnm(const std::string& path);

/// A PNG or binary PGM/PPM file as uint8 [C, H, W].
torch::Tensor read_image(const std::string& path);

/// The extensions of the files read_image reads: .png, .pgm, .ppm, .pnm.
const std::vector<std::string>& image_extensions();

/// The regular files directly inside `dir` (not in its subfolders) whose
/// extension, in any case, is one of `extensions`, in name order; hidden files
/// (names starting with '.') are left out, as a shell's `*` does. An Error if
/// `dir` is not a directory; an empty list if it holds no such file.
std::vector<std::string> files_in_directory(const std::string& dir,
                                            const std::vector<std::string>& extensions);

}  // namespace tame
