#include "tame/io/container.h"

#include <sstream>

#include "tame/error.h"
#include "tame/io/file.h"

namespace tame {

void write_container(const std::string& path, const char (&magic)[8], uint32_t version,
                     const nlohmann::json& meta, const std::string& payload) {
  const std::string meta_s = meta.dump();
  std::string out(magic, 8);
  put_u32(out, version);
  put_u32(out, static_cast<uint32_t>(meta_s.size()));
  out += meta_s;
  put_u64(out, payload.size());
  out += payload;
  put_u32(out, crc32_of(out));
  write_file_atomic(path, out);
}

Container read_container(const std::string& path, const char (&magic)[8], const std::string& what,
                         uint32_t min_version, uint32_t max_version) {
  std::string bytes = read_file(path);
  auto bad = [&](const std::string& why) { return Error(path + ": " + why); };
  if (bytes.size() < 8 + 4 + 4 + 8 + 4 || bytes.compare(0, 8, magic, 8) != 0)
    throw bad("not a tame " + what + " (bad magic)");
  Container c;
  c.version = get_u32(bytes, 8);
  if (c.version < min_version || c.version > max_version)
    throw bad(what + " version " + std::to_string(c.version) +
              " is not supported (this tame reads " + std::to_string(min_version) +
              (min_version == max_version ? "" : " to " + std::to_string(max_version)) + ")");
  uint64_t meta_len = get_u32(bytes, 12);
  if (16 + meta_len + 8 + 4 > bytes.size()) throw bad(what + " is truncated");
  uint64_t payload_len = get_u64(bytes, 16 + meta_len);
  uint64_t payload_at = 16 + meta_len + 8;
  if (payload_len > bytes.size() || payload_at + payload_len + 4 != bytes.size())
    throw bad(what + " is truncated or has extra bytes (length fields do not match the file size)");
  uint32_t stored = get_u32(bytes, bytes.size() - 4);
  if (crc32_of(bytes.data(), bytes.size() - 4) != stored)
    throw bad(what + " is corrupt (checksum mismatch)");
  try {
    c.meta = nlohmann::json::parse(bytes.substr(16, meta_len));
  } catch (const nlohmann::json::exception& e) {
    throw bad("corrupt " + what + " metadata");
  }
  c.payload = bytes.substr(payload_at, payload_len);
  return c;
}

namespace {
std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}
}  // namespace

void write_weights(torch::serialize::OutputArchive& archive, const torch::nn::Module& module) {
  for (const auto& p : module.named_parameters())
    archive.write("model." + p.key(), p.value().detach().to(torch::kCPU));
  for (const auto& b : module.named_buffers())
    archive.write("model." + b.key(), b.value().to(torch::kCPU), true);
}

void read_weights(torch::serialize::InputArchive& archive, torch::nn::Module& module,
                  const std::string& path) {
  torch::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& name, torch::Tensor& dst, bool buffer) {
    torch::Tensor t;
    if (!archive.try_read("model." + name, t, buffer))
      throw Error(path + ": checkpoint has no tensor '" + name + "'");
    if (t.sizes() != dst.sizes())
      throw Error(path + ": tensor '" + name + "' has shape " + shape_str(t) +
                  ", the model expects " + shape_str(dst));
    dst.copy_(t);
  };
  for (auto& p : module.named_parameters()) copy_into(p.key(), p.value(), false);
  for (auto& b : module.named_buffers()) copy_into(b.key(), b.value(), true);
}

}  // namespace tame
