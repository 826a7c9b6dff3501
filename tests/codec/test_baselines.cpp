// The classical lossless codecs: exact round trips, sane sizes, the set
// measurement, and `tame baselines` through the real binary.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>

#include "../test_util.h"
#include "tame/codec/baselines.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/io/png.h"

using tame::testing::TempDir;

namespace {

struct Codec {
  std::string name;
  std::function<std::string(const torch::Tensor&)> encode;
  std::function<torch::Tensor(const std::string&, int64_t channels)> decode;
};

std::vector<Codec> codecs() {
  return {
      {"png", [](const torch::Tensor& x) { return tame::encode_png_best(x); },
       [](const std::string& b, int64_t) { return tame::decode_png(b); }},
      {"webp", tame::encode_webp_lossless, tame::decode_webp},
      {"jxl", [](const torch::Tensor& x) { return tame::encode_jxl_lossless(x); },
       [](const std::string& b, int64_t) { return tame::decode_jxl(b); }},
  };
}

torch::Tensor noise(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, 256, {c, h, w}).to(torch::kUInt8);
}

// Gradients plus mild noise, different in each channel.
torch::Tensor structured(int64_t c, int64_t h, int64_t w, uint64_t seed) {
  auto img = tame::testing::synthetic_images(c, h, w, seed);  // [c, 1, h, w]
  return img.squeeze(1).contiguous();
}

double bits_per_dim(const std::string& bytes, const torch::Tensor& image) {
  return 8.0 * double(bytes.size()) / double(image.numel());
}

}  // namespace

TEST(Baselines, EveryCodecRoundTripsGrayAndRgbExactly) {
  for (const auto& codec : codecs())
    for (int64_t c : {1, 3}) {
      std::vector<torch::Tensor> images = {noise(c, 17, 23, 1), structured(c, 28, 28, 2),
                                           torch::full({c, 9, 5}, 200, torch::kUInt8),
                                           noise(c, 1, 1, 3), structured(c, 3, 40, 4)};
      for (const auto& img : images) {
        std::string bytes = codec.encode(img);
        auto back = codec.decode(bytes, c);
        ASSERT_EQ(back.sizes(), img.sizes()) << codec.name;
        EXPECT_TRUE(torch::equal(back, img)) << codec.name << " " << img.sizes();
      }
    }
}

TEST(Baselines, SizesAreSane) {
  for (int64_t c : {1, 3}) {
    auto flat = torch::full({c, 32, 32}, 77, torch::kUInt8), rnd = noise(c, 32, 32, 5);
    for (const auto& codec : codecs()) {
      double flat_bpd = bits_per_dim(codec.encode(flat), flat),
             noise_bpd = bits_per_dim(codec.encode(rnd), rnd);
      EXPECT_LT(flat_bpd, 1.0) << codec.name << " C=" << c;
      EXPECT_GT(noise_bpd, 7.5) << codec.name << " C=" << c;  // noise does not compress
      EXPECT_LT(noise_bpd, 9.5) << codec.name << " C=" << c;  // but costs little more than 8 bits
    }
  }
  // The search never does worse than libpng's own choice at level 9.
  auto img = structured(1, 28, 28, 6);
  EXPECT_LE(tame::encode_png_best(img).size(), tame::encode_png(img, 9).size());
}

TEST(Baselines, PngOptionsAreHonouredAndDecode) {
  auto img = structured(3, 20, 20, 7);
  tame::PngOptions o;
  for (o.filter = 0; o.filter <= 5; ++o.filter)
    for (o.strategy = 0; o.strategy <= 3; ++o.strategy)
      EXPECT_TRUE(torch::equal(tame::decode_png(tame::encode_png(img, o)), img));
  o.filter = 9;
  EXPECT_THROW(tame::encode_png(img, o), c10::Error);
}

TEST(Baselines, BadInputGivesErrors) {
  const std::string junk = "RIFF\x10\x00\x00\x00WEBPVP8L garbage";
  EXPECT_THROW(tame::decode_webp(junk), tame::Error);
  EXPECT_THROW(tame::decode_jxl("\xff\x0a not really"), tame::Error);
  EXPECT_THROW(tame::decode_png("not a png"), tame::Error);
  auto jxl = tame::encode_jxl_lossless(noise(1, 8, 8, 8));
  EXPECT_THROW(tame::decode_jxl(jxl.substr(0, jxl.size() / 2)), tame::Error);
  // A colour image cannot come back as gray.
  EXPECT_THROW(tame::decode_webp(tame::encode_webp_lossless(noise(3, 4, 4, 9)), 1), tame::Error);
  EXPECT_THROW(tame::encode_jxl_lossless(torch::zeros({2, 4, 4}, torch::kUInt8)), c10::Error);
  EXPECT_THROW(tame::encode_webp_lossless(torch::zeros({1, 4, 4}, torch::kFloat)), c10::Error);
}

// libjxl 0.7 aborts at effort 9 on small near-constant images (a debug
// assertion left on); the encoder recovers and uses effort 7 for them.
TEST(Baselines, JxlFallsBackWhereLibjxlAborts) {
  auto flat = torch::full({1, 8, 8}, 255, torch::kUInt8);
  int effort = 0;
  auto bytes = tame::encode_jxl_lossless(flat, &effort);
  EXPECT_EQ(effort, tame::kJxlFallbackEffort);
  EXPECT_TRUE(torch::equal(tame::decode_jxl(bytes), flat));
  tame::encode_jxl_lossless(structured(1, 28, 28, 3), &effort);
  EXPECT_EQ(effort, tame::kJxlEffort);

  auto images = torch::stack({flat, structured(1, 8, 8, 4), flat});
  auto results = tame::measure_baselines(images, 2);
  EXPECT_EQ(results[2].codec, "jxl");
  EXPECT_EQ(results[2].fallback_images, 2);
  EXPECT_TRUE(results[2].round_trip_ok);
  EXPECT_EQ(results[0].fallback_images, 0);
}

TEST(Baselines, MeasureSumsOneFilePerImage) {
  for (int64_t c : {1, 3}) {
    auto images =
        torch::stack({structured(c, 12, 10, 10), noise(c, 12, 10, 11), structured(c, 12, 10, 12)});
    auto results = tame::measure_baselines(images, 2);
    ASSERT_EQ(results.size(), 3u);
    auto list = codecs();
    for (size_t k = 0; k < results.size(); ++k) {
      const auto& r = results[k];
      EXPECT_EQ(r.codec, list[k].name);
      EXPECT_EQ(r.codec, tame::baseline_codecs()[k]);
      int64_t bytes = 0;
      for (int64_t i = 0; i < images.size(0); ++i) bytes += list[k].encode(images[i]).size();
      EXPECT_EQ(r.bytes, bytes) << r.codec;
      EXPECT_DOUBLE_EQ(r.bits_per_dim, 8.0 * bytes / (3 * c * 12 * 10)) << r.codec;
      EXPECT_TRUE(r.round_trip_ok) << r.codec;
      EXPECT_GE(r.seconds, 0.0);
    }
    // The thread count changes nothing but the time.
    auto one = tame::measure_baselines(images, 1);
    for (size_t k = 0; k < results.size(); ++k) EXPECT_EQ(one[k].bytes, results[k].bytes);
  }
}

// Binary images (K = 2) get each codec's bilevel form and JBIG1: every file
// decodes to its image, PNG at bit depth 1 is smaller than at 8 bits, and
// values other than 0 and 1 are refused.
TEST(Baselines, BilevelImagesGetTheBilevelForms) {
  auto grey = torch::stack({structured(1, 28, 28, 5), structured(1, 28, 28, 6)});
  auto images = grey.gt(grey.to(torch::kFloat).mean()).to(torch::kUInt8);
  ASSERT_GT(images.sum().item<int64_t>(), 100);
  auto results = tame::measure_baselines(images, 2, 2);
  ASSERT_EQ(results.size(), 4u);
  EXPECT_EQ(tame::baseline_codecs(2), (std::vector<std::string>{"png", "webp", "jxl", "jbig"}));
  for (size_t k = 0; k < results.size(); ++k) {
    EXPECT_EQ(results[k].codec, tame::baseline_codecs(2)[k]);
    EXPECT_TRUE(results[k].round_trip_ok) << results[k].codec;
    EXPECT_GT(results[k].bytes, 0) << results[k].codec;
  }
  const auto eight_bit = tame::measure_baselines(images * 255, 2);
  EXPECT_LT(results[0].bytes, eight_bit[0].bytes);
  // JBIG1 by itself: the image back, black and white.
  auto white = images[0] * 255;
  EXPECT_TRUE(torch::equal(tame::decode_jbig(tame::encode_jbig_best(white)), white));
  EXPECT_THROW(tame::decode_jbig("not a jbig file"), tame::Error);
  EXPECT_THROW(tame::decode_jbig(""), tame::Error);
  EXPECT_THROW(tame::measure_baselines(images * 2, 1, 2), c10::Error);
}

namespace {

using tame::testing::run_tame;

std::vector<std::string> split_lines(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = s.find('\n', start)) != std::string::npos; start = nl + 1)
    out.push_back(s.substr(start, nl - start));
  return out;
}

}  // namespace

TEST(BaselinesCli, ReportsEveryCodecAndFailsCleanly) {
  TempDir tmp;
  tame::testing::write_idx_dataset(tmp / "data", 4, 6, 8, 8);
  const std::string data = "idx:" + (tmp / "data");

  auto r = run_tame("baselines --data " + data + " --split test --threads 2 --json", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  auto lines = split_lines(r.out);
  ASSERT_EQ(lines.size(), 3u) << r.out;
  int64_t png_bytes = 0;
  for (size_t k = 0; k < lines.size(); ++k) {
    auto j = nlohmann::json::parse(lines[k]);
    EXPECT_EQ(j["codec"], tame::baseline_codecs()[k]);
    EXPECT_EQ(j["images"], 6);
    EXPECT_EQ(j["split"], "test");
    EXPECT_EQ(j["round_trip_ok"], true);
    EXPECT_NEAR(j["bpd"].get<double>(), 8.0 * j["bytes"].get<double>() / (6 * 64), 1e-9);
    if (k == 0) png_bytes = j["bytes"];
  }
  // The same numbers as the library gives.
  auto ds = tame::load_dataset(data, "test");
  EXPECT_EQ(png_bytes, tame::measure_baselines(ds.images, 1)[0].bytes);

  r = run_tame("baselines --data " + data + " --limit 2", tmp);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("2 images of 1x8x8"), std::string::npos) << r.out;
  for (const char* codec : {"png ", "webp ", "jxl "})
    EXPECT_NE(r.out.find(codec), std::string::npos) << r.out;
  EXPECT_EQ(split_lines(r.out).size(), 5u) << r.out;

  // One error line and a non-zero exit.
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"baselines --data nowhere", "unknown dataset"},
      {"baselines --data " + data + " --limit -1", "--limit"}};
  for (const auto& [args, needle] : bad) {
    r = run_tame(args, tmp);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_EQ(split_lines(r.err).size(), 1u) << args << ": " << r.err;
    EXPECT_EQ(r.err.rfind("tame: error: ", 0), 0u) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  }
}
