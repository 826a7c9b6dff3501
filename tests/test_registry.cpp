// Every registered model, through the command line, at its registry `tiny`
// size on an 8x8 gray set: train two steps, check the run directory, resume
// for the last step of the epoch (which also evaluates), evaluate, sample, and
// for a model the registry marks as a codec, compress and decompress a few
// images exactly. The tests are generated from model_registry(), so a new entry
// is tested the day it appears.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>

#include <cctype>
#include <cmath>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/registry.h"
#include "test_util.h"

using tame::testing::TempDir;

namespace tame {
// Failure messages name the model, not the entry's bytes.
void PrintTo(const ModelEntry& e, std::ostream* os) { *os << e.name; }
}  // namespace tame

namespace {

constexpr int64_t kSide = 8;  // the side every model accepts (conv VAEs: /4, glow: /4)
constexpr int64_t kTrain = 24, kBatch = 8;  // 3 steps make the epoch

tame::testing::CliResult run(const std::string& args, const TempDir& tmp) {
  return tame::testing::run_tame(args, tmp);
}

// "--set k=v" for each of the entry's tiny overrides.
std::string tiny_sets(const tame::ModelEntry& e) {
  std::string sets;
  for (const auto& [key, value] : e.tiny.items())
    sets += " --set " + key + "=" + (value.is_string() ? value.get<std::string>() : value.dump());
  return sets;
}

// The steps the metrics log recorded for lines of `type`.
std::vector<int64_t> logged_steps(const std::string& run_dir, const std::string& type) {
  std::vector<int64_t> steps;
  std::istringstream lines(tame::read_file(tame::join_path(run_dir, "metrics.jsonl")));
  for (std::string line; std::getline(lines, line);) {
    auto j = nlohmann::json::parse(line);
    if (j.value("type", "") == type && j.contains("step")) steps.push_back(j["step"]);
  }
  return steps;
}

class RegistrySmoke : public ::testing::TestWithParam<tame::ModelEntry> {
 protected:
  void SetUp() override { tame::testing::write_idx_dataset(tmp / "data", kTrain, 8, kSide, kSide); }
  std::string data() const { return "idx:" + (tmp / "data"); }
  // Two steps of the entry's tiny model on the 8x8 set into run_dir.
  tame::testing::CliResult train_two_steps(const tame::ModelEntry& e, const std::string& run_dir,
                                           const std::string& flags) {
    return run("train --model " + e.name + " --data " + data() + " --out " + run_dir +
                   " --epochs 1 --max-steps 2 --batch-size " + std::to_string(kBatch) + " " +
                   flags + tiny_sets(e),
               tmp);
  }
  void code_round_trip(const std::string& run_dir);
  TempDir tmp;
};

// Three images through compress and decompress, pixel for pixel.
void RegistrySmoke::code_round_trip(const std::string& run_dir) {
  auto images = tame::testing::synthetic_images(3, kSide, kSide, 9);
  std::string inputs;
  for (int i = 0; i < 3; ++i) {
    tame::write_png(tmp / ("in" + std::to_string(i) + ".png"), images[i]);
    inputs += " " + (tmp / ("in" + std::to_string(i) + ".png"));
  }
  auto r =
      run("compress " + run_dir + inputs + " --out " + (tmp / "x.tamez") + " --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  // Another process and another thread count: the same images.
  r = run("decompress " + run_dir + " " + (tmp / "x.tamez") + " --out " + (tmp / "out") +
              " --threads 2",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(
        torch::equal(tame::read_png(tmp / ("out/in" + std::to_string(i) + ".png")), images[i]))
        << i;
}

}  // namespace

TEST_P(RegistrySmoke, TrainResumeEvaluateSampleCode) {
  const tame::ModelEntry& e = GetParam();
  ASSERT_NO_THROW(tame::resolve_hparams(e.name, e.tiny)) << "tiny names unknown hyper-parameters";
  const std::string run_dir = tmp / "run";
  auto r = train_two_steps(e, run_dir, "--threads 1 --quiet --log-every 1");
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"config.json", "metrics.jsonl", "checkpoint.tame"})
    EXPECT_TRUE(tame::file_exists(tame::join_path(run_dir, f))) << f;
  EXPECT_EQ(logged_steps(run_dir, "train"), (std::vector<int64_t>{1, 2}));

  r = run("train --out " + run_dir + " --resume --threads 1 --quiet --log-every 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(logged_steps(run_dir, "train"), (std::vector<int64_t>{1, 2, 3}));
  EXPECT_EQ(logged_steps(run_dir, "eval"), (std::vector<int64_t>{3}));  // the epoch's end

  r = run("eval " + run_dir + " --json --limit 8 --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  const std::string bound = j.value("bound", "");
  EXPECT_TRUE(bound == "exact" || bound == "upper" || bound == "none") << r.out;
  if (bound == "none") {
    EXPECT_FALSE(j.contains("bpd")) << r.out;  // no likelihood: no made-up number
  } else {
    ASSERT_TRUE(j.contains("bpd")) << r.out;
    const double bpd = j["bpd"].get<double>();
    EXPECT_TRUE(std::isfinite(bpd) && bpd > 0) << r.out;
  }

  // One thread, like every command here: on a busy machine a second one's
  // spinning made vlae's 64 one-sub-pixel passes 20x slower.
  r = run("sample " + run_dir + " -n 4 --threads 1 --out " + (tmp / "s.png"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(tame::read_png(tmp / "s.png").numel(), 4 * kSide * kSide);

  // The registry's codec flag is what the model class says; the model agrees.
  auto model = tame::make_model(e.name, tame::resolve_hparams(e.name, e.tiny),
                                tame::ImageShape{1, kSide, kSide}, 256);
  EXPECT_EQ(model->coder() != nullptr, e.codec) << e.name;
  if (e.codec) {
    code_round_trip(run_dir);
  } else {
    r = run("compress " + run_dir + " --data " + data() + " --out " + (tmp / "n.tamez"), tmp);
    EXPECT_NE(r.code, 0) << e.name << " is not marked as a codec, yet compressed";
  }
}

// The same on a GPU, where tame is built against a CUDA LibTorch and one is
// present: train, resume, evaluate and sample with --device cuda; the codec
// reads the run onto its CPU kernels and codes exactly. Skipped otherwise.
TEST_P(RegistrySmoke, OnCudaWhenPresent) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device in this build or machine";
  const tame::ModelEntry& e = GetParam();
  const std::string run_dir = tmp / "run";
  auto r = train_two_steps(e, run_dir, "--device cuda --quiet");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("train --out " + run_dir + " --resume --quiet", tmp);  // the epoch's end evaluates
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(logged_steps(run_dir, "eval"), (std::vector<int64_t>{3}));
  r = run("eval " + run_dir + " --json --limit 8", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("sample " + run_dir + " -n 4 --out " + (tmp / "s.png"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(tame::read_png(tmp / "s.png").numel(), 4 * kSide * kSide);
  if (e.codec) code_round_trip(run_dir);
}

// --precision bf16: one training step of every model with its forward under
// autocast stays close to the same step in fp32 (same weights, batch and random
// draws, dropout off): the loss within 3 %, the gradient pointing the same way (yet not
// equal: autocast took effect), the weights and gradients still fp32, and
// autocast off again once the step is over.
TEST_P(RegistrySmoke, Bf16StepFollowsTheFp32Step) {
  const tame::ModelEntry& e = GetParam();
  auto hp = tame::resolve_hparams(e.name, e.tiny);
  // Dropout's draws depend on the activations' dtype; the comparison is of precision.
  if (hp.contains("dropout")) hp["dropout"] = 0.0;
  const tame::ImageShape shape{1, kSide, kSide};
  const auto x = tame::testing::synthetic_images(kBatch, kSide, kSide, 3);
  auto step = [&](torch::ScalarType precision, double* loss) {
    torch::manual_seed(5);  // the same initial weights
    auto model = tame::make_model(e.name, hp, shape, 256);
    auto optimizers = model->make_optimizers(1e-3);
    tame::StepContext ctx;
    ctx.clip = 1.0;
    // From the weights of 60 fp32 steps, not the initial ones: pixelcnn++'s loss
    // moved 4.8 % under bf16 at initialization, 4.1 % after 5 steps, 3.1 %
    // after 20 and under 3 % after 60.
    for (int i = 0; i < 60; ++i) model->train_step(x, optimizers, ctx);
    ctx.precision = precision;
    torch::manual_seed(6);  // the same draws inside the step (noise, dropout, z)
    *loss = model->train_step(x, optimizers, ctx).loss;
    std::vector<torch::Tensor> grads;
    for (const auto& p : model->parameters()) {
      EXPECT_EQ(p.scalar_type(), torch::kFloat) << e.name;
      if (!p.grad().defined()) continue;
      EXPECT_EQ(p.grad().scalar_type(), torch::kFloat) << e.name;
      grads.push_back(p.grad().flatten());
    }
    return torch::cat(grads).to(torch::kDouble);
  };
  double l32 = 0, l16 = 0;
  auto g32 = step(torch::kFloat, &l32);
  auto g16 = step(torch::kBFloat16, &l16);
  EXPECT_FALSE(at::autocast::is_cpu_enabled()) << "autocast left on after the step";
  ASSERT_TRUE(std::isfinite(l16)) << e.name;
  EXPECT_FALSE(torch::equal(g16, g32)) << e.name << ": the bf16 step computed in fp32";
  EXPECT_LT(std::abs(l16 - l32), 0.03 * std::abs(l32) + 1e-3) << e.name << " " << l32 << " " << l16;
  const double cosine = (g32 * g16).sum().item<double>() / (g32.norm() * g16.norm()).item<double>();
  EXPECT_GT(cosine, 0.95) << e.name;
}

INSTANTIATE_TEST_SUITE_P(Registry, RegistrySmoke, ::testing::ValuesIn(tame::model_registry()),
                         [](const ::testing::TestParamInfo<tame::ModelEntry>& info) {
                           std::string name = info.param.name;
                           for (char& c : name)
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           return name;
                         });

// `tame models --json` lists every entry with its tiny overrides, and a help
// text for each hyper-parameter, no more and no fewer.
TEST(Registry, ModelsJsonListsEveryEntry) {
  TempDir tmp;
  auto r = run("models --json", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), tame::model_registry().size());
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& e = tame::model_registry()[i];
    EXPECT_EQ(j[i]["name"], e.name);
    EXPECT_EQ(j[i]["defaults"], e.defaults);
    EXPECT_EQ(j[i]["tiny"], e.tiny);
    EXPECT_EQ(j[i]["codec"], e.codec);
    EXPECT_EQ(j[i]["help"].size(), e.defaults.size()) << e.name;
    for (const auto& [key, value] : e.defaults.items()) {
      ASSERT_TRUE(j[i]["help"].contains(key)) << e.name << " does not say what " << key << " does";
      EXPECT_GT(j[i]["help"][key].get<std::string>().size(), 8u) << e.name << " " << key;
    }
  }
  // The plain listing prints them beside the defaults.
  r = run("models", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("seed of the connectivity draws"), std::string::npos) << r.out;
}
