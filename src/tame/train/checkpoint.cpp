#include "tame/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "tame/io/file.h"

namespace tame {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'M', 'E', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 1;

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

}  // namespace

void save_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                     torch::optim::Optimizer* optimizer, const TrainState& state) {
  torch::serialize::OutputArchive archive;
  for (const auto& p : model.named_parameters()) archive.write("model." + p.key(), p.value().detach().to(torch::kCPU));
  for (const auto& b : model.named_buffers()) archive.write("model." + b.key(), b.value().to(torch::kCPU), true);
  if (optimizer) {
    torch::serialize::OutputArchive opt;
    optimizer->save(opt);
    archive.write("optimizer", opt);
  }
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    archive.write("rng", gen.get_state());
  }
  std::ostringstream payload_stream;
  archive.save_to(payload_stream);
  std::string payload = payload_stream.str();

  nlohmann::json meta = {{"model", cfg.model},
                         {"hparams", cfg.hparams},
                         {"image_shape", {cfg.shape.channels, cfg.shape.height, cfg.shape.width}},
                         {"levels", cfg.levels},
                         {"state",
                          {{"step", state.step},
                           {"epoch", state.epoch},
                           {"batch_in_epoch", state.batch_in_epoch},
                           {"elapsed", state.elapsed}}}};
  std::string meta_s = meta.dump();
  std::string out(kMagic, 8);
  put_u32(out, kVersion);
  put_u32(out, static_cast<uint32_t>(meta_s.size()));
  out += meta_s;
  put_u64(out, payload.size());
  out += payload;
  put_u32(out, crc32_of(out));
  write_file_atomic(path, out);
}

TrainState load_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                           torch::optim::Optimizer* optimizer) {
  std::string bytes = read_file(path);
  auto bad = [&](const std::string& why) { return Error(path + ": " + why); };
  if (bytes.size() < 8 + 4 + 4 + 8 + 4 || bytes.compare(0, 8, kMagic, 8) != 0)
    throw bad("not a tame checkpoint (bad magic)");
  uint32_t version = get_u32(bytes, 8);
  if (version != kVersion)
    throw bad("checkpoint version " + std::to_string(version) + " is not supported (expected " +
              std::to_string(kVersion) + ")");
  uint64_t meta_len = get_u32(bytes, 12);
  if (16 + meta_len + 8 + 4 > bytes.size()) throw bad("checkpoint is truncated");
  uint64_t payload_len = get_u64(bytes, 16 + meta_len);
  uint64_t payload_at = 16 + meta_len + 8;
  if (payload_at + payload_len + 4 != bytes.size())
    throw bad("checkpoint is truncated or has extra bytes (length fields do not match the file size)");
  uint32_t stored = get_u32(bytes, bytes.size() - 4);
  if (crc32_of(bytes.substr(0, bytes.size() - 4)) != stored) throw bad("checkpoint is corrupt (checksum mismatch)");

  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(bytes.substr(16, meta_len));
  } catch (const nlohmann::json::exception& e) {
    throw bad("corrupt checkpoint metadata");
  }
  TrainState st;
  try {
    std::string m = meta.at("model").get<std::string>();
    if (m != cfg.model) throw bad("checkpoint is for model '" + m + "', but the run is '" + cfg.model + "'");
    if (meta.at("hparams") != cfg.hparams)
      throw bad("checkpoint hyper-parameters " + meta.at("hparams").dump() + " differ from the run's " +
                cfg.hparams.dump());
    auto s = meta.at("image_shape");
    ImageShape shape{s.at(0).get<int64_t>(), s.at(1).get<int64_t>(), s.at(2).get<int64_t>()};
    if (shape != cfg.shape || meta.at("levels").get<int64_t>() != cfg.levels)
      throw bad("checkpoint is for " + shape.str() + " images, the run for " + cfg.shape.str());
    const auto& js = meta.at("state");
    st.step = js.at("step").get<int64_t>();
    st.epoch = js.at("epoch").get<int64_t>();
    st.batch_in_epoch = js.at("batch_in_epoch").get<int64_t>();
    st.elapsed = js.at("elapsed").get<double>();
  } catch (const nlohmann::json::exception& e) {
    throw bad("checkpoint metadata is incomplete (" + std::string(e.what()) + ")");
  }

  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(bytes.substr(payload_at, payload_len));
    archive.load_from(in, model.device());
  } catch (const std::exception& e) {
    throw bad("corrupt checkpoint payload (" + first_line(e) + ")");
  }
  torch::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& name, torch::Tensor& dst, bool buffer) {
    torch::Tensor t;
    if (!archive.try_read("model." + name, t, buffer)) throw bad("checkpoint has no tensor '" + name + "'");
    if (t.sizes() != dst.sizes())
      throw bad("tensor '" + name + "' has shape " + shape_str(t) + ", the model expects " + shape_str(dst));
    dst.copy_(t);
  };
  for (auto& p : model.named_parameters()) copy_into(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) copy_into(b.key(), b.value(), true);
  if (optimizer) {
    torch::serialize::InputArchive opt;
    if (!archive.try_read("optimizer", opt)) throw bad("checkpoint has no optimizer state");
    try {
      optimizer->load(opt);
    } catch (const std::exception& e) {
      throw bad("optimizer state does not match (" + first_line(e) + ")");
    }
    torch::Tensor rng;
    if (archive.try_read("rng", rng)) {
      auto gen = at::detail::getDefaultCPUGenerator();
      std::lock_guard<std::mutex> lock(gen.mutex());
      gen.set_state(rng);
    }
  }
  return st;
}

}  // namespace tame
