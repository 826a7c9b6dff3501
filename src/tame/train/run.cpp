#include "tame/train/run.h"

#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/checkpoint.h"

namespace tame {

nlohmann::json RunConfig::to_json() const {
  return {{"model", model},
          {"hparams", hparams},
          {"data", data},
          {"image_shape", {shape.channels, shape.height, shape.width}},
          {"levels", levels},
          {"train",
           {{"batch_size", batch_size},
            {"lr", lr},
            {"schedule", schedule},
            {"warmup", warmup},
            {"clip", clip},
            {"seed", seed},
            {"epochs", epochs},
            {"time_limit", time_limit},
            {"eval_limit", eval_limit},
            {"dynamic_binarization", dynamic_binarization},
            {"device", device}}}};
}

RunConfig RunConfig::from_json(const nlohmann::json& j, const std::string& where) {
  RunConfig c;
  try {
    c.model = j.at("model").get<std::string>();
    c.hparams = j.at("hparams");
    c.data = j.at("data").get<std::string>();
    auto s = j.at("image_shape");
    c.shape = {s.at(0).get<int64_t>(), s.at(1).get<int64_t>(), s.at(2).get<int64_t>()};
    c.levels = j.at("levels").get<int64_t>();
    const auto& t = j.at("train");
    c.batch_size = t.at("batch_size").get<int64_t>();
    c.lr = t.at("lr").get<double>();
    c.schedule = t.at("schedule").get<std::string>();
    c.warmup = t.at("warmup").get<int64_t>();
    c.clip = t.at("clip").get<double>();
    c.seed = t.at("seed").get<uint64_t>();
    c.epochs = t.at("epochs").get<int64_t>();
    c.time_limit = t.at("time_limit").get<double>();
    c.eval_limit = t.at("eval_limit").get<int64_t>();
    c.dynamic_binarization = t.value("dynamic_binarization", false);  // absent before it existed
    c.device = t.at("device").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid run config (" + std::string(e.what()) + ")");
  }
  if (c.schedule != "cosine" && c.schedule != "constant")
    throw Error(where + ": unknown schedule '" + c.schedule + "' (use cosine or constant)");
  if (c.levels < 2 || c.levels > 256 || c.shape.dims() <= 0) throw Error(where + ": invalid image shape or levels");
  return c;
}

std::string config_path(const std::string& run_dir) { return join_path(run_dir, "config.json"); }
std::string checkpoint_path(const std::string& run_dir) { return join_path(run_dir, "checkpoint.tame"); }
std::string metrics_path(const std::string& run_dir) { return join_path(run_dir, "metrics.jsonl"); }

RunConfig read_run_config(const std::string& run_dir) {
  if (!is_directory(run_dir)) throw Error(run_dir + ": no such run directory");
  std::string path = config_path(run_dir);
  if (!file_exists(path)) throw Error(run_dir + ": not a run directory (no config.json)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": corrupt JSON (" + std::string(e.what()) + ")");
  }
  return RunConfig::from_json(j, path);
}

void write_run_config(const std::string& run_dir, const RunConfig& cfg) {
  write_file_atomic(config_path(run_dir), cfg.to_json().dump(2) + "\n");
}

std::shared_ptr<ImageModel> build_model(const RunConfig& cfg) {
  return make_model(cfg.model, cfg.hparams, cfg.shape, cfg.levels);
}

std::shared_ptr<ImageModel> load_trained_model(const std::string& run_dir, RunConfig* cfg_out,
                                               const std::string& device) {
  RunConfig cfg = read_run_config(run_dir);
  std::string ckpt = checkpoint_path(run_dir);
  if (!file_exists(ckpt)) throw Error(run_dir + ": no checkpoint yet (train it first)");
  auto model = build_model(cfg);
  load_checkpoint(ckpt, cfg, *model, nullptr);
  model->to(parse_device(device.empty() ? cfg.device : device));
  model->eval();
  if (cfg_out) *cfg_out = cfg;
  return model;
}

}  // namespace tame
