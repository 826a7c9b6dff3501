// Checkpoints and the training loop: round trips, refusals, exact resume.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cmath>

#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/checkpoint.h"
#include "tame/train/trainer.h"
#include "train_util.h"

using namespace tame;
using tame::testing::TempDir, tame::testing::error_of, tame::testing::new_run, tame::testing::quiet;

namespace {

RunConfig tiny_config(const std::string& data_dir, const std::string& model = "pixelcnn") {
  return tame::testing::run_config(
      data_dir, model,
      model == "pixelcnn" ? nlohmann::json{{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}}
                          : nlohmann::json{{"hidden", 4}, {"layers", 1}, {"out_hidden", 8}},
      11);
}

// A one-epoch pixelcnn run over n_train 6x6 images in tmp/data, not yet trained.
std::pair<RunConfig, std::string> one_epoch_run(const TempDir& tmp, int64_t n_train) {
  tame::testing::write_idx_dataset(tmp / "data", n_train, 8, 6, 6);
  auto cfg = tiny_config(tmp / "data");
  cfg.epochs = 1;
  return {cfg, new_run(tmp, "run", cfg)};
}

}  // namespace

TEST(Checkpoint, SaveThenLoadGivesTheSameNll) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 40, 8, 6, 6);
  auto cfg = tiny_config(tmp / "data");
  torch::manual_seed(1);
  auto a = build_model(cfg);
  torch::manual_seed(2);
  auto b = build_model(cfg);
  auto x = load_dataset(cfg.data, "test").images;
  EXPECT_FALSE(torch::equal(a->nll(x), b->nll(x)));
  TrainState st;
  st.step = 5;
  st.epoch = 1;
  save_checkpoint(tmp / "c.tame", cfg, *a, nullptr, st);
  auto back = load_checkpoint(tmp / "c.tame", cfg, *b, nullptr);
  EXPECT_EQ(back.step, 5);
  EXPECT_EQ(back.epoch, 1);
  EXPECT_TRUE(torch::equal(a->nll(x), b->nll(x)));
}

TEST(Checkpoint, CorruptTruncatedAndForeignFilesAreRefused) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 40, 8, 6, 6);
  auto cfg = tiny_config(tmp / "data");
  auto m = build_model(cfg);
  save_checkpoint(tmp / "c.tame", cfg, *m, nullptr, {});
  std::string bytes = read_file(tmp / "c.tame");

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x5a;
  write_file_atomic(tmp / "flip.tame", flipped);
  EXPECT_NE(
      error_of([&] { load_checkpoint(tmp / "flip.tame", cfg, *m, nullptr); }).find("checksum"),
      std::string::npos);

  write_file_atomic(tmp / "short.tame", bytes.substr(0, bytes.size() - 100));
  EXPECT_NE(
      error_of([&] { load_checkpoint(tmp / "short.tame", cfg, *m, nullptr); }).find("truncated"),
      std::string::npos);

  write_file_atomic(tmp / "junk.tame", "not a checkpoint at all, just text");
  EXPECT_NE(error_of([&] { load_checkpoint(tmp / "junk.tame", cfg, *m, nullptr); }).find("magic"),
            std::string::npos);

  auto other = tiny_config(tmp / "data", "gated-pixelcnn");
  auto g = build_model(other);
  std::string msg = error_of([&] { load_checkpoint(tmp / "c.tame", other, *g, nullptr); });
  EXPECT_NE(msg.find("pixelcnn"), std::string::npos) << msg;
  EXPECT_NE(msg.find(tmp / "c.tame"), std::string::npos) << msg;

  auto wider = cfg;
  wider.hparams["hidden"] = 8;
  auto w = build_model(wider);
  EXPECT_NE(error_of([&] { load_checkpoint(tmp / "c.tame", wider, *w, nullptr); }), "");
}

TEST(Schedule, WarmupCosineAndTimeLimit) {
  RunConfig cfg;
  cfg.lr = 1e-3;
  cfg.warmup = 10;
  EXPECT_NEAR(learning_rate(cfg, 0, 100, 0), 1e-4 * 0.5 * (1 + std::cos(0.0)), 1e-12);
  EXPECT_NEAR(learning_rate(cfg, 50, 100, 0), 1e-3 * 0.5, 1e-12);
  EXPECT_NEAR(learning_rate(cfg, 100, 100, 0), 0.0, 1e-12);
  cfg.time_limit = 60;
  EXPECT_NEAR(learning_rate(cfg, 20, 100, 30), 1e-3 * 0.5, 1e-12);  // time is the larger fraction
  EXPECT_NEAR(learning_rate(cfg, 20, 100, 90), 0.0, 1e-12);
}

void expect_same_parameters(const RunConfig& cfg, const std::string& a_dir,
                            const std::string& b_dir) {
  auto a = build_model(cfg), b = build_model(cfg);
  auto sa = load_checkpoint(checkpoint_path(a_dir), cfg, *a, nullptr);
  auto sb = load_checkpoint(checkpoint_path(b_dir), cfg, *b, nullptr);
  EXPECT_EQ(sa.step, 10);
  EXPECT_EQ(sb.step, 10);
  auto pa = a->named_parameters(), pb = b->named_parameters();
  ASSERT_EQ(pa.size(), pb.size());
  for (const auto& p : pa)
    EXPECT_TRUE(torch::equal(p.value(), pb[p.key()])) << cfg.model << " " << p.key();
  // Training did something: the NLL fell from its initial value.
  auto x = load_dataset(cfg.data, "test").images;
  torch::manual_seed(cfg.seed);
  auto fresh = build_model(cfg);
  EXPECT_LT(a->nll(x).mean().item<double>(), fresh->nll(x).mean().item<double>());
}

// Two epochs straight equal one epoch, then --resume --epochs 2 for the second,
// parameter for parameter (fixed seed, one thread). The constant schedule does
// not depend on the planned number of epochs, so the plan may grow.
TEST(Training, OneEpochPlusResumedEpochEqualsTwoEpochs) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 44, 8, 6,
                                   6);  // 44 images, batch 8: a partial batch is dropped
  for (const std::string model : {"pixelcnn", "gated-pixelcnn"}) {
    auto cfg = tiny_config(tmp / "data", model);
    cfg.schedule = "constant";
    std::string straight = new_run(tmp, model + "-straight", cfg);
    EXPECT_EQ(train(quiet(straight), false), TrainStatus::kDone);

    auto half = cfg;
    half.epochs = 1;
    std::string resumed = new_run(tmp, model + "-resumed", half);
    EXPECT_EQ(train(quiet(resumed), false), TrainStatus::kDone);
    write_run_config(resumed, cfg);  // what `tame train --resume --epochs 2` does
    EXPECT_EQ(train(quiet(resumed), true), TrainStatus::kDone);
    expect_same_parameters(cfg, straight, resumed);
  }
}

// With the default cosine schedule (planned over 2 epochs), a run stopped in
// the middle of an epoch and resumed ends exactly where the straight run does.
TEST(Training, MidEpochStopAndResumeEqualsStraightRun) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 44, 8, 6, 6);
  for (const std::string model : {"pixelcnn", "gated-pixelcnn"}) {
    auto cfg = tiny_config(tmp / "data", model);
    ASSERT_EQ(cfg.schedule, "cosine");
    // Stopped in epoch 2, batch 2 of 5.
    auto [straight, resumed] = tame::testing::straight_and_resumed(tmp, model + "-", cfg, 7);
    expect_same_parameters(cfg, straight, resumed);
  }
}

// --dynamic-binarization: batches drawn afresh from the 8-bit images, keyed by
// the step, so a stopped and resumed run equals the straight one; the result
// differs from training on the fixed draw; 8-bit data is refused.
TEST(Training, DynamicBinarizationResumesExactlyAndNeedsBinarizedData) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 44, 8, 6, 6);
  struct Env {  // fashion-mnist-bin read from the small IDX set, for this test only
    explicit Env(const std::string& dir) { setenv("TAME_FASHION_MNIST_DIR", dir.c_str(), 1); }
    ~Env() { unsetenv("TAME_FASHION_MNIST_DIR"); }
  } env(tmp / "data");
  auto cfg = tiny_config(tmp / "data");
  cfg.data = "fashion-mnist-bin";
  cfg.levels = 2;
  cfg.hparams = resolve_hparams("pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}});
  auto fixed_cfg = cfg;
  cfg.dynamic_binarization = true;
  auto [straight, resumed] = tame::testing::straight_and_resumed(tmp, "", cfg, 7);
  expect_same_parameters(cfg, straight, resumed);

  std::string fixed = new_run(tmp, "fixed", fixed_cfg);
  ASSERT_EQ(train(quiet(fixed), false), TrainStatus::kDone);
  auto a = build_model(cfg), b = build_model(cfg);
  load_checkpoint(checkpoint_path(straight), cfg, *a, nullptr);
  load_checkpoint(checkpoint_path(fixed), fixed_cfg, *b, nullptr);
  EXPECT_FALSE(torch::equal(a->parameters()[0], b->parameters()[0]));

  auto gray = tiny_config(tmp / "data");
  gray.dynamic_binarization = true;
  std::string bad = new_run(tmp, "gray", gray);
  EXPECT_NE(error_of([&] { train(quiet(bad), false); }).find("needs a binarized dataset"),
            std::string::npos);
}

// set_threads sizes OpenBLAS's own pool as well as LibTorch's (the trainer,
// eval, sample and the codec all go through it).
TEST(Training, SetThreadsSizesTheBlasPoolToo) {
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!get) GTEST_SKIP() << "the BLAS behind LibTorch is not OpenBLAS";
  EXPECT_EQ(set_threads(2), 2);
  EXPECT_EQ(get(), 2);
  EXPECT_EQ(set_threads(1), 1);
  EXPECT_EQ(get(), 1);
  EXPECT_EQ(at::get_num_threads(), 1);  // as test_main left it
}

TEST(Training, MetricsHoldTrainAndEvalLines) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 32, 8, 6, 6);
  auto cfg = tiny_config(tmp / "data");
  std::string dir = new_run(tmp, "run", cfg);
  ASSERT_EQ(train(quiet(dir), false), TrainStatus::kDone);
  std::string text = read_file(metrics_path(dir));
  int evals = 0, trains = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    auto j = nlohmann::json::parse(text.substr(pos, nl - pos));
    if (j["type"] == "eval") {
      ++evals;
      EXPECT_GT(j["bpd"].get<double>(), 0.0);
      EXPECT_LT(j["bpd"].get<double>(), 8.5);
      EXPECT_EQ(j["images"], 8);
    }
    if (j["type"] == "train") ++trains;
    pos = nl + 1;
  }
  EXPECT_EQ(evals, 2);  // one per epoch
  EXPECT_GT(trains, 0);
}

// A loss that becomes non-finite stops the run and leaves the last good
// checkpoint exactly as it was.
TEST(Training, DivergenceKeepsTheLastGoodCheckpoint) {
  TempDir tmp;
  auto [cfg, dir] = one_epoch_run(tmp, 32);
  ASSERT_EQ(train(quiet(dir), false), TrainStatus::kDone);
  std::string before = read_file(checkpoint_path(dir));
  cfg.epochs = 3;
  cfg.lr = 1e30;  // Adam moves every weight by ~lr: the logits overflow at once
  cfg.clip = 0;
  write_run_config(dir, cfg);
  EXPECT_EQ(train(quiet(dir), true), TrainStatus::kDiverged);
  EXPECT_EQ(read_file(checkpoint_path(dir)), before);
}

TEST(Training, RefusesAFinishedRunAndMissingCheckpoint) {
  TempDir tmp;
  auto run = one_epoch_run(tmp, 16);
  const std::string dir = run.second;
  EXPECT_NE(error_of([&] { train(quiet(dir), true); }).find("nothing to resume"),
            std::string::npos);
  ASSERT_EQ(train(quiet(dir), false), TrainStatus::kDone);
  EXPECT_NE(error_of([&] { train(quiet(dir), true); }).find("--epochs"), std::string::npos);
}
