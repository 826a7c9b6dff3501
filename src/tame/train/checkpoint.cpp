#include "tame/train/checkpoint.h"

#include <ATen/CPUGeneratorImpl.h>

#include <sstream>

#include "tame/io/container.h"
#include "tame/io/file.h"
#include "tame/registry.h"

namespace tame {
namespace {

constexpr char kMagic[8] = {'T', 'A', 'M', 'E', 'C', 'K', 'P', 'T'};
constexpr uint32_t kVersion = 2;

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
                     const Optimizers* optimizers, const TrainState& state,
                     WeightAverage* average) {
  torch::serialize::OutputArchive archive;
  write_weights(archive, model);
  if (average)
    for (size_t k = 0; k < average->names().size(); ++k)
      archive.write("average." + average->names()[k], average->averages()[k].to(torch::kCPU));
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
                         {"average", average != nullptr},
                         {"state",
                          {{"step", state.step},
                           {"epoch", state.epoch},
                           {"batch_in_epoch", state.batch_in_epoch},
                           {"elapsed", state.elapsed}}}};
  write_container(path, kMagic, kVersion, meta, payload);
}

namespace {

// The training state, after checking that the checkpoint is of the run's model.
template <class Bad>
TrainState read_state(const nlohmann::json& meta, const RunConfig& cfg, const Bad& bad) {
  TrainState st;
  try {
    std::string m = meta.at("model").get<std::string>();
    if (m != cfg.model)
      throw bad("checkpoint is for model '" + m + "', but the run is '" + cfg.model + "'");
    if (stored_hparams(m, meta.at("hparams")) != cfg.hparams)
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
                           Optimizers* optimizers, WeightAverage* average) {
  auto bad = [&](const std::string& why) { return Error(path + ": " + why); };
  const Container c = read_container(path, kMagic, "checkpoint", 1, kVersion);
  TrainState st = read_state(c.meta, cfg, bad);
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(c.payload);
    archive.load_from(in, model.device());
  } catch (const std::exception& e) {
    throw bad("corrupt checkpoint payload (" + first_line(e) + ")");
  }
  read_weights(archive, model, path);
  if (optimizers) load_optimizers(archive, c, *optimizers, bad);
  if (average) {
    if (!c.meta.value("average", false)) {
      average->reset();
      return st;
    }
    torch::NoGradGuard no_grad;
    for (size_t k = 0; k < average->names().size(); ++k) {
      const std::string& name = average->names()[k];
      torch::Tensor t;
      if (!archive.try_read("average." + name, t))
        throw bad("checkpoint has no average of '" + name + "'");
      if (t.sizes() != average->averages()[k].sizes())
        throw bad("the average of '" + name + "' has another shape than the model's");
      average->averages()[k].copy_(t);
    }
  }
  return st;
}

}  // namespace tame
