// Small shared vocabulary: the user-facing error type, image shapes and
// device selection. Everything here is used by more than one module.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "tame/error.h"

namespace tame {

/// Shape of one image, channels first.
struct ImageShape {
  int64_t channels = 1;
  int64_t height = 28;
  int64_t width = 28;
  /// C*H*W: the "dim" of bits per dimension.
  int64_t dims() const { return channels * height * width; }
  std::string str() const;  // "1x28x28"
  bool operator==(const ImageShape& o) const {
    return channels == o.channels && height == o.height && width == o.width;
  }
  bool operator!=(const ImageShape& o) const { return !(*this == o); }
};

/// The largest number of levels an image or code map may have (values fit in 16 bits).
constexpr int64_t kMaxLevels = int64_t{1} << 16;

/// The largest images the PNG and PNM readers take: a side, and pixels in all
/// (2^28: 16384 x 16384), so that a header cannot make a reader allocate more.
constexpr int64_t kMaxImageSide = 65535;
constexpr int64_t kMaxImagePixels = int64_t{1} << 28;

/// The integer type that holds `levels` levels: uint8 up to 256, int32 above.
torch::ScalarType image_dtype(int64_t levels);

/// Checks that `x` is an integer batch [B, C, H, W] of image_dtype(levels) with
/// values in [0, levels), of `shape` (only its channels when any_size is set).
void check_images(const torch::Tensor& x, const ImageShape& shape, int64_t levels,
                  bool any_size = false);

/// "cpu" or "cuda[:N]"; a clear error when CUDA is asked of a CPU-only LibTorch.
torch::Device parse_device(const std::string& name);

/// One line of a c10::Error or std::exception, without LibTorch's backtrace.
std::string first_line(const std::exception& e);

/// Sets the number of intra-op threads, LibTorch's and OpenBLAS's; 0 means
/// every hardware thread.
int set_threads(int threads);

/// The malloc this process allocates through, as found at run time:
/// "tcmalloc" (what tame's executables link), "jemalloc", or "libc".
std::string allocator_name();

}  // namespace tame
