#include "tame/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "tame/io/file.h"

namespace tame {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'M', 'E', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 2;

std::string shape_str(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string joined(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

template <class Bad>
void check_optimizer_names(const nlohmann::json& meta, const Optimizers& optimizers,
                           const Bad& bad) {
  std::vector<std::string> stored, wanted;
  for (const auto& n : meta.value("optimizers", nlohmann::json::array()))
    stored.push_back(n.get<std::string>());
  for (const auto& o : optimizers) wanted.push_back(o.name);
  if (stored != wanted)
    throw bad("checkpoint holds the states of optimizers [" + joined(stored) +
              "], the model has [" + joined(wanted) + "]");
}

}  // namespace

void save_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                     const Optimizers* optimizers, const TrainState& state) {
  torch::serialize::OutputArchive archive;
  for (const auto& p : model.named_parameters())
    archive.write("model." + p.key(), p.value().detach().to(torch::kCPU));
  for (const auto& b : model.named_buffers())
    archive.write("model." + b.key(), b.value().to(torch::kCPU), true);
  nlohmann::json names = nlohmann::json::array();
  if (optimizers) {
    for (const auto& o : *optimizers) {
      torch::serialize::OutputArchive opt;
      o.optimizer->save(opt);
      archive.write("optimizer." + o.name, opt);
      names.push_back(o.name);
    }
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
                         {"optimizers", names},
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

namespace {

// A checkpoint file read and checked as a container: version, metadata, payload.
struct Container {
  uint32_t version = 0;
  nlohmann::json meta;
  std::string payload;
};

Container read_container(const std::string& path) {
  std::string bytes = read_file(path);
  auto bad = [&](const std::string& why) { return Error(path + ": " + why); };
  if (bytes.size() < 8 + 4 + 4 + 8 + 4 || bytes.compare(0, 8, kMagic, 8) != 0)
    throw bad("not a tame checkpoint (bad magic)");
  Container c;
  c.version = get_u32(bytes, 8);
  if (c.version != 1 && c.version != kVersion)
    throw bad("checkpoint version " + std::to_string(c.version) +
              " is not supported (this tame reads 1 and " + std::to_string(kVersion) + ")");
  uint64_t meta_len = get_u32(bytes, 12);
  if (16 + meta_len + 8 + 4 > bytes.size()) throw bad("checkpoint is truncated");
  uint64_t payload_len = get_u64(bytes, 16 + meta_len);
  uint64_t payload_at = 16 + meta_len + 8;
  if (payload_at + payload_len + 4 != bytes.size())
    throw bad(
        "checkpoint is truncated or has extra bytes (length fields do not match the file size)");
  uint32_t stored = get_u32(bytes, bytes.size() - 4);
  if (crc32_of(bytes.substr(0, bytes.size() - 4)) != stored)
    throw bad("checkpoint is corrupt (checksum mismatch)");
  try {
    c.meta = nlohmann::json::parse(bytes.substr(16, meta_len));
  } catch (const nlohmann::json::exception& e) {
    throw bad("corrupt checkpoint metadata");
  }
  c.payload = bytes.substr(payload_at, payload_len);
  return c;
}

// The training state, after checking that the checkpoint is of the run's model.
template <class Bad>
TrainState read_state(const nlohmann::json& meta, const RunConfig& cfg, const Bad& bad) {
  TrainState st;
  try {
    std::string m = meta.at("model").get<std::string>();
    if (m != cfg.model)
      throw bad("checkpoint is for model '" + m + "', but the run is '" + cfg.model + "'");
    if (meta.at("hparams") != cfg.hparams)
      throw bad("checkpoint hyper-parameters " + meta.at("hparams").dump() +
                " differ from the run's " + cfg.hparams.dump());
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
  return st;
}

template <class Bad>
void load_weights(torch::serialize::InputArchive& archive, ImageModel& model, const Bad& bad) {
  torch::NoGradGuard no_grad;
  auto copy_into = [&](const std::string& name, torch::Tensor& dst, bool buffer) {
    torch::Tensor t;
    if (!archive.try_read("model." + name, t, buffer))
      throw bad("checkpoint has no tensor '" + name + "'");
    if (t.sizes() != dst.sizes())
      throw bad("tensor '" + name + "' has shape " + shape_str(t) + ", the model expects " +
                shape_str(dst));
    dst.copy_(t);
  };
  for (auto& p : model.named_parameters()) copy_into(p.key(), p.value(), false);
  for (auto& b : model.named_buffers()) copy_into(b.key(), b.value(), true);
}

template <class Bad>
void load_optimizers(torch::serialize::InputArchive& archive, const Container& c,
                     Optimizers& optimizers, const Bad& bad) {
  if (c.version == 1 && optimizers.size() != 1)
    throw bad("a version-1 checkpoint holds one optimizer; this model has " +
              std::to_string(optimizers.size()));
  if (c.version > 1) check_optimizer_names(c.meta, optimizers, bad);
  for (auto& o : optimizers) {
    const std::string key = c.version == 1 ? "optimizer" : "optimizer." + o.name;
    torch::serialize::InputArchive opt;
    if (!archive.try_read(key, opt))
      throw bad("checkpoint has no state for optimizer '" + o.name + "'");
    try {
      o.optimizer->load(opt);
    } catch (const std::exception& e) {
      throw bad("state of optimizer '" + o.name + "' does not match (" + first_line(e) + ")");
    }
  }
  torch::Tensor rng;
  if (archive.try_read("rng", rng)) {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(rng);
  }
}

}  // namespace

TrainState load_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                           Optimizers* optimizers) {
  auto bad = [&](const std::string& why) { return Error(path + ": " + why); };
  const Container c = read_container(path);
  TrainState st = read_state(c.meta, cfg, bad);
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(c.payload);
    archive.load_from(in, model.device());
  } catch (const std::exception& e) {
    throw bad("corrupt checkpoint payload (" + first_line(e) + ")");
  }
  load_weights(archive, model, bad);
  if (optimizers) load_optimizers(archive, c, *optimizers, bad);
  return st;
}

}  // namespace tame
