// The training loop's seams: models that own their step and optimizers (and
// may have no likelihood), the batch source (shards, crops), the stop request,
// and checkpoints written before models owned their optimizers.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "tame/data/datasets.h"
#include "tame/eval/evaluate.h"
#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/batches.h"
#include "tame/train/checkpoint.h"
#include "tame/train/run.h"
#include "tame/train/trainer.h"
#include "train_util.h"

using namespace tame;
using namespace tame::testing;

namespace {

// A group of one rank that records what the loop asks of it, and may ask the
// run to stop as another rank would.
class RecordingRanks : public RankGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void reduce_(const std::vector<torch::Tensor>& ts, Op op, double scale) override {
    if (op == Op::kMax) {
      for (const auto& t : ts) t.clamp_min_(stop_from_others);
      return;
    }
    ++sums;
    if (!ts.empty() && ts[0].defined() && ts[0].scalar_type() == torch::kFloat)
      gradient_sets.push_back(ts.size());
    for (const auto& t : ts)
      if (t.defined()) t.mul_(scale);
  }
  void broadcast_(const std::vector<torch::Tensor>& ts) override { broadcast_tensors += ts.size(); }
  int stop_from_others = 0;
  int sums = 0;
  size_t broadcast_tensors = 0;
  std::vector<size_t> gradient_sets;
};

// A model in the shape of a GAN: no likelihood, two optimizers of different
// kinds stepped in turn on two losses, and a sampler. Its numbers mean nothing;
// what it proves is that the loop, the checkpoint and resume handle it.
struct PairOptions {
  int64_t width = 3;
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(PairOptions, width)

class PairModel : public ImageModel {
 public:
  PairModel(const PairOptions& o, ImageShape shape, int64_t levels) : ImageModel(shape, levels) {
    a_ = register_parameter("a", torch::randn({o.width}));
    b_ = register_parameter("b", torch::randn({o.width}));
  }
  torch::Tensor sample(int64_t n, double) override {
    return torch::zeros({n, shape_.channels, shape_.height, shape_.width}, torch::kUInt8);
  }
  Optimizers make_optimizers(double lr) override {
    Optimizers out;
    out.push_back({"first",
                   std::make_unique<torch::optim::Adam>(std::vector<torch::Tensor>{a_},
                                                        torch::optim::AdamOptions(lr)),
                   lr});
    out.push_back(
        {"second",
         std::make_unique<torch::optim::SGD>(std::vector<torch::Tensor>{b_},
                                             torch::optim::SGDOptions(2 * lr).momentum(0.9)),
         2 * lr});
    return out;
  }
  StepResult train_step(const torch::Tensor& x, Optimizers& opt, const StepContext& ctx) override {
    auto m = scale_mean(x);
    opt[0].optimizer->zero_grad();
    auto l1 = ((a_ - m).pow(2) + b_.detach() * a_).sum();
    l1.backward();
    finish_gradients({a_}, ctx);
    opt[0].optimizer->step();
    opt[1].optimizer->zero_grad();
    auto l2 = (b_ - a_.detach()).pow(2).sum();
    l2.backward();
    finish_gradients({b_}, ctx);
    opt[1].optimizer->step();
    StepResult r;
    r.loss = agreed_loss((l1 + l2).item<double>(), ctx);
    r.metrics = {{"first", l1.item<double>()},
                 {"second", l2.item<double>()},
                 {"lr_first", opt[0].optimizer->param_groups()[0].options().get_lr()},
                 {"lr_second", opt[1].optimizer->param_groups()[0].options().get_lr()}};
    return r;
  }

 private:
  torch::Tensor scale_mean(const torch::Tensor& x) { return x.to(torch::kFloat).mean() / 255.0; }
  torch::Tensor a_, b_;
};

void register_pair_model() {
  static bool done = false;
  if (done) return;
  ModelEntry e;
  e.name = "test-pair";
  e.family = "test";
  e.summary = "two optimizers, no likelihood";
  e.defaults = PairOptions();
  e.make = [](const nlohmann::json& hp, ImageShape shape,
              int64_t levels) -> std::shared_ptr<ImageModel> {
    return std::make_shared<PairModel>(hp.get<PairOptions>(), shape, levels);
  };
  register_model(e);
  done = true;
}

RunConfig config(const std::string& data_dir, const std::string& model, const nlohmann::json& hp) {
  auto cfg = tame::testing::run_config(data_dir, model, hp, 5);
  cfg.schedule = "constant";
  return cfg;
}

// A one-epoch run of the pair model over n_train 6x6 images in tmp/data.
RunConfig pair_run(const TempDir& tmp, int64_t n_train) {
  register_pair_model();
  tame::testing::write_idx_dataset(tmp / "data", n_train, 8, 6, 6);
  auto cfg = config(tmp / "data", "test-pair", nlohmann::json::object());
  cfg.epochs = 1;
  return cfg;
}

}  // namespace

// Two optimizers, resumed mid-run: the same parameters as a straight run, so
// the checkpoint carried both optimizers' states (Adam moments, SGD momentum).
TEST(Loop, TwoOptimizersResumeExactly) {
  TempDir tmp;
  auto cfg = pair_run(tmp, 44);
  cfg.epochs = 2;
  auto [straight, resumed] = tame::testing::straight_and_resumed(tmp, "", cfg, 7);
  expect_equal_models(cfg, straight, resumed);

  // The checkpoint names both optimizers; a model with other optimizers is refused.
  auto m = build_model(cfg);
  auto fewer = m->make_optimizers(cfg.lr);
  fewer.pop_back();
  auto more = m->make_optimizers(cfg.lr);
  more.push_back({"third",
                  std::make_unique<torch::optim::SGD>(m->parameters(), torch::optim::SGDOptions(1)),
                  1});
  for (auto* opts : {&fewer, &more}) {
    auto msg = error_of([&] { load_checkpoint(checkpoint_path(resumed), cfg, *m, opts); });
    EXPECT_NE(msg.find("first, second"), std::string::npos) << msg;
  }
}

// A model without a likelihood: evaluation reports bound "none" and no number,
// and the training loop's metrics carry its own terms.
TEST(Loop, ModelWithoutLikelihoodIsEvaluatedWithoutNumbers) {
  TempDir tmp;
  auto cfg = pair_run(tmp, 24);
  std::string dir = new_run(tmp, "run", cfg);
  ASSERT_EQ(train(quiet(dir), false), TrainStatus::kDone);
  bool saw_eval = false, saw_train = false;
  for (const auto& j : read_metrics(dir)) {
    if (j["type"] == "eval") {
      saw_eval = true;
      EXPECT_EQ(j["bound"], "none");
      EXPECT_FALSE(j.contains("bpd"));
      EXPECT_FALSE(j.contains("nll_nats"));
    }
    if (j["type"] == "train") {
      saw_train = true;
      EXPECT_TRUE(j.contains("first") && j.contains("second")) << j.dump();
      EXPECT_TRUE(j.contains("loss") && !j.contains("bpd")) << j.dump();  // not bits of anything
    }
  }
  EXPECT_TRUE(saw_eval && saw_train);
  auto m = build_model(cfg);
  auto r = evaluate(*m, load_dataset(cfg.data, "test").images);
  EXPECT_EQ(r.bound, Bound::kNone);
  EXPECT_EQ(std::string(bound_name(r.bound)), "none");
  EXPECT_THROW(m->nll(load_dataset(cfg.data, "test").images), Error);
}

// Every optimizer follows the schedule in proportion to its own base rate; with
// a rank group, the initial weights are broadcast, the gradients of each
// parameter set of the step are reduced, and so is the loss.
TEST(Loop, ScheduleScalesEveryOptimizerAndGradientsAreReduced) {
  TempDir tmp;
  auto cfg = pair_run(tmp, 16);
  std::string dir = new_run(tmp, "run", cfg);
  auto opt = quiet(dir);
  RecordingRanks ranks;
  opt.ranks = &ranks;
  ASSERT_EQ(train(opt, false), TrainStatus::kDone);
  EXPECT_EQ(ranks.broadcast_tensors, 2u);  // a and b
  // 2 steps of 2 parameter sets of one tensor each, and a loss per step.
  EXPECT_EQ(ranks.gradient_sets, std::vector<size_t>({1, 1, 1, 1}));
  EXPECT_EQ(ranks.sums, 2 * 3);
  EXPECT_DOUBLE_EQ(learning_rate(cfg, 0, 10, 0, 2 * cfg.lr), 2 * learning_rate(cfg, 0, 10, 0));
  // The rates the loop applied, as the model's step saw them: steps 0 and 1
  // of the constant schedule with 3 warm-up steps, averaged over the metrics
  // window of 2 steps: (1/3 + 2/3) / 2 of each optimizer's base rate.
  int lines = 0;
  for (const auto& j : read_metrics(dir)) {
    if (j["type"] != "train") continue;
    ++lines;
    EXPECT_DOUBLE_EQ(j["lr_first"].get<double>(), cfg.lr * 0.5);
    EXPECT_DOUBLE_EQ(j["lr_second"].get<double>(), 2 * cfg.lr * 0.5);
  }
  EXPECT_EQ(lines, 1);
}

// The stop request comes from outside (tame train's signal handler): the loop
// stops at the next step with a checkpoint, and the ranks agree on the stop.
TEST(Loop, InterruptAndAgreedStop) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 44, 8, 6, 6);
  auto cfg = config(tmp / "data", "pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}});
  std::string dir = new_run(tmp, "run", cfg);
  std::atomic<int> flag{2};
  auto opt = quiet(dir);
  opt.interrupt = &flag;
  EXPECT_EQ(train(opt, false), TrainStatus::kInterrupted);
  EXPECT_TRUE(file_exists(checkpoint_path(dir)));
  // Another rank asked to stop: this one stops too, though nothing stopped it.
  flag = 0;
  RecordingRanks ranks;
  ranks.stop_from_others = static_cast<int>(StopReason::kInterrupted);
  opt.ranks = &ranks;
  EXPECT_EQ(train(opt, true), TrainStatus::kInterrupted);
}

// W ranks together see exactly one process's global batches, row for row,
// binarized afresh in the same way; crops are a function of (seed, epoch, image).
TEST(Batches, ShardsPartitionTheGlobalBatch) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 40, 8, 6, 6);
  auto cfg = config(tmp / "data", "pixelcnn", nlohmann::json::object());
  cfg.batch_size = 10;
  for (bool binarized : {false, true}) {
    Dataset train_set = load_dataset(cfg.data, "train");
    if (binarized) {
      train_set.source = train_set.images;
      train_set.images = binarize(train_set.images, 0);
      train_set.levels = 2;
    }
    cfg.dynamic_binarization = binarized;
    BatchSource one(train_set, cfg);
    auto whole = one.batch(1, 2, 17);
    EXPECT_EQ(whole.size(0), 10);
    for (int world : {2, 3}) {
      std::vector<torch::Tensor> parts;
      for (int r = 0; r < world; ++r)
        parts.push_back(BatchSource(train_set, cfg, r, world).batch(1, 2, 17));
      EXPECT_TRUE(torch::equal(torch::cat(parts), whole)) << world << " ranks";
      if (world == 3) {
        EXPECT_NE(parts[0].size(0), parts[2].size(0));  // 3, 3 and 4 rows
      }
    }
  }
  EXPECT_THROW(BatchSource(load_dataset(cfg.data, "train"), cfg, 3, 3), Error);
}

TEST(Batches, CropsAreDeterministicAndVary) {
  auto images = tame::testing::synthetic_images(5, 12, 10, 3);
  auto idx = torch::arange(5, torch::kLong);
  auto a = random_crops(images, idx, 4, 7, 0);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{5, 1, 4, 4}));
  EXPECT_TRUE(torch::equal(a, random_crops(images, idx, 4, 7, 0)));
  EXPECT_FALSE(torch::equal(a, random_crops(images, idx, 4, 7, 1)));  // another epoch
  EXPECT_FALSE(torch::equal(a, random_crops(images, idx, 4, 8, 0)));  // another seed
  // Each crop is a window of its own image.
  auto img = images[2][0];
  bool found = false;
  for (int64_t t = 0; t + 4 <= 12 && !found; ++t)
    for (int64_t l = 0; l + 4 <= 10 && !found; ++l)
      found = torch::equal(img.slice(0, t, t + 4).slice(1, l, l + 4), a[2][0]);
  EXPECT_TRUE(found);
  EXPECT_THROW(random_crops(images, idx, 11, 7, 0), Error);
  EXPECT_EQ(center_crop(images, 4).sizes(), (std::vector<int64_t>{5, 1, 4, 4}));
  EXPECT_TRUE(
      torch::equal(center_crop(images, 4)[0][0], images[0][0].slice(0, 4, 8).slice(1, 3, 7)));
}

// --crops-per-image K: an epoch takes every image K times, each item with a
// crop of its own, in one permutation of the N K items; K = 1 is the plain
// epoch, crop for crop.
TEST(Batches, EveryImageGivesKCropsAnEpoch) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 6, 4, 12, 10);
  auto cfg = config(tmp / "data", "pixelcnn", nlohmann::json::object());
  Dataset train_set = load_dataset(cfg.data, "train");
  cfg.crop = 4;
  cfg.batch_size = 6;
  BatchSource plain(train_set, cfg);
  EXPECT_EQ(plain.steps_per_epoch(), 1);
  cfg.crops_per_image = 3;
  BatchSource three(train_set, cfg);
  ASSERT_EQ(three.steps_per_epoch(), 3);
  // Each crop is found in exactly one image; every image gives 3 crops.
  std::vector<int> from(6, 0);
  std::vector<torch::Tensor> crops;
  for (int64_t b = 0; b < 3; ++b) {
    auto x = three.batch(2, b, 0);
    for (int64_t r = 0; r < x.size(0); ++r) {
      crops.push_back(x[r]);
      int owner = -1;
      for (int64_t i = 0; i < 6 && owner < 0; ++i)
        for (int64_t t = 0; t + 4 <= 12 && owner < 0; ++t)
          for (int64_t l = 0; l + 4 <= 10 && owner < 0; ++l)
            if (torch::equal(train_set.images[i].slice(1, t, t + 4).slice(2, l, l + 4), x[r]))
              owner = static_cast<int>(i);
      ASSERT_GE(owner, 0);
      ++from[static_cast<size_t>(owner)];
    }
  }
  EXPECT_EQ(from, std::vector<int>(6, 3));
  int distinct = 0;  // the repeats are other windows (a few may coincide by chance)
  for (size_t i = 0; i < crops.size(); ++i) {
    bool seen = false;
    for (size_t j = 0; j < i && !seen; ++j) seen = torch::equal(crops[i], crops[j]);
    distinct += seen ? 0 : 1;
  }
  EXPECT_GE(distinct, 15);
  EXPECT_TRUE(torch::equal(three.batch(2, 1, 0), BatchSource(train_set, cfg).batch(2, 1, 0)));
  // Too few items for a batch: the error says how to get more.
  cfg.crops_per_image = 1;
  cfg.batch_size = 7;
  EXPECT_NE(error_of([&] { BatchSource(train_set, cfg); }).find("--crops-per-image"),
            std::string::npos);
}

// --flip: each row is its item's image or that image mirrored left-right,
// about half of them mirrored, the choice a function of (seed, epoch, item).
TEST(Batches, FlipsAreDeterministicAndMirror) {
  auto images = tame::testing::synthetic_images(200, 4, 5, 3);
  auto idx = torch::arange(200, torch::kLong);
  auto a = random_flips(images, idx, 7, 0);
  EXPECT_TRUE(torch::equal(a, random_flips(images, idx, 7, 0)));
  EXPECT_FALSE(torch::equal(a, random_flips(images, idx, 7, 1)));  // another epoch
  EXPECT_FALSE(torch::equal(a, random_flips(images, idx, 8, 0)));  // another seed
  int mirrored = 0;
  for (int64_t r = 0; r < 200; ++r) {
    const bool same = torch::equal(a[r], images[r]);
    const bool flipped = torch::equal(a[r], images[r].flip({2}));
    EXPECT_TRUE(same || flipped) << r;
    ASSERT_FALSE(same && flipped) << r;  // synthetic images are not symmetric
    mirrored += flipped ? 1 : 0;
  }
  EXPECT_GT(mirrored, 70);  // Binomial(200, 1/2): 100 +- 7
  EXPECT_LT(mirrored, 130);
  // The choice follows the item, not its row: a permuted batch flips the same items.
  auto rev = torch::arange(199, -1, -1, torch::kLong);
  EXPECT_TRUE(
      torch::equal(random_flips(images.index_select(0, rev), rev, 7, 0), a.index_select(0, rev)));
  // A batch with --flip: the same rows as without, some mirrored.
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 16, 4, 6, 7);
  auto cfg = config(tmp / "data", "pixelcnn", nlohmann::json::object());
  cfg.batch_size = 16;
  Dataset train_set = load_dataset(cfg.data, "train");
  auto plain = BatchSource(train_set, cfg).batch(0, 0, 0);
  cfg.flip = true;
  auto flipped = BatchSource(train_set, cfg).batch(0, 0, 0);
  int changed = 0;
  for (int64_t r = 0; r < 16; ++r) {
    EXPECT_TRUE(torch::equal(flipped[r], plain[r]) || torch::equal(flipped[r], plain[r].flip({2})));
    changed += torch::equal(flipped[r], plain[r]) ? 0 : 1;
  }
  EXPECT_GT(changed, 0);
  EXPECT_LT(changed, 16);
}

// Training on random crops stops and resumes exactly, with and without
// --flip; --flip is recorded in the run's config, and a config from before it
// existed reads as no flips.
TEST(Batches, CropTrainingResumesExactly) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 44, 8, 10, 9);
  auto cfg = config(tmp / "data", "pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}});
  cfg.crop = 5;
  cfg.shape = {1, 5, 5};
  cfg.schedule = "cosine";
  for (bool flip : {false, true}) {
    cfg.flip = flip;
    auto [straight, resumed] =
        tame::testing::straight_and_resumed(tmp, flip ? "flip-" : "", cfg, 6);
    expect_equal_models(cfg, straight, resumed);
    EXPECT_EQ(read_run_config(straight).flip, flip);
  }
  auto j = cfg.to_json();
  EXPECT_TRUE(j["train"]["flip"].get<bool>());
  j["train"].erase("flip");
  EXPECT_FALSE(RunConfig::from_json(j, "old").flip);
}

// codes:RUN serves a trained model's discrete codes as a dataset; a prior
// trains on them with the same loop. 300 classes: code maps beyond uint8.
TEST(Loop, PriorTrainsOnAnotherRunsCodes) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 24, 8, 6, 6);
  auto enc = config(tmp / "data", "gumbel-vae",
                    {{"arch", "mlp"}, {"hidden", 8}, {"groups", 3}, {"classes", 300}});
  enc.epochs = 1;
  std::string enc_dir = new_run(tmp, "encoder", enc);
  ASSERT_EQ(train(quiet(enc_dir), false), TrainStatus::kDone);

  Dataset codes = load_run_data("codes:" + enc_dir, "test");
  EXPECT_EQ(codes.levels, 300);
  EXPECT_EQ(codes.images.scalar_type(), torch::kInt);
  EXPECT_EQ(codes.shape(), (ImageShape{1, 1, 3}));
  EXPECT_LT(codes.images.max().item<int64_t>(), 300);

  auto prior = config(tmp / "data", "pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}});
  prior.data = "codes:" + enc_dir;
  prior.shape = {1, 1, 3};
  prior.levels = 300;
  prior.batch_size = 4;
  prior.epochs = 1;
  std::string prior_dir = new_run(tmp, "prior", prior);
  ASSERT_EQ(train(quiet(prior_dir), false), TrainStatus::kDone);
  double bpd = -1;
  for (const auto& j : read_metrics(prior_dir))
    if (j["type"] == "eval") bpd = j["bpd"].get<double>();
  EXPECT_GT(bpd, 0.0);
  EXPECT_LT(bpd, std::log2(300.0) + 1.0);

  // A model without codes cannot serve them.
  auto msg = error_of([&] { load_run_data("codes:" + prior_dir, "test"); });
  EXPECT_NE(msg.find("no discrete codes"), std::string::npos) << msg;
}

namespace {

// A run directory written by an earlier tame (tests/train/fixtures/NAME, on
// the IDX set of v1-run/data): it evaluates to the number that tame gave, and
// resuming it for another epoch gives what that tame gave.
void expect_old_run_as_before(const std::string& name) {
  TempDir tmp;
  const std::string fixtures = std::string(TAME_SOURCE_DIR) + "/tests/train/fixtures/";
  std::filesystem::copy(fixtures + name, tmp / "old", std::filesystem::copy_options::recursive);
  std::filesystem::copy(fixtures + "v1-run/data", tmp / "data",
                        std::filesystem::copy_options::recursive);
  const std::string run = tmp / "old/run";
  auto cfg_json = nlohmann::json::parse(read_file(run + "/config.json"));
  cfg_json["data"] = "idx:" + (tmp / "data");
  write_file_atomic(run + "/config.json", cfg_json.dump(2));
  auto expect_eval = [&](const std::string& expected_file) {
    auto r = tame::testing::run_tame("eval " + run + " --json --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    auto got = nlohmann::json::parse(r.out);
    auto want = nlohmann::json::parse(read_file(tmp / ("old/" + expected_file)));
    // To float rounding: oneDNN and BLAS pick their kernels by CPU (the fixture
    // was written on another machine; an AMD EPYC one differs in the 9th digit),
    // while a checkpoint read wrongly moves the number by far more.
    const double w = want["nll_nats"].get<double>();
    EXPECT_NEAR(got["nll_nats"].get<double>(), w, 1e-6 * w) << name << " " << expected_file;
  };
  expect_eval("expected-eval.json");
  auto r = tame::testing::run_tame(
      "train --out " + run + " --resume --epochs 2 --threads 1 --quiet", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_eval("expected-resumed-eval.json");
}

}  // namespace

// A run written before models owned their optimizers (checkpoint version 1,
// by tame 0.1.0 at commit 58978ae; the one Adam's state loads as the model's
// "adam").
TEST(Loop, VersionOneRunsEvaluateAndResumeAsBefore) { expect_old_run_as_before("v1-run"); }

// A MADE run written before `made` had direct connections (583fb97): its
// config and checkpoint lack the `direct` key, which MadeOptions::earlier()
// reads as false, so it loads as the model it was.
TEST(Loop, MadeRunsFromBeforeDirectConnectionsLoadAsBefore) {
  EXPECT_EQ(stored_hparams("made", {{"hidden", 1}})["direct"], false);
  EXPECT_EQ(resolve_hparams("made", {{"hidden", 1}})["direct"], true);  // new runs have them
  // The fixture is of the model without the key, so the check below is of earlier().
  const auto stored = nlohmann::json::parse(read_file(
      std::string(TAME_SOURCE_DIR) + "/tests/train/fixtures/v2-made-run/run/config.json"));
  EXPECT_FALSE(stored.at("hparams").contains("direct"));
  expect_old_run_as_before("v2-made-run");
}

// The moving average of the weights: one update is its formula (past the
// warm-up, d = D), swapping exchanges it with the weights and back.
TEST(WeightAverage, UpdateSwapAndCopy) {
  torch::nn::Linear lin(2, 1);
  {
    torch::NoGradGuard g;
    lin->weight.copy_(torch::tensor({{1.0f, 2.0f}}));
  }
  WeightAverage avg(*lin, 0.9);
  {
    torch::NoGradGuard g;
    lin->weight.copy_(torch::tensor({{3.0f, 4.0f}}));
  }
  avg.update(1000);  // (1 + 1000) / (10 + 1000) > 0.9: d = 0.9
  auto want = torch::tensor({{1.2f, 2.2f}});
  EXPECT_TRUE(torch::allclose(avg.averages()[0], want));
  {
    WeightAverage::Swapped s(&avg);
    EXPECT_TRUE(torch::allclose(lin->weight, want));
  }
  EXPECT_TRUE(torch::equal(lin->weight, torch::tensor({{3.0f, 4.0f}})));
  avg.copy_to_model();
  EXPECT_TRUE(torch::allclose(lin->weight, want));
  EXPECT_THROW(WeightAverage(*lin, 1.0), std::invalid_argument);
}

// The warm-up: the first update keeps 10 % of the initial weights, not D of
// them, and the decay reaches D exactly where (1 + t) / (10 + t) passes it.
TEST(WeightAverage, DecayWarmsUpToD) {
  torch::nn::Linear lin(1, 1);
  {
    torch::NoGradGuard g;
    lin->weight.fill_(0.0f);
  }
  WeightAverage avg(*lin, 0.999);
  EXPECT_DOUBLE_EQ(avg.decay_at(0), 0.1);
  EXPECT_DOUBLE_EQ(avg.decay_at(10), 11.0 / 20.0);
  EXPECT_LT(avg.decay_at(8989), 0.999);         // 8990 / 8999
  EXPECT_DOUBLE_EQ(avg.decay_at(8991), 0.999);  // 8992 / 9001 > 0.999
  EXPECT_DOUBLE_EQ(avg.decay_at(1000000), 0.999);
  {
    torch::NoGradGuard g;
    lin->weight.fill_(1.0f);
  }
  avg.update(0);
  EXPECT_NEAR(avg.averages()[0].item<float>(), 0.9f, 1e-6);
  // 100 updates at a constant weight of 1: the warm-up leaves
  // prod_t d_t = prod (1+t)/(10+t) = 9! 100! / 109! of the initial 0, far
  // less than the 0.999^100 = 0.905 a constant decay would leave.
  for (int64_t t = 1; t < 100; ++t) avg.update(t);
  EXPECT_GT(avg.averages()[0].item<float>(), 0.99f);
}

// --ema: the loop evaluates with the averages (its last metrics line equals
// tame eval's number on the loaded run), the loaded run's weights are the
// averages and not the trained weights, and a resumed run carries the
// averages exactly.
TEST(Loop, MovingAverageIsWhatEvaluatesAndResumes) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 40, 8, 6, 6);
  auto cfg = config(tmp / "data", "pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}});
  cfg.ema = 0.8;
  auto [straight, resumed] = tame::testing::straight_and_resumed(tmp, "ema-", cfg, 7);
  expect_equal_models(cfg, straight, resumed);
  auto trained = build_model(cfg), again = build_model(cfg);
  WeightAverage a(*trained, cfg.ema), b(*again, cfg.ema);
  load_checkpoint(checkpoint_path(straight), cfg, *trained, nullptr, &a);
  load_checkpoint(checkpoint_path(resumed), cfg, *again, nullptr, &b);
  for (size_t k = 0; k < a.averages().size(); ++k)
    EXPECT_TRUE(torch::equal(a.averages()[k], b.averages()[k])) << a.names()[k];

  auto loaded = load_trained_model(straight, nullptr);
  double moved = 0;
  for (size_t k = 0; k < a.names().size(); ++k) {
    const torch::Tensor p = loaded->named_parameters()[a.names()[k]];
    EXPECT_TRUE(torch::equal(p, a.averages()[k])) << a.names()[k];
    moved += (p - trained->named_parameters()[a.names()[k]]).abs().sum().item<double>();
  }
  EXPECT_GT(moved, 1e-3);  // the averages are not the trained weights
  nlohmann::json last;
  for (const auto& m : read_metrics(straight))
    if (m["type"] == "eval") last = m;
  ASSERT_TRUE(last.contains("nll_nats"));
  auto r = evaluate(*loaded, load_dataset(cfg.data, "test").images, 32, 1, {});
  EXPECT_NEAR(r.nll_nats, last["nll_nats"].get<double>(), 1e-9 * r.nll_nats);
}
