// Helpers of the training tests: run directories and quiet one-thread options.
#pragma once

#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "../test_util.h"
#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/checkpoint.h"
#include "tame/train/run.h"
#include "tame/train/trainer.h"

namespace tame::testing {

/// A small run over the 6x6 IDX set in data_dir (write_idx_dataset): batches
/// of 8, two epochs of the cosine schedule with 3 warm-up steps.
inline RunConfig run_config(const std::string& data_dir, const std::string& model,
                            const nlohmann::json& hparams, uint64_t seed) {
  RunConfig cfg;
  cfg.model = model;
  cfg.hparams = resolve_hparams(model, hparams);
  cfg.data = "idx:" + data_dir;
  cfg.shape = {1, 6, 6};
  cfg.levels = 256;
  cfg.batch_size = 8;
  cfg.lr = 3e-3;
  cfg.warmup = 3;
  cfg.epochs = 2;
  cfg.seed = seed;
  return cfg;
}

/// tmp/name holding cfg's config.json, ready for train().
inline std::string new_run(const TempDir& tmp, const std::string& name, const RunConfig& cfg) {
  std::string dir = tmp / name;
  make_directories(dir);
  write_run_config(dir, cfg);
  return dir;
}

/// The lines of a run's metrics.jsonl.
inline std::vector<nlohmann::json> read_metrics(const std::string& dir) {
  std::vector<nlohmann::json> out;
  std::ifstream in(metrics_path(dir));
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
  return out;
}

/// Options for train() on one thread, without progress, logging every 2 steps.
inline TrainOptions quiet(const std::string& dir) {
  TrainOptions o;
  o.run_dir = dir;
  o.threads = 1;
  o.quiet = true;
  o.log_every = 2;
  return o;
}

/// Trains cfg twice: straight through, and stopped after stop_after steps then
/// resumed. Returns the two run directories (straight, resumed).
inline std::pair<std::string, std::string> straight_and_resumed(const TempDir& tmp,
                                                                const std::string& prefix,
                                                                const RunConfig& cfg,
                                                                int64_t stop_after) {
  std::string straight = new_run(tmp, prefix + "straight", cfg);
  if (train(quiet(straight), false) != TrainStatus::kDone)
    throw Error("straight run did not finish");
  std::string resumed = new_run(tmp, prefix + "resumed", cfg);
  auto stop = quiet(resumed);
  stop.max_steps = stop_after;
  if (train(stop, false) != TrainStatus::kStepLimit)
    throw Error("run did not stop at its step limit");
  if (train(quiet(resumed), true) != TrainStatus::kDone) throw Error("resumed run did not finish");
  return {straight, resumed};
}

/// The checkpoints of two runs of cfg hold the same step, parameters and
/// buffers (a straight run and a resumed one).
inline void expect_equal_models(const RunConfig& cfg, const std::string& a_dir,
                                const std::string& b_dir) {
  auto a = build_model(cfg), b = build_model(cfg);
  auto oa = a->make_optimizers(cfg.lr), ob = b->make_optimizers(cfg.lr);
  auto sa = load_checkpoint(checkpoint_path(a_dir), cfg, *a, &oa);
  auto sb = load_checkpoint(checkpoint_path(b_dir), cfg, *b, &ob);
  EXPECT_EQ(sa.step, sb.step);
  for (const auto& p : a->named_parameters())
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()])) << p.key();
  for (const auto& p : a->named_buffers())
    EXPECT_TRUE(torch::equal(p.value(), b->named_buffers()[p.key()])) << p.key();
}

/// The message of the Error that fn throws, or "" when it throws none.
template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace tame::testing
