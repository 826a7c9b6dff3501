// The model codec: exact round trips, files at the model's -log2 p, the same
// bytes whatever the thread count or block split, and refusal of every kind of
// damaged or foreign file.
#include <gtest/gtest.h>

#include <cmath>

#include "tame/codec/model_codec.h"
#include "tame/error.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/registry.h"

using namespace tame;

namespace {

std::unique_ptr<StepEngine> engine_for(const std::string& name, ImageShape shape, int64_t levels,
                                       uint64_t seed) {
  torch::manual_seed(seed);
  nlohmann::json hp = name == "pixelcnn"
                          ? nlohmann::json{{"hidden", 6}, {"blocks", 1}, {"out_hidden", 12}}
                          : nlohmann::json{{"hidden", 6}, {"layers", 2}, {"out_hidden", 12}};
  auto m = std::dynamic_pointer_cast<AutoregressiveModel>(make_model(name, hp, shape, levels));
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.mul_(2.0);
  return m->step_engine();
}

// Images the model finds fairly likely: its own samples, plus noise images.
std::vector<uint8_t> test_images(const StepEngine& e, int64_t n) {
  auto x = sample_engine(e, n, 1.0, 9);
  return std::vector<uint8_t>(x.data_ptr<uint8_t>(), x.data_ptr<uint8_t>() + x.numel());
}

std::string expect_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no Error thrown";
  return "";
}

}  // namespace

TEST(ModelCodec, RoundTripAtTheModelsCostForAnyThreadsAndBlocks) {
  for (auto [name, C, K] : {std::tuple{"gated-pixelcnn", 1, 256}, std::tuple{"pixelcnn", 3, 16}}) {
    auto e = engine_for(name, {C, 6, 5}, K, 1);
    const int64_t n = 13;
    auto images = test_images(*e, n);
    EncodeStats stats;
    std::string file = encode_images(*e, name, images.data(), n, {}, 4, 1, &stats);
    auto back = decode_images(*e, file, 1);
    EXPECT_EQ(back.pixels, images) << name;
    EXPECT_EQ(back.header.count, n);
    EXPECT_EQ(back.header.model_name, name);
    // Quantization costs almost nothing; the file adds its header and 8 bytes per block.
    EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * stats.model_bits + 0.01);
    EXPECT_GT(stats.file_bits, stats.ideal_bits);
    EXPECT_LT(stats.file_bits, stats.ideal_bits + 8 * (60.0 + 16 * 4 + 32));
    // Threads only pick which blocks run where: identical bytes, identical decode.
    EXPECT_EQ(encode_images(*e, name, images.data(), n, {}, 4, 3), file);
    EXPECT_EQ(decode_images(*e, file, 4).pixels, images);
    // Another block size is another file, with the same images.
    std::string one_block = encode_images(*e, name, images.data(), n, {}, 64, 2);
    EXPECT_LT(one_block.size(), file.size());
    EXPECT_EQ(decode_images(*e, one_block, 1).pixels, images);
  }
}

TEST(ModelCodec, StoresNames) {
  auto e = engine_for("gated-pixelcnn", {1, 4, 4}, 4, 2);
  auto images = test_images(*e, 2);
  std::string file =
      encode_images(*e, "gated-pixelcnn", images.data(), 2, {"a.png", "b.png"}, 64, 1);
  EXPECT_EQ(parse_header(file).names, (std::vector<std::string>{"a.png", "b.png"}));
  EXPECT_THROW(encode_images(*e, "g", images.data(), 2, {"../a.png", "b.png"}, 64, 1), Error);
  EXPECT_THROW(encode_images(*e, "g", images.data(), 2, {"a.png"}, 64, 1), Error);
}

TEST(ModelCodec, RefusesValuesOutsideTheLevels) {
  auto e = engine_for("gated-pixelcnn", {1, 4, 4}, 4, 2);
  std::vector<uint8_t> images(16, 1);
  images[7] = 4;
  EXPECT_NE(
      expect_error([&] { encode_images(*e, "g", images.data(), 1, {}, 64, 1); }).find("levels"),
      std::string::npos);
}

TEST(ModelCodec, RefusesAnotherModel) {
  auto e = engine_for("gated-pixelcnn", {1, 6, 5}, 16, 1);
  auto other = engine_for("gated-pixelcnn", {1, 6, 5}, 16, 2);  // same architecture, other weights
  auto shape = engine_for("gated-pixelcnn", {1, 5, 6}, 16, 1);
  auto images = test_images(*e, 3);
  std::string file = encode_images(*e, "gated-pixelcnn", images.data(), 3, {}, 64, 1);
  EXPECT_NE(expect_error([&] { decode_images(*other, file, 1); }).find("another model"),
            std::string::npos);
  EXPECT_NE(expect_error([&] { decode_images(*shape, file, 1); }).find("1x6x5"), std::string::npos);
}

// Every truncation and every single-byte change of a small file is refused
// with an Error: the checksums cover every byte.
TEST(ModelCodec, DetectsEveryTruncationAndCorruption) {
  auto e = engine_for("gated-pixelcnn", {1, 4, 4}, 16, 3);
  auto images = test_images(*e, 5);
  const std::string file = encode_images(*e, "gated-pixelcnn", images.data(), 5,
                                         {"x.png", "y.png", "z.png", "u.png", "v.png"}, 2, 1);
  for (size_t len = 0; len < file.size(); ++len)
    EXPECT_THROW(decode_images(*e, file.substr(0, len), 1), Error) << "truncated to " << len;
  EXPECT_THROW(decode_images(*e, file + "x", 1), Error);
  for (size_t pos = 0; pos < file.size(); ++pos) {
    std::string bad = file;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (pos % 8)));
    EXPECT_THROW(decode_images(*e, bad, 1), Error) << "byte " << pos;
  }
  EXPECT_NE(
      expect_error([&] { decode_images(*e, "PNG garbage", 1); }).find("not a tame compressed file"),
      std::string::npos);
}

TEST(ModelCodec, QuantizedPmfKeepsEverySymbol) {
  std::vector<uint32_t> cdf(257);
  for (float spread : {0.0f, 1.0f, 30.0f, 1e4f}) {
    std::vector<float> logits(256);
    for (int k = 0; k < 256; ++k)
      logits[k] = spread * std::sin(0.37f * k) + (k == 17 ? 5 * spread : 0.0f);
    logits_to_cdf(logits.data(), 256, kCodecPrecision, cdf.data());
    EXPECT_EQ(cdf[0], 0u);
    EXPECT_EQ(cdf[256], 1u << kCodecPrecision);
    for (int k = 0; k < 256; ++k)
      EXPECT_GE(cdf[k + 1], cdf[k] + 1) << "level " << k << " spread " << spread;
    if (spread == 0.0f) {
      for (int k = 1; k < 256; ++k)
        EXPECT_EQ(cdf[k + 1] - cdf[k], cdf[2] - cdf[1]);  // uniform stays uniform
    }
  }
}
