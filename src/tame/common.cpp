#include "tame/common.h"

#include <dlfcn.h>

#include <thread>

namespace tame {

std::string ImageShape::str() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

torch::ScalarType image_dtype(int64_t levels) {
  return levels <= 256 ? torch::kUInt8 : torch::kInt;
}

void check_images(const torch::Tensor& x, const ImageShape& shape, int64_t levels, bool any_size) {
  if (!x.defined() || x.dim() != 4) throw Error("expected a batch of images [B, C, H, W]");
  if (x.scalar_type() != image_dtype(levels))
    throw Error(std::string("expected ") + (levels <= 256 ? "uint8" : "int32") + " images for " +
                std::to_string(levels) + " levels");
  ImageShape got{x.size(1), x.size(2), x.size(3)};
  if (any_size ? got.channels != shape.channels : got != shape)
    throw Error("expected " +
                (any_size ? std::to_string(shape.channels) + "-channel" : shape.str()) +
                " images, got " + got.str());
  if (x.numel() > 0) {
    if (x.min().item<int64_t>() < 0) throw Error("negative pixel value");
    int64_t mx = x.max().item<int64_t>();
    if (mx >= levels)
      throw Error("pixel value " + std::to_string(mx) + " out of range for " +
                  std::to_string(levels) + " levels");
  }
}

torch::Device parse_device(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + name +
                  ": this LibTorch build has no CUDA support or no GPU is visible");
    return torch::Device(name);
  }
  throw Error("unknown device '" + name + "' (use cpu or cuda)");
}

std::string first_line(const std::exception& e) {
  std::string s;
  if (auto* ce = dynamic_cast<const c10::Error*>(&e))
    s = ce->what_without_backtrace();
  else
    s = e.what();
  auto nl = s.find('\n');
  if (nl != std::string::npos) s = s.substr(0, nl);
  return s;
}

std::string allocator_name() {
  if (dlsym(RTLD_DEFAULT, "tc_malloc")) return "tcmalloc";
  if (dlsym(RTLD_DEFAULT, "mallctl")) return "jemalloc";
  return "libc";
}

int set_threads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  at::set_num_threads(threads);
  // OpenBLAS (Debian's BLAS behind LibTorch) sizes its own pool, which
  // at::set_num_threads leaves at one thread per core. On a busy machine its
  // spinning helper waits for a core: a small MLP VAE trained 70x slower for
  // stretches. Looked up at run time, so any BLAS links.
  using SetBlasThreads = void (*)(int);
  if (auto f = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    f(threads);
  return threads;
}

}  // namespace tame
