// The command line end to end, through the real binary: train, eval, sample,
// and one clear error line with a non-zero exit for each kind of bad input.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "../test_util.h"
#include "tame/build_info.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/io/png.h"

using tame::testing::TempDir;

namespace {

using Result = tame::testing::CliResult;

// The binary under test, run through the shared helper.
Result run(const std::string& args, const TempDir& tmp) {
  return tame::testing::run_tame(args, tmp);
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

// A failure: non-zero exit, exactly one line on stderr, mentioning `needle`.
void expect_clean_failure(const Result& r, const std::string& needle) {
  EXPECT_NE(r.code, 0) << r.err;
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_EQ(r.err.rfind("tame: error: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

class Cli : public ::testing::Test {
 protected:
  void SetUp() override { tame::testing::write_idx_dataset(tmp / "data", 48, 10, 8, 8); }
  TempDir tmp;
  std::string data() const { return "idx:" + (tmp / "data"); }
  /// tame train of `model` on the fixture's data into run_dir, on one thread.
  Result train(const std::string& model, const std::string& run_dir, const std::string& flags) {
    return run("train --model " + model + " --data " + data() + " --out " + run_dir +
                   " --threads 1 " + flags,
               tmp);
  }
  /// A run directory's config.json.
  nlohmann::json config_of(const std::string& run_dir) const {
    return nlohmann::json::parse(tame::read_file(tame::join_path(run_dir, "config.json")));
  }
};

}  // namespace

TEST_F(Cli, TrainEvalSampleEndToEnd) {
  for (const std::string model : {"pixelcnn", "gated-pixelcnn"}) {
    std::string run_dir = tmp / ("run-" + model);
    std::string hp = model == "pixelcnn" ? "--set hidden=8 --set blocks=1 --set out_hidden=16"
                                         : "--set hidden=8 --set layers=1 --set out_hidden=16";
    auto r = run("train --model " + model + " --data " + data() + " --out " + run_dir +
                     " --epochs 2 --batch-size 16 --threads 1 " + hp,
                 tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    for (const char* f : {"config.json", "metrics.jsonl", "checkpoint.tame"})
      EXPECT_TRUE(tame::file_exists(tame::join_path(run_dir, f))) << f;
    EXPECT_NE(r.err.find("bits/dim"), std::string::npos) << r.err;  // progress and evaluation lines

    r = run("eval " + run_dir + " --json --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["model"], model);
    EXPECT_EQ(j["split"], "test");
    EXPECT_EQ(j["images"], 10);
    EXPECT_EQ(j["bound"], "exact");
    EXPECT_EQ(j["iw_samples"], 1);
    EXPECT_GT(j["bpd"].get<double>(), 0.5);
    EXPECT_LT(j["bpd"].get<double>(), 8.5);
    EXPECT_NEAR(j["bpd"].get<double>(), j["nll_nats"].get<double>() / (64 * std::log(2.0)), 1e-9);

    r = run("eval " + run_dir + " --json --split train --limit 5 --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["images"], 5);

    std::string png = tmp / ("grid-" + model + ".png");
    r = run("sample " + run_dir + " -n 4 --out " + png + " --temperature 0.9 --seed 3 --threads 1",
            tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    auto grid = tame::read_png(png);
    EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{1, 2 * 10 + 2, 2 * 10 + 2}));

    // Resume for one more epoch.
    r = run("train --out " + run_dir + " --resume --epochs 3 --threads 1 --quiet", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
  }
}

TEST_F(Cli, ListsModelsAndData) {
  auto r = run("models", tmp);
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("pixelcnn"), std::string::npos);
  EXPECT_NE(r.out.find("gated-pixelcnn"), std::string::npos);
  r = run("data", tmp);
  ASSERT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("fashion-mnist"), std::string::npos);
}

// The tool and this test binary allocate through the malloc the build links
// (tcmalloc unless configured with -DTAME_TCMALLOC=OFF), and --version says which.
TEST_F(Cli, VersionNamesTheMallocTheBuildLinks) {
  const std::string linked = TAME_TCMALLOC ? "tcmalloc" : "libc";
  EXPECT_EQ(tame::allocator_name(), linked);
  auto r = run("--version", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("(malloc: " + linked + ")"), std::string::npos) << r.out;
}

TEST_F(Cli, BadInputIsOneLineAndNonZeroExit) {
  expect_clean_failure(run("train --model nope --data " + data() + " --out " + (tmp / "r"), tmp),
                       "unknown model");
  EXPECT_FALSE(tame::is_directory(tmp / "r"));  // nothing half-made
  expect_clean_failure(run("train --model pixelcnn --data nowhere --out " + (tmp / "r"), tmp),
                       "unknown dataset");
  expect_clean_failure(
      run("train --model pixelcnn --data " + data() + " --out " + (tmp / "r") + " --set widht=3",
          tmp),
      "widht");
  expect_clean_failure(
      run("train --model pixelcnn --data " + data() + " --out " + (tmp / "r") + " --ema 1", tmp),
      "--ema");
  EXPECT_FALSE(tame::is_directory(tmp / "r"));
  expect_clean_failure(run("eval " + (tmp / "missing"), tmp), "no such run directory");
  expect_clean_failure(run("sample " + (tmp / "missing"), tmp), "no such run directory");
  expect_clean_failure(run("train --out " + (tmp / "missing") + " --resume", tmp),
                       "no such run directory");
  expect_clean_failure(run("frobnicate", tmp), "subcommand");
  expect_clean_failure(run("eval", tmp), "run_dir");

  expect_clean_failure(
      run("train --model pixelcnn --data " + data() + " --out " + (tmp / "r") + " --device cuda",
          tmp),
      "cuda");
  EXPECT_FALSE(tame::is_directory(tmp / "r"));
  expect_clean_failure(run("train --model pixelcnn --data " + data() + " --out " + (tmp / "r") +
                               " --dynamic-binarization",
                           tmp),
                       "needs a binarized dataset");
  EXPECT_FALSE(tame::is_directory(tmp / "r"));

  std::string run_dir = tmp / "run";
  auto r = run("train --model pixelcnn --data " + data() + " --out " + run_dir +
                   " --epochs 1 --batch-size 16 --threads 1 --quiet --set hidden=4 --set blocks=1 "
                   "--set out_hidden=8",
               tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_clean_failure(run("train --model pixelcnn --data " + data() + " --out " + run_dir, tmp),
                       "already holds a run");
  expect_clean_failure(run("train --out " + run_dir + " --resume --lr 0.1", tmp), "--lr");

  std::string ckpt = tame::join_path(run_dir, "checkpoint.tame");
  std::string bytes = tame::read_file(ckpt);
  bytes[bytes.size() / 3] ^= 0x11;
  tame::write_file_atomic(ckpt, bytes);
  expect_clean_failure(run("eval " + run_dir, tmp), "checksum");
  std::string out_png = tmp / "never.png";
  expect_clean_failure(run("sample " + run_dir + " --out " + out_png, tmp), "checksum");
  EXPECT_FALSE(tame::file_exists(out_png));

  tame::write_file_atomic(tame::join_path(run_dir, "config.json"), "{ not json");
  expect_clean_failure(run("eval " + run_dir, tmp), "config.json");
}

// Ctrl-C (SIGINT) saves a checkpoint and exits 130; the run then resumes.
TEST_F(Cli, InterruptSavesACheckpointThatResumes) {
  std::string run_dir = tmp / "run";
  // The shell plays the user: it starts training, waits for the first logged
  // step (so the signal lands inside the training loop), then presses Ctrl-C.
  std::string script = tmp / "interrupt.sh";
  tame::write_file_atomic(
      script,
      std::string(TAME_BINARY) + " train --model pixelcnn --data " + data() + " --out " + run_dir +
          " --epochs 1000000 --batch-size 4 --eval-limit 2 --threads 1 --log-every 1 --set hidden=4"
          " --set blocks=1 --set out_hidden=8 2>" +
          (tmp / "train.err") +
          " &\n"
          "pid=$!\n"
          "for i in $(seq 1200); do grep -q '\"train\"' " +
          run_dir +
          "/metrics.jsonl 2>/dev/null && break; sleep 0.1; done\n"
          "kill -INT $pid\n"
          "wait $pid\n");
  int status = std::system(("sh " + script).c_str());
  ASSERT_TRUE(WIFEXITED(status));
  std::string err = tame::read_file(tmp / "train.err");
  EXPECT_EQ(WEXITSTATUS(status), 130) << err;
  EXPECT_NE(err.find("interrupted"), std::string::npos) << err;
  ASSERT_TRUE(tame::file_exists(tame::join_path(run_dir, "checkpoint.tame")));
  auto r = run("train --out " + run_dir + " --resume --max-steps 3 --threads 1", tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.err.find("resuming"), std::string::npos) << r.err;
}

// A run directory whose first attempt died before saving a checkpoint (a
// config.json and nothing else) is started over, not refused.
TEST_F(Cli, RunDirWithoutCheckpointStartsOver) {
  std::string run_dir = tmp / "stale";
  tame::make_directories(run_dir);
  tame::write_file_atomic(tame::join_path(run_dir, "config.json"), "{}");
  tame::write_file_atomic(tame::join_path(run_dir, "metrics.jsonl"), "{\"type\":\"train\"}\n");
  auto r = run("train --model pixelcnn --data " + data() + " --out " + run_dir +
                   " --epochs 1 --batch-size 16 --threads 1 --quiet --set hidden=4 --set blocks=1 "
                   "--set out_hidden=8",
               tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(tame::join_path(run_dir, "checkpoint.tame")));
  std::string metrics = tame::read_file(tame::join_path(run_dir, "metrics.jsonl"));
  EXPECT_EQ(metrics.find("{\"type\":\"train\"}\n"),
            std::string::npos);  // the stale log was cleared
}

namespace {

// Trains a tiny model for a few steps and returns its run directory.
std::string tiny_run(const std::string& model, const std::string& data, const TempDir& tmp) {
  std::string run_dir = tmp / ("codec-" + model);
  std::string hp = model == "pixelcnn"     ? "--set hidden=8 --set blocks=1 --set out_hidden=16"
                   : model == "pixelcnn++" ? "--set filters=4 --set resnets=1 --set mixtures=2"
                                           : "--set hidden=8 --set layers=1 --set out_hidden=16";
  auto r = run("train --model " + model + " --data " + data + " --out " + run_dir +
                   " --max-steps 6 --batch-size 16 --threads 1 --quiet " + hp,
               tmp);
  EXPECT_EQ(r.code, 0) << r.err;
  return run_dir;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> out;
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

// Files written with --threads 2 decode with --threads 1 in another process to
// the identical images, and --threads 1 writes the identical file: a
// categorical model and the mixture of PixelCNN++.
TEST_F(Cli, CompressDecompressAcrossProcessesAndThreads) {
  auto images = tame::testing::synthetic_images(4, 8, 8, 77);
  std::vector<std::string> inputs;
  for (int i = 0; i < 3; ++i) {
    inputs.push_back(tmp / ("in" + std::to_string(i) + ".png"));
    tame::write_png(inputs.back(), images[i]);
  }
  // One input as binary PGM.
  std::string pgm = "P5\n# comment\n8 8\n255\n";
  auto last = images[3].contiguous();
  pgm.append(reinterpret_cast<const char*>(last.data_ptr<uint8_t>()), 64);
  inputs.push_back(tmp / "in3.pgm");
  tame::write_file_atomic(inputs.back(), pgm);
  std::string list;
  for (const auto& p : inputs) list += " " + p;

  for (const std::string model : {"gated-pixelcnn", "pixelcnn++"}) {
    SCOPED_TRACE(model);
    const std::string run_dir = tiny_run(model, data(), tmp);
    const std::string a = tmp / (model + "-a.tamez"), b = tmp / (model + "-b.tamez"),
                      out = tmp / (model + "-out");
    auto r =
        run("compress " + run_dir + list + " --out " + a + " --threads 2 --block 3 --verify", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_NE(r.out.find("round trip: ok"), std::string::npos) << r.out;
    r = run("compress " + run_dir + list + " --out " + b + " --threads 1 --block 3", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(tame::read_file(a), tame::read_file(b));

    r = run("decompress " + run_dir + " " + a + " --out " + out + " --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(files_in(out),
              (std::vector<std::string>{"in0.png", "in1.png", "in2.png", "in3.png"}));
    for (int i = 0; i < 4; ++i)
      EXPECT_TRUE(torch::equal(tame::read_png(out + "/in" + std::to_string(i) + ".png"), images[i]))
          << i;
    // A second decompress into the same folder overwrites nothing.
    expect_clean_failure(run("decompress " + run_dir + " " + a + " --out " + out, tmp), "exists");
  }
}

// The dense models (FVSBN, NADE, MADE's ensemble) code a split across
// processes and thread counts as the convolutional ones do, and refuse an
// image of another size than their training shape with one line.
TEST_F(Cli, DenseAndLatentModelsCodeAcrossProcessesAndTakeTheirShapeOnly) {
  const auto ds = tame::load_dataset(data(), "test");
  const std::map<std::string, std::string> hparams = {
      {"fvsbn", "--set rank=2"},
      {"nade", "--set hidden=5"},
      {"made", "--set hidden=9 --set masks=3"},
      // bits-back coding, both networks
      {"vae", "--set arch=mlp --set hidden=8 --set latent=3"},
      {"iwae", "--set hidden=4 --set latent=2"},
      {"vlae", "--set hidden=4 --set latent=2 --set pixel_hidden=2"}};
  for (const auto& [model, hp] : hparams) {
    const std::string run_dir = tmp / ("dense-" + model);
    auto r = train(model, run_dir, "--max-steps 4 --batch-size 16 --quiet " + hp);
    ASSERT_EQ(r.code, 0) << r.err;
    std::vector<std::string> files;
    for (int threads : {2, 1}) {
      files.push_back(tmp / (model + std::to_string(threads) + ".tamez"));
      r = run("compress " + run_dir + " --data " + data() + " --split test --limit 6 --out " +
                  files.back() + " --threads " + std::to_string(threads),
              tmp);
      ASSERT_EQ(r.code, 0) << r.err;
    }
    EXPECT_EQ(tame::read_file(files[0]), tame::read_file(files[1])) << model;
    if (model == "vae" || model == "iwae" || model == "vlae") {
      r = run("compress " + run_dir + " --data " + data() + " --split test --limit 6 --out " +
                  (tmp / "j.tamez") + " --json",
              tmp);
      ASSERT_EQ(r.code, 0) << r.err;
      EXPECT_GT(nlohmann::json::parse(r.out)["chain_bpd"].get<double>(), 0) << r.out;
    }
    const std::string out = tmp / ("d-" + model);
    r = run("decompress " + run_dir + " " + files[0] + " --out " + out + " --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    ASSERT_EQ(files_in(out).size(), 6u);
    for (int i = 0; i < 6; ++i)
      EXPECT_TRUE(
          torch::equal(tame::read_png(out + "/00000" + std::to_string(i) + ".png"), ds.images[i]))
          << model << " " << i;
    tame::write_png(tmp / "odd.png", tame::testing::synthetic_images(1, 7, 9, 5)[0]);
    expect_clean_failure(
        run("compress " + run_dir + " " + (tmp / "odd.png") + " --out " + (tmp / "odd.tamez"), tmp),
        "1x8x8");
    EXPECT_FALSE(tame::file_exists(tmp / "odd.tamez"));
  }
}

// Images larger than --tile are coded as tiles in parallel: the same file at
// any thread count, every pixel back; a tile side out of range is one line.
TEST_F(Cli, CompressesLargeImagesAsTiles) {
  const std::string run_dir = tiny_run("gated-pixelcnn", data(), tmp);
  const auto image = tame::testing::synthetic_images(1, 45, 70, 8)[0];
  tame::write_png(tmp / "big.png", image);
  for (int threads : {2, 1}) {
    auto r = run("compress " + run_dir + " " + (tmp / "big.png") + " --tile 32 --threads " +
                     std::to_string(threads) + " --out " + (tmp / ("t" + std::to_string(threads))),
                 tmp);
    ASSERT_EQ(r.code, 0) << r.err;
  }
  EXPECT_EQ(tame::read_file(tmp / "t1"), tame::read_file(tmp / "t2"));
  auto r = run("decompress " + run_dir + " " + (tmp / "t2") + " --out " + (tmp / "tiles"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(torch::equal(tame::read_png(tmp / "tiles/big.png"), image));
  expect_clean_failure(run("compress " + run_dir + " " + (tmp / "big.png") + " --tile 3 --out " +
                               (tmp / "bad.tamez"),
                           tmp),
                       "--tile");
  EXPECT_FALSE(tame::file_exists(tmp / "bad.tamez"));
}

// A fully convolutional model compresses images of any size into one file,
// and decompress gives each back at its own size.
TEST_F(Cli, CompressesImagesOfAnySize) {
  const std::string run_dir = tiny_run("gated-pixelcnn", data(), tmp);
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{8, 8}, {9, 8}, {1, 1}, {5, 13}, {1, 6}};
  std::string list;
  std::vector<torch::Tensor> images;
  for (size_t k = 0; k < sizes.size(); ++k) {
    images.push_back(tame::testing::synthetic_images(1, sizes[k].first, sizes[k].second, 3 + k)[0]);
    const std::string path = tmp / ("s" + std::to_string(k) + ".png");
    tame::write_png(path, images.back());
    list += " " + path;
  }
  auto r = run("compress " + run_dir + list + " --out " + (tmp / "s.tamez") + " --verify", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("5 sizes"), std::string::npos) << r.out;
  r = run("decompress " + run_dir + " " + (tmp / "s.tamez") + " --out " + (tmp / "s"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  for (size_t k = 0; k < sizes.size(); ++k)
    EXPECT_TRUE(torch::equal(tame::read_png(tmp / ("s/s" + std::to_string(k) + ".png")), images[k]))
        << k;
}

// A folder on the command line stands for the images directly inside it, in
// name order; hidden files, other files and subfolders are left out.
TEST_F(Cli, CompressesTheImagesOfAFolder) {
  const std::string run_dir = tiny_run("gated-pixelcnn", data(), tmp);
  const std::string dir = tmp / "photos";
  tame::make_directories(dir + "/sub");
  const auto a = tame::testing::synthetic_images(1, 6, 9, 11)[0];
  const auto b = tame::testing::synthetic_images(1, 8, 8, 12)[0];
  const auto c = tame::testing::synthetic_images(1, 5, 7, 13)[0];
  // a.PGM as a binary PGM, written by hand; b.png; c.png outside the folder.
  std::string pgm = "P5\n9 6\n255\n";
  pgm.append(reinterpret_cast<const char*>(a.contiguous().data_ptr<uint8_t>()), a.numel());
  tame::write_file_atomic(dir + "/a.PGM", pgm);
  tame::write_png(dir + "/b.png", b);
  tame::write_png(tmp / "c.png", c);
  for (const std::string junk : {"/.hidden.png", "/notes.txt", "/sub/d.png"})
    tame::write_file_atomic(dir + junk, "not an image");

  auto r = run("compress " + run_dir + " " + dir + " " + (tmp / "c.png") + " --out " +
                   (tmp / "f.tamez") + " --verify --json",
               tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["images"], 3);
  r = run("decompress " + run_dir + " " + (tmp / "f.tamez") + " --out " + (tmp / "back"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_in(tmp / "back"), (std::vector<std::string>{"a.png", "b.png", "c.png"}));
  EXPECT_TRUE(torch::equal(tame::read_png(tmp / "back/a.png"), a));
  EXPECT_TRUE(torch::equal(tame::read_png(tmp / "back/b.png"), b));
  EXPECT_TRUE(torch::equal(tame::read_png(tmp / "back/c.png"), c));

  // A folder without images is one clear line, and writes nothing.
  tame::make_directories(tmp / "empty");
  expect_clean_failure(
      run("compress " + run_dir + " " + (tmp / "empty") + " --out " + (tmp / "g.tamez"), tmp),
      "no .png, .pgm, .ppm or .pnm files");
  EXPECT_FALSE(tame::file_exists(tmp / "g.tamez"));
}

TEST_F(Cli, CompressesADatasetSplit) {
  const std::string run_dir = tiny_run("pixelcnn", data(), tmp);
  auto r = run("compress " + run_dir + " --data " + data() + " --split test --limit 7 --out " +
                   (tmp / "d.tamez") + " --verify --json --threads 2",
               tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["images"], 7);
  EXPECT_EQ(j["round_trip"], "ok");
  EXPECT_EQ(j["bytes"].get<int64_t>(),
            static_cast<int64_t>(tame::read_file(tmp / "d.tamez").size()));
  // The file costs what the model says, plus a small container overhead.
  EXPECT_GT(j["bpd"].get<double>(), j["model_bpd"].get<double>());
  EXPECT_LT(j["bpd"].get<double>(), j["model_bpd"].get<double>() + 8.0 * 120 / (7 * 64));
  r = run("decompress " + run_dir + " " + (tmp / "d.tamez") + " --out " + (tmp / "d"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(files_in(tmp / "d").size(), 7u);
  EXPECT_EQ(files_in(tmp / "d").front(), "000000.png");
}

TEST_F(Cli, CodecBadInputIsOneLineAndNoOutput) {
  const std::string run_dir = tiny_run("gated-pixelcnn", data(), tmp);
  const std::string other = tiny_run("pixelcnn", data(), tmp);
  tame::write_png(tmp / "ok.png", tame::testing::synthetic_images(1, 8, 8, 5)[0]);
  tame::write_png(tmp / "rgb.png", torch::zeros({3, 8, 8}, torch::kUInt8));
  tame::write_file_atomic(tmp / "junk.png", "not an image");

  expect_clean_failure(
      run("compress " + run_dir + " " + (tmp / "rgb.png") + " --out " + (tmp / "x.tamez"), tmp),
      "expected 1-channel images, got 3x8x8");
  expect_clean_failure(
      run("compress " + run_dir + " " + (tmp / "junk.png") + " --out " + (tmp / "x.tamez"), tmp),
      "junk.png");
  expect_clean_failure(
      run("compress " + run_dir + " " + (tmp / "missing.png") + " --out " + (tmp / "x.tamez"), tmp),
      "missing.png");
  EXPECT_FALSE(tame::file_exists(tmp / "x.tamez"));

  ASSERT_EQ(
      run("compress " + run_dir + " " + (tmp / "ok.png") + " --out " + (tmp / "f.tamez"), tmp).code,
      0);
  const std::string good = tame::read_file(tmp / "f.tamez");
  std::string corrupt = good;
  corrupt[corrupt.size() - 3] ^= 0x10;
  tame::write_file_atomic(tmp / "corrupt.tamez", corrupt);
  tame::write_file_atomic(tmp / "short.tamez", good.substr(0, good.size() - 5));
  expect_clean_failure(
      run("decompress " + run_dir + " " + (tmp / "corrupt.tamez") + " --out " + (tmp / "o"), tmp),
      "corrupt");
  expect_clean_failure(
      run("decompress " + run_dir + " " + (tmp / "short.tamez") + " --out " + (tmp / "o"), tmp),
      "truncated");
  expect_clean_failure(
      run("decompress " + other + " " + (tmp / "f.tamez") + " --out " + (tmp / "o"), tmp),
      "another model");
  expect_clean_failure(
      run("decompress " + run_dir + " " + (tmp / "ok.png") + " --out " + (tmp / "o"), tmp),
      "not a tame compressed file");
  expect_clean_failure(
      run("decompress " + run_dir + " " + (tmp / "nope.tamez") + " --out " + (tmp / "o"), tmp),
      "nope.tamez");
  EXPECT_TRUE(files_in(tmp / "o").empty());
}

// Each flow through the CLI: train, resume, evaluate with an importance-weighted
// bound (labelled "upper"), sample with a temperature, compress and
// decompress across processes and thread counts. Each runs with small
// networks; realnvp and glow with variational dequantization, so that the
// jointly trained q(u|x) is saved, loaded and resumed too.
TEST_F(Cli, FlowsTrainResumeEvaluateSample) {
  const std::vector<std::pair<std::string, std::string>> flows = {
      {"nice", "--set couplings=2 --set hidden=8"},
      {"realnvp", "--set hidden=8 --set dequantization=variational --set deq_hidden=4"},
      {"glow",
       "--set steps=2 --set hidden=8 --set dequantization=variational --set deq_couplings=1"},
  };
  for (const auto& [model, sets] : flows) {
    const std::string run_dir = tmp / model;
    auto r = run("train --model " + model + " --data " + data() + " --out " + run_dir +
                     " --epochs 1 --batch-size 16 --threads 1 --quiet " + sets,
                 tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    auto config = nlohmann::json::parse(tame::read_file(run_dir + "/config.json"));
    r = run("train --out " + run_dir + " --resume --epochs 2 --threads 1 --quiet", tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    // Resuming kept the hyper-parameters, the variational ones included.
    EXPECT_EQ(nlohmann::json::parse(tame::read_file(run_dir + "/config.json"))["hparams"],
              config["hparams"])
        << model;
    r = run("eval " + run_dir + " --json --iw-samples 4 --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["bound"], "upper") << model;
    EXPECT_EQ(j["iw_samples"], 4) << model;
    EXPECT_GT(j["bpd"].get<double>(), 0.5) << model;
    EXPECT_LT(j["bpd"].get<double>(), 9.0) << model;
    const std::string png = tmp / (model + ".png");
    r = run("sample " + run_dir + " -n 4 --temperature 0.7 --out " + png, tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    EXPECT_TRUE(tame::file_exists(png)) << model;
    // A codec by local bits-back: compress with two threads (verified in
    // process), decompress in another process with one.
    const std::string packed = tmp / (model + ".tamez");
    r = run("compress " + run_dir + " --data " + data() + " --limit 5 --out " + packed +
                " --verify --json --threads 2",
            tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out)["round_trip"], "ok") << model;
    r = run("decompress " + run_dir + " " + packed + " --out " + (tmp / (model + "-back")) +
                " --threads 1",
            tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    EXPECT_TRUE(tame::file_exists(tmp / (model + "-back/000004.png"))) << model;
  }
  // Another flow's file: one clear line.
  expect_clean_failure(
      run("decompress " + (tmp / "nice") + " " + (tmp / "glow.tamez") + " --out " + (tmp / "wrong"),
          tmp),
      "written by another model");
  // A geometry the model can't take: one clear line, no run directory.
  expect_clean_failure(run("train --model glow --data " + data() + " --out " + (tmp / "g3") +
                               " --epochs 1 --batch-size 16 --quiet --set levels=4",
                           tmp),
                       "divisible by 16");
  EXPECT_FALSE(tame::file_exists((tmp / "g3") + "/checkpoint.tame"));
}

// Each latent-variable model through the CLI: train, resume, evaluate with the
// importance-weighted bound and the diagnostics (KL, active units), sample,
// reconstruct; a 2-D VAE draws its latent grid.
TEST_F(Cli, LatentModelsTrainResumeEvaluateSampleReconstruct) {
  const std::vector<std::pair<std::string, std::string>> models = {
      {"vae", "--set latent=2 --set hidden=4"},
      {"iwae", "--set latent=3 --set hidden=4 --k 3 --beta 0.5 --set likelihood=logistic"},
      {"gumbel-vae", "--set groups=3 --set classes=4 --set hidden=4 --set hard=true"},
      {"vlae", "--set latent=3 --set hidden=4 --set pixel_hidden=4"},
  };
  for (const auto& [model, sets] : models) {
    const std::string run_dir = tmp / model;
    auto r = run("train --model " + model + " --data " + data() + " --out " + run_dir +
                     " --epochs 1 --batch-size 16 --threads 1 --quiet --log-every 1 " + sets,
                 tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    if (model == "iwae") {  // --k and --beta are the hyper-parameters k and beta
      auto hp = nlohmann::json::parse(tame::read_file(run_dir + "/config.json"))["hparams"];
      EXPECT_EQ(hp["k"], 3);
      EXPECT_EQ(hp["beta"], 0.5);
    }
    r = run("train --out " + run_dir + " --resume --epochs 2 --threads 1 --quiet", tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    // The training log carries the reconstruction term and the KL.
    const std::string log = tame::read_file(run_dir + "/metrics.jsonl");
    EXPECT_NE(log.find("\"kl\""), std::string::npos) << model;
    EXPECT_NE(log.find("\"recon\""), std::string::npos) << model;
    EXPECT_NE(log.find("\"active_units\""), std::string::npos) << model;
    r = run("eval " + run_dir + " --json --iw-samples 20 --threads 1", tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["bound"], "upper") << model;
    EXPECT_EQ(j["iw_samples"], 20) << model;
    EXPECT_GT(j["bpd"].get<double>(), 0.5) << model;
    EXPECT_GE(j["kl_nats"].get<double>(), 0.0) << model;
    EXPECT_LE(j["active_units"].get<int64_t>(), j["latent_units"].get<int64_t>()) << model;
    r = run("sample " + run_dir + " -n 4 --out " + (tmp / (model + "-s.png")), tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    r = run("reconstruct " + run_dir + " -n 5 --columns 4 --out " + (tmp / (model + "-r.png")),
            tmp);
    ASSERT_EQ(r.code, 0) << model << ": " << r.err;
    // 4 columns of 8x8 images with 2-pixel gaps; rows: inputs, outputs, inputs, outputs.
    auto png = tame::read_png(tmp / (model + "-r.png"));
    EXPECT_EQ(png.size(2), 4 * 8 + 5 * 2) << model;
    EXPECT_EQ(png.size(1), 4 * 8 + 5 * 2) << model;
  }
  auto r =
      run("reconstruct " + (tmp / "vae") + " --latent-grid --side 5 --out " + (tmp / "g.png"), tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(tmp / "g.png"));
  expect_clean_failure(run("reconstruct " + (tmp / "iwae") + " --latent-grid", tmp), "2-D");
  // Not a latent model: one clear line.
  r = run("train --model pixelcnn --data " + data() + " --out " + (tmp / "pc") +
              " --epochs 1 --batch-size 16 --threads 1 --quiet --set hidden=4 --set blocks=1",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  expect_clean_failure(run("reconstruct " + (tmp / "pc"), tmp), "latent-variable model");
  expect_clean_failure(run("train --model pixelcnn --data " + data() + " --out " + (tmp / "pk") +
                               " --epochs 1 --batch-size 16 --quiet --k 5",
                           tmp),
                       "no hyper-parameter 'k'");
  // The score-function estimator trains from the CLI too.
  r = run(
      "train --model vae --data " + data() + " --out " + (tmp / "sf") +
          " --epochs 1 --batch-size 16 --threads 1 --quiet --set hidden=4 --set estimator=score",
      tmp);
  ASSERT_EQ(r.code, 0) << r.err;
}

// A model without a likelihood through the CLI: dcgan trains with its two
// optimizers, resumes, samples, and tame eval says "none" and prints no bits/dim.
TEST_F(Cli, GanTrainsResumesSamplesAndHasNoBitsPerDim) {
  std::string run_dir = tmp / "run-dcgan";
  auto r =
      train("dcgan", run_dir,
            "--epochs 2 --batch-size 16 --lr 2e-4 --set hidden=4 --set latent=8 --max-steps 2");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("train --out " + run_dir + " --resume --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err.find("bits/dim"), std::string::npos) << r.err;

  r = run("eval " + run_dir + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"], "dcgan");
  EXPECT_EQ(j["bound"], "none");
  EXPECT_FALSE(j.contains("bpd")) << r.out;
  EXPECT_FALSE(j.contains("nll_nats")) << r.out;
  r = run("eval " + run_dir + " --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("no likelihood"), std::string::npos) << r.out;

  std::string png = tmp / "gan.png";
  r = run("sample " + run_dir + " -n 4 --out " + png + " --seed 1 --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(png));

  // The checkpoint holds both optimizers by name.
  std::string ckpt = tame::read_file(tame::join_path(run_dir, "checkpoint.tame"));
  EXPECT_NE(ckpt.find("\"optimizers\":[\"generator\",\"discriminator\"]"), std::string::npos);
}

// --crop through the CLI: the run trains on 5x5 patches of the 8x8 images, the
// fully convolutional model is then scored on whole images; a crop larger than
// the images is one error line and no run directory.
TEST_F(Cli, TrainsOnRandomCrops) {
  std::string run_dir = tmp / "run-crop";
  auto r =
      train("pixelcnn", run_dir,
            "--epochs 1 --batch-size 16 --crop 5 --set hidden=4 --set blocks=1 --set out_hidden=8");
  ASSERT_EQ(r.code, 0) << r.err;
  auto cfg = config_of(run_dir);
  EXPECT_EQ(cfg["train"]["crop"], 5);
  EXPECT_EQ(cfg["image_shape"], nlohmann::json({1, 5, 5}));
  r = run("eval " + run_dir + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_NEAR(j["bpd"].get<double>(), j["nll_nats"].get<double>() / (64 * std::log(2.0)), 1e-9);
  r = run("train --out " + run_dir + " --resume --crop 4 --threads 1", tmp);
  expect_clean_failure(r, "--crop cannot change on --resume");

  std::string bad = tmp / "run-bad-crop";
  r = train("pixelcnn", bad, "--crop 20");
  expect_clean_failure(r, "--crop 20 does not fit");
  EXPECT_FALSE(std::filesystem::exists(bad));
}

// --precision bf16 trains through the CLI and is recorded in config.json; it
// may change on --resume (it is how a step computes, not what the run is). An
// unknown precision, on the command line or in a config, is one error line.
TEST_F(Cli, PrecisionIsRecordedAndMayChangeOnResume) {
  const std::string tiny = " --set hidden=4 --set blocks=1 --set out_hidden=8";
  std::string run_dir = tmp / "run-bf16";
  auto r = train("pixelcnn", run_dir,
                 "--epochs 2 --batch-size 16 --max-steps 2 --quiet --precision bf16" + tiny);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(config_of(run_dir)["train"]["precision"], "bf16");
  r = run("train --out " + run_dir + " --resume --precision fp32 --max-steps 2 --threads 1 --quiet",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(config_of(run_dir)["train"]["precision"], "fp32");
  r = run("eval " + run_dir + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(std::isfinite(nlohmann::json::parse(r.out)["bpd"].get<double>())) << r.out;

  std::string bad = tmp / "run-fp16";
  r = train("pixelcnn", bad, "--precision fp16" + tiny);
  expect_clean_failure(r, "--precision");
  EXPECT_FALSE(std::filesystem::exists(bad));

  auto cfg = config_of(run_dir);
  cfg["train"]["precision"] = "fp8";
  tame::write_file_atomic(tame::join_path(run_dir, "config.json"), cfg.dump());
  r = run("train --out " + run_dir + " --resume --threads 1 --quiet", tmp);
  expect_clean_failure(r, "unknown precision 'fp8'");
}

// Binarized sets train on a fresh draw per batch by default; --fixed-binarization
// keeps the one fixed draw.
TEST_F(Cli, BinarizedSetsDrawEveryBatchAfreshByDefault) {
  struct Env {  // fashion-mnist read from the small IDX set, for this test only
    explicit Env(const std::string& dir) { setenv("TAME_FASHION_MNIST_DIR", dir.c_str(), 1); }
    ~Env() { unsetenv("TAME_FASHION_MNIST_DIR"); }
  } env(tmp / "data");
  const std::string common =
      " --data fashion-mnist-bin --epochs 1 --batch-size 16 --threads 1"
      " --set hidden=4 --set blocks=1 --set out_hidden=8";
  for (const std::string flag : {"", " --fixed-binarization"}) {
    std::string run_dir = tmp / ("run-bin" + std::to_string(flag.size()));
    auto r = run("train --model pixelcnn --out " + run_dir + common + flag, tmp);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_EQ(config_of(run_dir)["train"]["dynamic_binarization"], flag.empty()) << flag;
  }
  auto r = run("train --model pixelcnn --out " + (tmp / "both") + common +
                   " --fixed-binarization --dynamic-binarization",
               tmp);
  expect_clean_failure(r, "contradict");
}

// The two-stage model through the CLI: a vqvae, a prior trained on its codes,
// the pair evaluated (an upper bound) and sampled with --prior; a FID
// classifier trained on the fixture's labels scores the pair and a GAN, the
// same number twice; each misuse is one error line.
TEST_F(Cli, VqVaeWithPriorAndFid) {
  std::string vq = tmp / "run-vq", prior = tmp / "run-prior";
  auto r = train("vqvae", vq,
                 "--epochs 1 --batch-size 16 --set codes=8 --set code_dim=2 --set hidden=4 "
                 "--set res_blocks=1");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("train --model pixelcnn --data codes:" + vq + " --out " + prior +
              " --epochs 1 --batch-size 16 --threads 1 --set hidden=4 --set blocks=1 "
              "--set out_hidden=8",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;

  r = run("eval " + vq + " --prior " + prior + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"], "vqvae+pixelcnn");
  EXPECT_EQ(j["bound"], "upper");
  EXPECT_GT(j["bpd"].get<double>(), 0.0);
  EXPECT_TRUE(j.contains("prior_nats") && j.contains("codebook_usage") && j.contains("psnr_db"));
  r = run("eval " + vq + " --json --threads 1", tmp);  // alone: the uniform prior
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["kl_nats"].get<double>(), 4 * std::log(8.0));
  std::string png = tmp / "pair.png";
  r = run("sample " + vq + " --prior " + prior + " -n 4 --out " + png + " --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(png));
  expect_clean_failure(run("eval " + prior + " --prior " + vq + " --threads 1", tmp),
                       "is not a prior over the codes of");
  // The pair as a codec: compress, verify, decompress with the same prior.
  std::string packed = tmp / "pair.tamez";
  r = run("compress " + vq + " --prior " + prior + " --data " + data() + " --out " + packed +
              " --verify --json --threads 1",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto jc = nlohmann::json::parse(r.out);
  EXPECT_EQ(jc["model"], "vqvae+pixelcnn");
  r = run("decompress " + vq + " " + packed + " --prior " + prior + " --out " + (tmp / "back") +
              " --threads 2",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(tmp / "back/000009.png"));
  // Without its prior the vqvae is a codec of its own (uniform codes), not this file's.
  expect_clean_failure(run("decompress " + vq + " " + packed + " --out " + (tmp / "b2"), tmp),
                       "written by another model (vqvae+pixelcnn");

  std::string cls = tmp / "c.fidc";
  r = run("classifier --data " + data() + " --out " + cls + " --epochs 2 --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("test accuracy"), std::string::npos) << r.out;
  std::string gan = tmp / "run-gan";
  r = train("dcgan", gan, "--epochs 1 --batch-size 16 --set hidden=2 --set latent=4");
  ASSERT_EQ(r.code, 0) << r.err;
  // Classifier-based rejection: every kept sample, or one clear line.
  r = run("sample " + gan + " -n 6 --classifier " + cls +
              " --min-confidence 0.5 --threads 1 --out " + (tmp / "kept.png"),
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("kept 6 of"), std::string::npos) << r.out;
  EXPECT_TRUE(tame::file_exists(tmp / "kept.png"));
  expect_clean_failure(run("sample " + gan + " -n 50 --max-draws 10 --classifier " + cls +
                               " --threads 1 --out " + (tmp / "none.png"),
                           tmp),
                       "lower it or raise --max-draws");
  EXPECT_FALSE(tame::file_exists(tmp / "none.png"));
  expect_clean_failure(run("sample " + gan + " -n 2 --min-confidence 0.5", tmp),
                       "need --classifier");
  for (const std::string& run_args : {vq + " --prior " + prior, gan}) {
    std::string cmd = "eval " + run_args + " --fid 12 --classifier " + cls + " --json --threads 1";
    auto a = run(cmd, tmp), b = run(cmd, tmp);
    ASSERT_EQ(a.code, 0) << a.err;
    auto ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
    EXPECT_EQ(ja["fid"], jb["fid"]) << run_args;
    EXPECT_GT(ja["fid"].get<double>(), 0.0);
    EXPECT_EQ(ja["fid_samples"], 12);
    EXPECT_EQ(ja["fid_reference"], 10);
    EXPECT_EQ(ja["fid_classifier"]["data"], data());
  }
  r = run("eval " + gan + " --fid 12 --classifier " + cls + " --threads 1", tmp);
  EXPECT_NE(r.out.find("FID "), std::string::npos) << r.out;

  expect_clean_failure(run("eval " + gan + " --fid 12 --threads 1", tmp), "--classifier");
  std::string bytes = tame::read_file(cls);
  bytes[bytes.size() / 3] ^= 4;
  tame::write_file_atomic(tmp / "bad.fidc", bytes);
  expect_clean_failure(run("eval " + gan + " --fid 12 --classifier " + (tmp / "bad.fidc"), tmp),
                       "checksum");
  std::filesystem::create_directories(tmp / "unlabelled");
  for (const char* f : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
    std::filesystem::copy_file(tmp / ("data/" + std::string(f)),
                               tmp / ("unlabelled/" + std::string(f)));
  expect_clean_failure(run("classifier --data idx:" + (tmp / "unlabelled") + " --out " +
                               (tmp / "x.fidc") + " --threads 1",
                           tmp),
                       "has no labels");
  EXPECT_FALSE(tame::file_exists(tmp / "x.fidc"));
}

// VQ-VAE-2 through the CLI: a vqvae2, a transformer on its top codes, a gated
// PixelCNN on its bottom codes (made conditional on the top codes by the
// data, with no flag), the pair evaluated with both priors and sampled; the
// conditional prior alone evaluates over its own codes but does not sample;
// each misuse is one line.
TEST_F(Cli, VqVae2WithStagedPriors) {
  std::string vq = tmp / "run-vq2", top = tmp / "run-top", bottom = tmp / "run-bottom";
  auto r = train("vqvae2", vq,
                 "--epochs 1 --batch-size 16 --set codes=8 --set code_dim=2 --set hidden=4 "
                 "--set res_blocks=1");
  ASSERT_EQ(r.code, 0) << r.err;
  expect_clean_failure(run("train --model transformer --data codes:" + vq + " --out " +
                               (tmp / "x") + " --epochs 1 --threads 1",
                           tmp),
                       "codes:RUN:top first");
  expect_clean_failure(run("train --model pixelcnn --data codes:" + vq + ":bottom --out " +
                               (tmp / "x") + " --epochs 1 --threads 1",
                           tmp),
                       "is not a conditional model (gated-pixelcnn is)");
  r = run("train --model transformer --data codes:" + vq + ":top --out " + top +
              " --epochs 1 --batch-size 16 --threads 1 --set width=4 --set layers=1 --set heads=2 "
              "--set mlp=4",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  r = run("train --model gated-pixelcnn --data codes:" + vq + ":bottom --out " + bottom +
              " --epochs 1 --batch-size 16 --threads 1 --set hidden=4 --set layers=1 "
              "--set out_hidden=4",
          tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto cfg = nlohmann::json::parse(tame::read_file(bottom + "/config.json"));
  EXPECT_EQ(cfg["hparams"]["given"], 1);

  const std::string priors = " --prior " + top + " --prior " + bottom;
  r = run("eval " + vq + priors + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model"], "vqvae2+transformer+gated-pixelcnn");
  EXPECT_EQ(j["bound"], "upper");
  EXPECT_TRUE(j.contains("prior_nats_top") && j.contains("prior_nats_bottom") &&
              j.contains("top_codebook_usage"));
  std::string png = tmp / "pair2.png";
  r = run("sample " + vq + priors + " -n 4 --out " + png + " --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(tame::file_exists(png));
  r = run("eval " + bottom + " --json --threads 1", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto jb = nlohmann::json::parse(r.out);
  EXPECT_NEAR(jb["bpd"].get<double>(), jb["nll_nats"].get<double>() / (16 * std::log(2.0)), 1e-6);
  expect_clean_failure(run("sample " + bottom + " -n 2 --out " + (tmp / "b.png"), tmp),
                       "is conditional");
  expect_clean_failure(run("eval " + vq + " --prior " + top + " --threads 1", tmp),
                       "give one --prior for each, in order; got 1");
  expect_clean_failure(
      run("eval " + vq + " --prior " + bottom + " --prior " + top + " --threads 1", tmp),
      "must be over stage top");
  expect_clean_failure(run("compress " + vq + priors + " --data " + data() + " --out " +
                               (tmp / "v2.tamez") + " --threads 1",
                           tmp),
                       "cannot be used as a codec");
  EXPECT_FALSE(tame::file_exists(tmp / "v2.tamez"));
}
