// Helpers shared by the tests: temporary directories and tiny synthetic datasets.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>

#include "tame/data/idx.h"
#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/test_paths.h"

namespace tame::testing {

/// The message of the tame::Error that f throws; a test failure if it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

/// A fresh directory under the system temp dir, removed when the object dies.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "tame-test-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    if (!p) throw std::runtime_error("mkdtemp failed");
    path_ = p;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return join_path(path_, name); }

 private:
  std::string path_;
};

/// Smooth-ish 8-bit images [n, 1, h, w] (gradients plus noise), deterministic.
inline torch::Tensor synthetic_images(int64_t n, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  auto yy = torch::arange(h).view({1, 1, h, 1}).to(torch::kFloat) / h;
  auto xx = torch::arange(w).view({1, 1, 1, w}).to(torch::kFloat) / w;
  auto a = torch::rand({n, 1, 1, 1}), b = torch::rand({n, 1, 1, 1});
  auto img = 255.0 * (a * yy + b * xx) / 2.0 + 20.0 * torch::rand({n, 1, h, w});
  return img.clamp(0, 255).to(torch::kUInt8);
}

/// Labels of synthetic_images: 1 where the vertical gradient is the stronger
/// (bottom row brighter than the top by more than the right column than the
/// left), else 0; uint8 [n].
inline torch::Tensor synthetic_labels(const torch::Tensor& images) {
  auto x = images.to(torch::kFloat);
  auto vertical = x.select(2, -1).mean(-1) - x.select(2, 0).mean(-1);
  auto horizontal = x.select(3, -1).mean(-1) - x.select(3, 0).mean(-1);
  return (vertical > horizontal).squeeze(1).to(torch::kUInt8);
}

/// Writes an IDX dataset directory usable as `idx:DIR`.
inline void write_idx_dataset(const std::string& dir, int64_t n_train, int64_t n_test, int64_t h,
                              int64_t w) {
  make_directories(dir);
  auto train = synthetic_images(n_train, h, w, 1), test = synthetic_images(n_test, h, w, 2);
  write_file_atomic(join_path(dir, "train-images-idx3-ubyte"), encode_idx(train.squeeze(1)));
  write_file_atomic(join_path(dir, "t10k-images-idx3-ubyte"), encode_idx(test.squeeze(1)));
  write_file_atomic(join_path(dir, "train-labels-idx1-ubyte"), encode_idx(synthetic_labels(train)));
  write_file_atomic(join_path(dir, "t10k-labels-idx1-ubyte"), encode_idx(synthetic_labels(test)));
}

/// What the tame binary did: exit code, stdout and stderr.
struct CliResult {
  int code;
  std::string out, err;
};

/// Runs a shell command (stdin closed), capturing its output in tmp.
inline CliResult run_shell(const std::string& command, const TempDir& tmp) {
  std::string out_file = tmp / "stdout.txt", err_file = tmp / "stderr.txt";
  std::string cmd = command + " >" + out_file + " 2>" + err_file + " </dev/null";
  int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), read_file(out_file),
          read_file(err_file)};
}

/// Runs the built tame binary with `args`, as run_shell does.
inline CliResult run_tame(const std::string& args, const TempDir& tmp) {
  return run_shell(std::string(TAME_BINARY) + " " + args, tmp);
}

}  // namespace tame::testing
