// IDX files (the MNIST family's format), plain or gzip-compressed.
//
// Layout: 2 zero bytes, a type byte (0x08 = unsigned byte, the only type image
// data uses), a dimension count n, then n big-endian uint32 sizes, then the
// values in row-major order. The reader checks every field and the exact data
// length and names the file in each error.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace tame {

/// Reads an unsigned-byte IDX file of any rank as a uint8 tensor.
torch::Tensor read_idx(const std::string& path);

/// Reads only the header: the sizes of each dimension.
std::vector<int64_t> read_idx_header(const std::string& path);

/// Reads a rank-3 IDX image file [N, H, W] as uint8 [N, 1, H, W].
torch::Tensor read_idx_images(const std::string& path);

/// Serializes uint8 data of any rank as an (uncompressed) IDX file's bytes.
std::string encode_idx(const torch::Tensor& data);

}  // namespace tame
