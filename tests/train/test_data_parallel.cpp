// Data-parallel training through c10d (Gloo) as users run it, `tame train
// --nproc N`: every test starts real processes on this machine.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/checkpoint.h"
#include "tame/train/data_parallel.h"
#include "tame/train/run.h"
#include "train_util.h"

using namespace tame;
using namespace tame::testing;

namespace {

class DataParallel : public ::testing::Test {
 protected:
  void SetUp() override { write_idx_dataset(tmp / "data", 40, 9, 8, 8); }

  // 40 images in batches of 10: 4 steps an epoch, 2 epochs, the cosine
  // schedule after 3 warm-up steps, Adam, and clipping that binds.
  std::string train(const std::string& run, const std::string& extra,
                    const std::string& model = "pixelcnn",
                    const std::string& sets = "--set hidden=4 --set blocks=1 --set out_hidden=8") {
    return "train --model " + model + " --data idx:" + (tmp / "data") + " --out " + (tmp / run) +
           " --epochs 2 --batch-size 10 --lr 3e-3 --warmup 3 --clip 0.05 --threads 1 --quiet " +
           "--log-every 1 " + sets + " " + extra;
  }

  CliResult tame(const std::string& args) { return run_tame(args, tmp); }

  // The largest difference between the parameters of two runs' checkpoints,
  // which must be at the same step.
  double max_difference(const std::string& a_run, const std::string& b_run) {
    const std::string a_dir = tmp / a_run, b_dir = tmp / b_run;
    RunConfig cfg = read_run_config(a_dir);
    auto a = build_model(cfg), b = build_model(cfg);
    auto sa = load_checkpoint(checkpoint_path(a_dir), cfg, *a, nullptr);
    auto sb = load_checkpoint(checkpoint_path(b_dir), cfg, *b, nullptr);
    EXPECT_EQ(sa.step, sb.step);
    double worst = 0;
    for (const auto& p : a->named_parameters())
      worst =
          std::max(worst, (p.value() - b->named_parameters()[p.key()]).abs().max().item<double>());
    return worst;
  }

  // The test bits/dim of a run's evaluations, in order.
  std::vector<double> test_bpd(const std::string& run) {
    std::vector<double> out;
    for (const auto& j : read_metrics(tmp / run))
      if (j["type"] == "eval") out.push_back(j["bpd"].get<double>());
    return out;
  }

  TempDir tmp;
};

// Float rounding differs between summing one batch and summing shards; after
// 8 steps of Adam at 3e-3 the parameters of the same run stay this close,
// while a run that differs in anything real moves them by orders more.
constexpr double kSameRun = 2e-5;

// 2 ranks x 5 images and 3 ranks x (3, 3, 4) images train the one-process run
// of batches of 10: the same parameters, the same sharded-and-summed test
// bits/dim, one metrics line each (rank 0 alone writes).
TEST_F(DataParallel, TwoAndThreeRanksTrainTheOneProcessRun) {
  auto r = tame(train("one", ""));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* n : {"2", "3"}) {
    r = tame(train(std::string("ranks") + n, std::string("--nproc ") + n));
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(r.out,
              "trained pixelcnn; run directory: " + (tmp / (std::string("ranks") + n)) + "\n");
    EXPECT_LT(max_difference("one", std::string("ranks") + n), kSameRun) << n << " ranks";
    auto one = test_bpd("one"), many = test_bpd(std::string("ranks") + n);
    ASSERT_EQ(one.size(), 2u);
    ASSERT_EQ(many.size(), one.size());
    for (size_t i = 0; i < one.size(); ++i) EXPECT_NEAR(many[i], one[i], 1e-5);
    auto lines = read_metrics(tmp / (std::string("ranks") + n));
    EXPECT_EQ(lines.size(), read_metrics(tmp / "one").size());
    for (const auto& j : lines)
      if (j["type"] == "train") {
        EXPECT_EQ(j["ranks"].get<int>(), std::atoi(n));
        EXPECT_GT(j["comm_bytes_per_step"].get<double>(), 0);
      }
  }
  // What the tolerance is worth: one process on a 5-image shard alone (the
  // gradients not reduced) is another run.
  std::string half = train("half", "");
  half.replace(half.find("--batch-size 10"), 15, "--batch-size 5 --max-steps 8");
  r = tame(half);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_GT(max_difference("one", "half"), 100 * kSameRun);
}

// The codebook's moving averages sum the shards' statistics: vqvae on 2 ranks
// is the one-process run too.
TEST_F(DataParallel, CodebookAveragesSumTheShards) {
  const std::string sets =
      "--set codes=8 --set code_dim=2 --set hidden=4 --set res_blocks=0 "
      "--set restart=0 --set ema=true";
  auto r = tame(train("one", "", "vqvae", sets));
  ASSERT_EQ(r.code, 0) << r.err;
  r = tame(train("two", "--nproc 2", "vqvae", sets));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_LT(max_difference("one", "two"), kSameRun);
}

// Ranks started one by one with torchrun's environment, as on several
// machines, train the run --nproc trains.
TEST_F(DataParallel, RanksStartedAsTorchrunStartsThem) {
  auto r = tame(train("one", ""));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string port = std::to_string(free_local_port());
  std::string script;
  for (int rank : {1, 0})
    script += "RANK=" + std::to_string(rank) + " LOCAL_RANK=" + std::to_string(rank) +
              " LOCAL_WORLD_SIZE=2 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + port + " " +
              TAME_BINARY + " " + train("env", "") + " 2>" +
              (tmp / ("rank" + std::to_string(rank))) + " &\n";
  script += "wait %1 && wait %2\n";
  write_file_atomic(tmp / "ranks.sh", script);
  r = run_shell("sh " + (tmp / "ranks.sh"), tmp);
  ASSERT_EQ(r.code, 0) << read_file(tmp / "rank0") << read_file(tmp / "rank1");
  EXPECT_LT(max_difference("one", "env"), kSameRun);
}

// A 2-rank run stopped after 3 steps and resumed on 2 ranks, or on 1, ends
// where the uninterrupted run ends.
TEST_F(DataParallel, StoppedRunsResumeOnAnyNumberOfRanks) {
  auto r = tame(train("straight", ""));
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* n : {"2", "1"}) {
    const std::string run = std::string("resumed-on-") + n;
    r = tame(train(run, "--nproc 2 --max-steps 3"));
    ASSERT_EQ(r.code, 0) << r.err;
    r = tame("train --out " + (tmp / run) + " --resume --quiet --threads 1 --nproc " + n);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_LT(max_difference("straight", run), kSameRun) << "resumed on " << n;
  }
}

// Bad input stops the run before any rank trains: one line, no run left.
TEST_F(DataParallel, BadSetupsAreOneLine) {
  std::string tiny = train("tiny", "--nproc 2");
  tiny.replace(tiny.find("--batch-size 10"), 15, "--batch-size 1");
  auto r = tame(tiny);
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.err.find("smaller than the 2 ranks"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(file_exists(checkpoint_path(tmp / "tiny")));
  r = tame("train --out " + (tmp / "x") + " --resume --nproc 2");  // nothing to resume
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  std::string cmd = std::string("RANK=5 WORLD_SIZE=2 ") + TAME_BINARY + " " + train("bad", "") +
                    " 2>" + (tmp / "err.txt");
  EXPECT_NE(std::system(cmd.c_str()), 0);
  EXPECT_NE(read_file(tmp / "err.txt").find("RANK=5"), std::string::npos);
}

// A shell script that starts a long 2-rank run, waits for its first logged
// step, does `action` to it (with $launcher and $rank1 set) and waits for the
// launcher; it prints the launcher's exit code and the seconds it took.
std::string supervise(const TempDir& tmp, const std::string& train_cmd, const std::string& action) {
  const std::string run = tmp / "long";
  return train_cmd + " 2>" + (tmp / "train.err") +
         " &\n"
         "launcher=$!\n"
         "for i in $(seq 1200); do grep -q '\"train\"' " +
         run +
         "/metrics.jsonl 2>/dev/null && break; sleep 0.1; done\n"
         "rank1=''\n"
         "for d in /proc/[0-9]*; do\n"
         "  [ \"$(awk '{print $4}' $d/stat 2>/dev/null)\" = \"$launcher\" ] || continue\n"
         "  tr '\\0' '\\n' < $d/environ 2>/dev/null | grep -qx RANK=1 && rank1=${d#/proc/}\n"
         "done\n"
         "start=$(date +%s.%N)\n" +
         action +
         "\n"
         "wait $launcher; code=$?\n"
         "end=$(date +%s.%N)\n"
         "echo $code $(awk \"BEGIN { print $end - $start }\")\n";
}

std::pair<int, double> run_script(const TempDir& tmp, const std::string& script) {
  write_file_atomic(tmp / "supervise.sh", script);
  auto r = run_shell("sh " + (tmp / "supervise.sh"), tmp);
  int code = -1;
  double seconds = -1;
  std::sscanf(r.out.c_str(), "%d %lf", &code, &seconds);
  return {code, seconds};
}

// A rank killed outright makes the others stop at once; a rank that hangs
// (stopped) makes them stop when --rank-timeout runs out: non-zero exits, one
// error line from the rank that saw it, and the last checkpoint kept.
TEST_F(DataParallel, ARankThatDiesOrHangsStopsTheRun) {
  const std::string cmd =
      std::string(TAME_BINARY) + " " + train("long", "--nproc 2 --rank-timeout 4");
  std::string long_run = cmd;
  long_run.replace(long_run.find("--epochs 2"), 10, "--epochs 100000");
  auto [code, seconds] = run_script(tmp, supervise(tmp, long_run, "kill -KILL $rank1"));
  std::string err = read_file(tmp / "train.err");
  EXPECT_NE(code, 0) << err;
  EXPECT_LT(seconds, 4.0 + 3.0) << err;
  EXPECT_NE(err.find("rank 0 of 2: lost contact"), std::string::npos) << err;

  std::filesystem::remove_all(tmp / "long");
  std::tie(code, seconds) = run_script(tmp, supervise(tmp, long_run, "kill -STOP $rank1"));
  err = read_file(tmp / "train.err");
  EXPECT_NE(code, 0) << err;
  EXPECT_GE(seconds, 3.0) << err;
  EXPECT_LT(seconds, 4.0 + 10.0 + 5.0) << err;  // the timeout, then the launcher's grace
  EXPECT_NE(err.find("rank 0 of 2: lost contact"), std::string::npos) << err;
  EXPECT_NE(err.find("Timed out"), std::string::npos) << err;
}

// Ctrl-C reaches every rank once: all stop on the same step, rank 0 saves a
// checkpoint, the launcher exits 130, and the run resumes.
TEST_F(DataParallel, InterruptStopsEveryRankWithACheckpoint) {
  std::string long_run = std::string(TAME_BINARY) + " " + train("long", "--nproc 2");
  long_run.replace(long_run.find("--epochs 2"), 10, "--epochs 100000");
  long_run.replace(long_run.find("--quiet"), 7, "");
  auto [code, seconds] = run_script(tmp, supervise(tmp, long_run, "kill -INT $launcher"));
  std::string err = read_file(tmp / "train.err");
  EXPECT_EQ(code, 130) << err;
  EXPECT_NE(err.find("interrupted; checkpoint saved"), std::string::npos) << err;
  ASSERT_TRUE(file_exists(checkpoint_path(tmp / "long")));
  auto r = tame("train --out " + (tmp / "long") + " --resume --max-steps 2 --threads 1 --nproc 2");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
}

}  // namespace
