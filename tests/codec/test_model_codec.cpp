// The model codec: exact round trips, files at the model's -log2 p, the same
// bytes whatever the thread count or block split, images of many sizes in one
// file, and refusal of every kind of damaged or foreign file.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../test_util.h"
#include "tame/codec/model_codec.h"
#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/registry.h"

using namespace tame;

namespace {

std::unique_ptr<StepEngine> engine_for(const std::string& name, int64_t C, int64_t levels,
                                       uint64_t seed) {
  torch::manual_seed(seed);
  nlohmann::json hp = name == "pixelcnn"
                          ? nlohmann::json{{"hidden", 6}, {"blocks", 1}, {"out_hidden", 12}}
                          : nlohmann::json{{"hidden", 6}, {"layers", 2}, {"out_hidden", 12}};
  if (name == "pixelrnn") hp["layer"] = "diagonal-bilstm";  // the one with a row-late pass
  if (name == "pixelcnn++") hp = {{"filters", 5}, {"resnets", 1}, {"mixtures", 3}};
  auto m = std::dynamic_pointer_cast<AutoregressiveModel>(
      make_model(name, hp, ImageShape{C, 8, 8}, levels));
  torch::NoGradGuard g;
  for (auto& p : m->parameters()) p.mul_(2.0);
  return m->step_engine();
}

// Images the model finds fairly likely: its own samples.
ImageList test_images(const StepEngine& e, int64_t n, int64_t H, int64_t W, uint64_t seed = 9) {
  ImageList list;
  list.sizes.assign(n, ImageSize{e.channels(), H, W});
  list.values = draw_images(e, n, H, W, 1.0, seed, 1);
  return list;
}

ImageList concat(const ImageList& a, const ImageList& b) {
  ImageList out = a;
  out.sizes.insert(out.sizes.end(), b.sizes.begin(), b.sizes.end());
  out.values.insert(out.values.end(), b.values.begin(), b.values.end());
  return out;
}

}  // namespace

TEST(ModelCodec, RoundTripAtTheModelsCostForAnyThreadsAndBlocks) {
  for (auto [name, C, K] : {std::tuple{"gated-pixelcnn", 1, 256}, std::tuple{"pixelcnn", 3, 16},
                            std::tuple{"pixelrnn", 3, 16}, std::tuple{"pixelcnn++", 3, 256}}) {
    auto e = engine_for(name, C, K, 1);
    const int64_t n = 13;
    auto images = test_images(*e, n, 6, 5);
    EncodeStats stats;
    std::string file = encode_images(*e, name, images, 4, 1, &stats);
    auto back = decode_images(*e, file, 1);
    EXPECT_EQ(back.images.values, images.values) << name;
    EXPECT_EQ(back.header.count, n);
    EXPECT_EQ(back.header.model_name, name);
    // Quantization costs almost nothing; the file adds its header and 8 bytes per block.
    EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * stats.model_bits + 0.01);
    EXPECT_GT(stats.file_bits, stats.ideal_bits);
    EXPECT_LT(stats.file_bits, stats.ideal_bits + 8 * (80.0 + 16 * 4 + 32));
    // Threads only pick which blocks run where: identical bytes, identical decode.
    EXPECT_EQ(encode_images(*e, name, images, 4, 3), file);
    EXPECT_EQ(decode_images(*e, file, 4).images.values, images.values);
    // Another block size is another file, with the same images.
    std::string one_block = encode_images(*e, name, images, 64, 2);
    EXPECT_LT(one_block.size(), file.size());
    EXPECT_EQ(decode_images(*e, one_block, 1).images.values, images.values);
  }
}

// The progress callback sees every block once, in increasing counts, ending
// at the image count, whatever the thread count; the file does not change.
TEST(ModelCodec, ReportsProgressPerBlock) {
  auto e = engine_for("pixelcnn", 1, 16, 4);
  auto images = test_images(*e, 11, 5, 4);
  for (int threads : {1, 3}) {
    std::vector<int64_t> seen;
    auto record = [&](int64_t done, int64_t total, const char* unit) {
      EXPECT_EQ(total, 11);
      EXPECT_STREQ(unit, "images");
      seen.push_back(done);
    };
    EncodeOptions o;
    o.block = 3;
    o.threads = threads;
    o.progress = record;
    const std::string file = encode_images(*e, "pixelcnn", images, o);
    EXPECT_EQ(file, encode_images(*e, "pixelcnn", images, 3, 1));
    ASSERT_EQ(seen.size(), 4u);  // blocks of 3, 3, 3, 2
    EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));
    EXPECT_EQ(seen.back(), 11);
    seen.clear();
    EXPECT_EQ(decode_images(*e, file, threads, record).images.values, images.values);
    ASSERT_EQ(seen.size(), 4u);
    EXPECT_EQ(seen.back(), 11);
  }
}

// A fully convolutional model codes images of any size, 1x1, 1xN and Nx1
// included, in one file; blocks never mix sizes.
TEST(ModelCodec, ImagesOfManySizesInOneFile) {
  auto e = engine_for("gated-pixelcnn", 1, 16, 4);
  ImageList images = test_images(*e, 3, 6, 5);
  for (auto [H, W] : {std::pair{1, 1}, std::pair{1, 9}, std::pair{7, 1}, std::pair{4, 4}})
    images = concat(images, test_images(*e, 2, H, W, 10 + H * W));
  images = concat(images, test_images(*e, 2, 6, 5, 3));  // the first size again
  const std::string file = encode_images(*e, "gated-pixelcnn", images, 2, 2);
  auto back = decode_images(*e, file, 3);
  EXPECT_EQ(back.images.values, images.values);
  ASSERT_EQ(back.images.sizes.size(), images.sizes.size());
  for (size_t i = 0; i < images.sizes.size(); ++i)
    EXPECT_EQ(back.images.sizes[i], images.sizes[i]) << i;
  // 3 + 4 * 2 + 2 images in runs of 3, 2, 2, 2, 2, 2: blocks of at most 2.
  EXPECT_EQ(back.header.block_images, (std::vector<int64_t>{2, 1, 2, 2, 2, 2, 2}));
}

// Images larger than the tile side are coded as independent tiles, one block
// each: odd sizes (1xN, Nx1, sides that are no multiple of the tile) round-trip
// exactly, grey and RGB, with the same bytes at any thread count; images no
// larger than a tile are coded whole, in the same file as without tiling; and
// a tiled file costs a little more than a whole-image one.
TEST(ModelCodec, LargeImagesAreCodedAsTiles) {
  for (auto [name, C] : {std::pair{"gated-pixelcnn", 1}, std::pair{"pixelcnn", 3}}) {
    auto e = engine_for(name, C, 16, 8);
    ImageList images = test_images(*e, 1, 37, 53, 1);
    for (auto [H, W] : {std::pair{1, 40}, std::pair{33, 1}, std::pair{16, 16}, std::pair{5, 7}})
      images = concat(images, test_images(*e, 1, H, W, 2 + H * W));
    EncodeOptions o;
    o.block = 4;
    o.tile = 16;
    o.threads = 1;
    EncodeStats tiled, whole;
    const std::string file = encode_images(*e, name, images, o, &tiled);
    o.threads = 3;
    EXPECT_EQ(encode_images(*e, name, images, o), file) << name;
    std::vector<std::string> units;  // what the progress counts: tiles, 20 of them
    const auto back = decode_images(*e, file, 2, [&](int64_t, int64_t total, const char* unit) {
      EXPECT_EQ(total, 20);
      units.push_back(unit);
    });
    EXPECT_EQ(back.images.values, images.values) << name;
    EXPECT_EQ(back.header.tile, 16);
    EXPECT_EQ(units, std::vector<std::string>(20, "tiles"));  // one call per block
    // 37x53: 3 x 4 tiles; 1x40: 3; 33x1: 3; 16x16 and 5x7 whole, in one block.
    EXPECT_EQ(back.header.units.size(), 12u + 3 + 3 + 2);
    EXPECT_EQ(back.header.block_first.size(), 12u + 3 + 3 + 1 + 1);
    EXPECT_EQ(back.header.units[7].size, (ImageSize{C, 16, 5}));  // row 1 ends 53 - 48 wide
    EXPECT_EQ(back.header.units[11].size, (ImageSize{C, 5, 5}));  // the corner
    const std::string plain = encode_images(*e, name, images, 4, 1, &whole);
    EXPECT_EQ(decode_images(*e, plain, 1).images.values, images.values);
    EXPECT_NE(plain, file);
    EXPECT_GT(tiled.model_bits, whole.model_bits) << name;  // tiles lose context at borders
    EXPECT_LT(tiled.model_bits, 1.2 * whole.model_bits) << name;
    // Nothing larger than a tile: the file of whole images, no tile field.
    ImageList small = test_images(*e, 3, 16, 9, 4);
    o.tile = 16;
    EXPECT_EQ(encode_images(*e, name, small, o), encode_images(*e, name, small, 4, 1));
  }
}

// A tiled file keeps the container's guarantees: every truncation and every
// changed byte is refused, and so is a tile side out of range.
TEST(ModelCodec, TiledFilesDetectEveryTruncationAndCorruption) {
  auto e = engine_for("gated-pixelcnn", 1, 16, 3);
  EncodeOptions o;
  o.tile = 8;
  const std::string file = encode_images(*e, "gated-pixelcnn", test_images(*e, 1, 11, 9), o);
  for (size_t n = 0; n < file.size(); ++n)
    EXPECT_THROW(decode_images(*e, file.substr(0, n), 1), Error) << n;
  for (size_t i = 0; i < file.size(); ++i) {
    std::string bad = file;
    bad[i] = static_cast<char>(bad[i] ^ 0x20);
    EXPECT_THROW(decode_images(*e, bad, 1), Error) << i;
  }
  o.tile = 4;
  EXPECT_THROW(encode_images(*e, "gated-pixelcnn", test_images(*e, 1, 11, 9), o), Error);
}

TEST(ModelCodec, StoresNames) {
  auto e = engine_for("gated-pixelcnn", 1, 4, 2);
  auto images = test_images(*e, 2, 4, 4);
  images.names = {"a.png", "b.png"};
  std::string file = encode_images(*e, "gated-pixelcnn", images, 64, 1);
  EXPECT_EQ(parse_header(file).names, (std::vector<std::string>{"a.png", "b.png"}));
  images.names = {"../a.png", "b.png"};
  EXPECT_THROW(encode_images(*e, "g", images, 64, 1), Error);
  images.names = {"a.png"};
  EXPECT_THROW(encode_images(*e, "g", images, 64, 1), Error);
}

TEST(ModelCodec, RefusesValuesOutsideTheLevelsAndOtherChannels) {
  auto e = engine_for("gated-pixelcnn", 1, 4, 2);
  std::vector<uint8_t> pixels(16, 1);
  pixels[7] = 4;
  EXPECT_NE(tame::testing::error_of([&] {
              encode_images(*e, "g", image_list(pixels.data(), 1, {1, 4, 4}), 64, 1);
            }).find("levels"),
            std::string::npos);
  pixels[7] = 0;
  EXPECT_NE(tame::testing::error_of([&] {
              encode_images(*e, "g", image_list(pixels.data(), 1, {2, 2, 4}), 64, 1);
            }).find("channels"),
            std::string::npos);
}

// Values up to 2^16: a model of 300 levels codes and decodes them.
TEST(ModelCodec, SixteenBitValues) {
  auto e = engine_for("pixelcnn", 1, 300, 5);
  auto images = test_images(*e, 3, 4, 3);
  images.values[5] = 299;
  const std::string file = encode_images(*e, "pixelcnn", images, 64, 1);
  EXPECT_EQ(decode_images(*e, file, 1).images.values, images.values);
  EXPECT_EQ(parse_header(file).levels, 300);
}

TEST(ModelCodec, RefusesAnotherModel) {
  auto e = engine_for("gated-pixelcnn", 1, 16, 1);
  auto other = engine_for("gated-pixelcnn", 1, 16, 2);  // same architecture, other weights
  auto levels = engine_for("gated-pixelcnn", 1, 8, 1);
  auto colour = engine_for("gated-pixelcnn", 3, 16, 1);
  auto images = test_images(*e, 3, 6, 5);
  std::string file = encode_images(*e, "gated-pixelcnn", images, 64, 1);
  EXPECT_NE(tame::testing::error_of([&] { decode_images(*other, file, 1); }).find("another model"),
            std::string::npos);
  EXPECT_NE(tame::testing::error_of([&] { decode_images(*levels, file, 1); }).find("16 levels"),
            std::string::npos);
  EXPECT_NE(tame::testing::error_of([&] { decode_images(*colour, file, 1); }).find("1x6x5"),
            std::string::npos);
}

// Every truncation and every single-byte change of a small file is refused
// with an Error: the checksums cover every byte.
TEST(ModelCodec, DetectsEveryTruncationAndCorruption) {
  auto e = engine_for("gated-pixelcnn", 1, 16, 3);
  auto images = concat(test_images(*e, 3, 4, 4), test_images(*e, 2, 3, 5));
  images.names = {"x.png", "y.png", "z.png", "u.png", "v.png"};
  const std::string file = encode_images(*e, "gated-pixelcnn", images, 2, 1);
  for (size_t len = 0; len < file.size(); ++len)
    EXPECT_THROW(decode_images(*e, file.substr(0, len), 1), Error) << "truncated to " << len;
  EXPECT_THROW(decode_images(*e, file + "x", 1), Error);
  for (size_t pos = 0; pos < file.size(); ++pos) {
    std::string bad = file;
    bad[pos] = static_cast<char>(bad[pos] ^ (1 << (pos % 8)));
    EXPECT_THROW(decode_images(*e, bad, 1), Error) << "byte " << pos;
  }
  EXPECT_NE(tame::testing::error_of([&] {
              decode_images(*e, "PNG garbage", 1);
            }).find("not a tame compressed file"),
            std::string::npos);
}

// A header that declares more image bytes than tame decodes at once is
// refused before anything is allocated for them.
TEST(ModelCodec, RefusesHugeDeclaredSizes) {
  auto e = engine_for("gated-pixelcnn", 1, 16, 3);
  std::string file = encode_images(*e, "gated-pixelcnn", test_images(*e, 1, 4, 4), 64, 1);
  // The image count and the one run's count raised to 2^31 (32 GiB of 4x4
  // images); the header's CRC fixed, so that only the size check stands.
  const size_t name_len = static_cast<uint8_t>(file[24]);
  const size_t run = 25 + name_len + 4 + 4 + 8 + 4 + 4 + 4;
  std::string big = file;
  for (int b = 0; b < 8; ++b) big[run + b] = b == 3 ? char(0x80) : char(0);
  const size_t count = 25 + name_len + 8;
  for (int b = 0; b < 8; ++b) big[count + b] = b == 3 ? char(0x80) : char(0);
  const uint32_t meta_len = static_cast<uint8_t>(file[12]) | static_cast<uint8_t>(file[13]) << 8;
  std::string head = big.substr(0, 16 + meta_len);
  std::string fixed = head;
  put_u32(fixed, crc32_of(head));
  fixed += big.substr(16 + meta_len + 4);
  EXPECT_NE(tame::testing::error_of([&] { parse_header(fixed); }).find("GiB"), std::string::npos);
}

// The block codec composes with others on one message: a symbol, a block of
// 4x4 images and a block of 2x7 images pushed together pop back in order, and
// the message is empty again.
TEST(ModelCodec, BlockCodecComposes) {
  auto e = engine_for("pixelcnn", 1, 16, 6);
  auto a = test_images(*e, 3, 4, 4), b = test_images(*e, 2, 2, 7, 8);
  const Codec<ImageBlock> first = block_codec(*e, 3, {1, 4, 4}),
                          second = block_codec(*e, 2, {1, 2, 7});
  const Codec<uint32_t> flag = symbol_codec({0, 1u << 23, 1u << 24}, 24);
  RansMessage m;
  second.push(m, {{1, 2, 7}, 2, b.values});
  first.push(m, {{1, 4, 4}, 3, a.values});
  flag.push(m, 1);
  EXPECT_EQ(flag.pop(m), 1u);
  EXPECT_EQ(first.pop(m).values, a.values);
  EXPECT_EQ(second.pop(m).values, b.values);
  EXPECT_TRUE(rans_empty(m));
}

// A block the model codes worse than raw is stored raw (one byte per value up
// to 256 levels, two above), so no file costs much more than its raw bytes;
// the blocks it codes well stay rANS; both decode; every byte of a stored
// block is under the checksums.
TEST(ModelCodec, BlocksTheModelCodesBadlyAreStored) {
  for (int64_t K : {256, 512}) {
    auto e = engine_for("pixelcnn", 1, K, 3);
    // Uniform noise in one block, the model's own samples (at T = 0.3) in the next.
    ImageList noise;
    noise.sizes.assign(4, ImageSize{1, 8, 8});
    torch::manual_seed(11);
    auto v = torch::randint(0, K, {4 * 64}, torch::kLong);
    for (int64_t k = 0; k < v.size(0); ++k)
      noise.values.push_back(static_cast<uint16_t>(v[k].item<int64_t>()));
    ImageList likely;
    likely.sizes.assign(4, ImageSize{1, 8, 8});
    likely.values = draw_images(*e, 4, 8, 8, 0.3, 5, 1);
    const ImageList both = concat(noise, likely);
    const std::string plain = encode_images(*e, "pixelcnn", both, 4, 1);
    const std::string file = encode_images(*e, "pixelcnn", both, 4, 1, nullptr, true);
    const auto h = parse_header(file);
    ASSERT_EQ(h.block_stored.size(), 2u);
    EXPECT_EQ(h.block_stored[1], 0) << K;
    EXPECT_EQ(decode_images(*e, file, 2).images.values, both.values);
    EXPECT_EQ(parse_header(plain).block_stored, (std::vector<uint8_t>{0, 0}));
    if (K == 512) {
      // Two bytes a value lose to rANS even on noise (about 9 bits): not stored.
      EXPECT_EQ(h.block_stored[0], 0);
      EXPECT_EQ(file, plain);
      continue;
    }
    EXPECT_EQ(h.block_stored[0], 1);
    EXPECT_EQ(h.block_bytes[0], 4u * 64u);
    EXPECT_LT(file.size(), plain.size());
    EXPECT_LE(file.size(), plain.size() - parse_header(plain).block_bytes[0] + 4 * 64 + 2);
    for (size_t at = 0; at < file.size(); ++at) {
      std::string bad = file;
      bad[at] = static_cast<char>(bad[at] ^ 0x01);
      EXPECT_THROW(decode_images(*e, bad, 1), Error) << "byte " << at;
    }
  }
}
