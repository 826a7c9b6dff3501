#include "tame/data/idx.h"

#include <zlib.h>

#include "tame/common.h"
#include "tame/io/file.h"

namespace tame {
namespace {

// gzread reads gzip and plain files alike.
class GzFile {
 public:
  explicit GzFile(const std::string& path) : path_(path) {
    if (is_directory(path)) throw Error(path + ": is a directory, expected an IDX file");
    f_ = gzopen(path.c_str(), "rb");
    if (!f_) throw Error(path + ": cannot open");
  }
  ~GzFile() {
    if (f_) gzclose(f_);
  }
  // Reads up to n bytes; returns how many were read.
  size_t read(void* out, size_t n) {
    size_t done = 0;
    auto* p = static_cast<char*>(out);
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      int got = gzread(f_, p + done, chunk);
      if (got < 0) {
        int err = 0;
        const char* msg = gzerror(f_, &err);
        throw Error(path_ + ": corrupt gzip data (" + (msg ? msg : "?") + ")");
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  gzFile f_ = nullptr;
};

std::vector<int64_t> parse_header(GzFile& f, const std::string& path) {
  uint8_t head[4];
  if (f.read(head, 4) != 4) throw Error(path + ": truncated IDX header");
  if (head[0] != 0 || head[1] != 0)
    throw Error(path + ": bad IDX magic (first two bytes must be zero)");
  if (head[2] != 0x08)
    throw Error(path + ": unsupported IDX type 0x" + std::to_string(head[2]) +
                " (expected 0x08, unsigned byte)");
  int ndim = head[3];
  if (ndim < 1 || ndim > 4) throw Error(path + ": bad IDX rank " + std::to_string(ndim));
  std::vector<int64_t> dims(ndim);
  uint64_t total = 1;
  for (int i = 0; i < ndim; ++i) {
    uint8_t b[4];
    if (f.read(b, 4) != 4) throw Error(path + ": truncated IDX header");
    dims[i] = (int64_t(b[0]) << 24) | (int64_t(b[1]) << 16) | (int64_t(b[2]) << 8) | int64_t(b[3]);
    if (dims[i] == 0) throw Error(path + ": IDX dimension " + std::to_string(i) + " is zero");
    total *= static_cast<uint64_t>(dims[i]);
    if (total > (uint64_t(1) << 34)) throw Error(path + ": IDX sizes are implausibly large");
  }
  return dims;
}

}  // namespace

std::vector<int64_t> read_idx_header(const std::string& path) {
  GzFile f(path);
  return parse_header(f, path);
}

torch::Tensor read_idx(const std::string& path) {
  GzFile f(path);
  auto dims = parse_header(f, path);
  auto out = torch::empty(dims, torch::kUInt8);
  size_t want = static_cast<size_t>(out.numel());
  size_t got = f.read(out.data_ptr<uint8_t>(), want);
  if (got != want)
    throw Error(path + ": truncated IDX data (expected " + std::to_string(want) + " bytes, found " +
                std::to_string(got) + ")");
  char extra;
  if (f.read(&extra, 1) != 0) throw Error(path + ": IDX file has trailing bytes after the data");
  return out;
}

torch::Tensor read_idx_images(const std::string& path) {
  auto t = read_idx(path);
  if (t.dim() != 3)
    throw Error(path + ": expected IDX images of rank 3 [N, H, W], got rank " +
                std::to_string(t.dim()));
  return t.unsqueeze(1);
}

std::string encode_idx(const torch::Tensor& data) {
  auto t = data.to(torch::kCPU, torch::kUInt8).contiguous();
  std::string out;
  out.push_back(0);
  out.push_back(0);
  out.push_back(0x08);
  out.push_back(static_cast<char>(t.dim()));
  for (int64_t d : t.sizes()) {
    uint32_t v = static_cast<uint32_t>(d);
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<char>((v >> s) & 0xff));
  }
  out.append(reinterpret_cast<const char*>(t.data_ptr<uint8_t>()), t.numel());
  return out;
}

}  // namespace tame
