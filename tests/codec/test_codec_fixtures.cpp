// Files written by earlier versions of tame still decode, bit for bit, and the
// present encoder writes the same coded bytes as the first one did.
//
// tests/codec/fixtures/v1-*.tamez were written by the encoder of container
// version 1 (its last commit carried the writer as a test) from
// fixture_images(), 5 images in blocks of 2, with the engines of
// fixture_engines.h, whose weights come from a fixed generator: the files pin
// down the coder, the CDF arithmetic and the engines' float kernels together.
// tests/codec/fixtures/v2-gated-rgb.tamez was written by the version-2 encoder
// at edad6f3, before the engines computed each colour's step on that colour's
// features alone, from fixture_rgb_images() (2 RGB images of 7x9, blocks of 1)
// with gated_rgb_net(): it pins down that split. v2-pixelcnn-rgb.tamez was
// written in the same way with pixelcnn_rgb_net() at 310b2ce, before the plain
// PixelCNN's blocks were split by colour.
#include <gtest/gtest.h>

#include "fixture_engines.h"
#include "tame/codec/model_codec.h"
#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/test_fixtures.h"
#include "tame/train/run.h"

using namespace tame;

namespace {

std::string fixture(const std::string& kind) {
  return read_file(std::string(TAME_FIXTURE_DIR) + "/v1-" + kind + ".tamez");
}

std::unique_ptr<StepEngine> fixture_engine(const std::string& kind) {
  using namespace fixtures;
  if (kind == "pixelcnn") return std::make_unique<PixelCNNEngine>(pixelcnn_net(), 1, kLevels);
  return std::make_unique<GatedPixelCNNEngine>(gated_net(), 1, kLevels);
}

std::vector<std::string> fixture_names(const std::string& kind) {
  if (kind != "pixelcnn") return {};
  return {"a.png", "b.png", "c.png", "d.png", "e.png"};
}

ImageList fixture_list(const std::string& kind) {
  const auto images = fixtures::fixture_images();
  return image_list(images.data(), fixtures::kImages, {1, fixtures::kHeight, fixtures::kWidth},
                    fixture_names(kind));
}

}  // namespace

TEST(CodecFixtures, Version1FilesDecodeToTheirImages) {
  for (const std::string kind : {"pixelcnn", "gated"}) {
    auto e = fixture_engine(kind);
    auto d = decode_images(*e, fixture(kind), 2);
    EXPECT_EQ(d.header.version, 1u);
    EXPECT_EQ(d.images.values, fixture_list(kind).values) << kind;
    EXPECT_EQ(d.images.names, fixture_names(kind));
    ASSERT_EQ(d.images.sizes.size(), 5u);
    EXPECT_EQ(d.images.sizes[4], (ImageSize{1, 8, 8}));
  }
}

// The present encoder writes version 2 around the same coded bytes: block by
// block, the payloads equal version 1's.
TEST(CodecFixtures, EncoderWritesTheVersion1Payloads) {
  for (const std::string kind : {"pixelcnn", "gated"}) {
    auto e = fixture_engine(kind);
    const std::string v1 = fixture(kind);
    const std::string v2 = encode_images(*e, kind, fixture_list(kind), 2, 1);
    const CodecHeader h1 = parse_header(v1), h2 = parse_header(v2);
    EXPECT_EQ(h2.version, 2u);
    ASSERT_EQ(h1.block_bytes, h2.block_bytes) << kind;
    for (size_t b = 0; b < h1.block_bytes.size(); ++b)
      EXPECT_EQ(v1.substr(h1.block_offset[b], h1.block_bytes[b]),
                v2.substr(h2.block_offset[b], h2.block_bytes[b]))
          << kind << " block " << b;
    EXPECT_EQ(decode_images(*e, v2, 1).images.values, fixture_list(kind).values);
  }
}

// The colour-split engines (each colour's step computes only its own
// features) decode the files the full-pass engines wrote, and write them again
// byte for byte.
TEST(CodecFixtures, ColourFileOfTheFullPassEngine) {
  const auto images = fixtures::fixture_rgb_images();
  const ImageList list = image_list(images.data(), 2, {3, 7, 9});
  for (const std::string kind : {"gated-rgb", "pixelcnn-rgb"}) {
    SCOPED_TRACE(kind);
    std::unique_ptr<StepEngine> e;
    if (kind == "gated-rgb")
      e = std::make_unique<GatedPixelCNNEngine>(fixtures::gated_rgb_net(), 3, fixtures::kLevels);
    else
      e = std::make_unique<PixelCNNEngine>(fixtures::pixelcnn_rgb_net(), 3, fixtures::kLevels);
    const std::string path = std::string(TAME_FIXTURE_DIR) + "/v2-" + kind + ".tamez";
    const std::string file = read_file(path);
    const auto d = decode_images(*e, file, 2);
    EXPECT_EQ(d.images.values, list.values);
    ASSERT_EQ(d.header.block_stored, (std::vector<uint8_t>{0, 0}));  // both blocks are rANS-coded
    EXPECT_EQ(encode_images(*e, kind, list, 1, 1), file);
  }
}

// v2-pixelcnn-pp/ holds a tiny pixelcnn++ run (2 filters, 2 components,
// trained on a gradient) and three RGB images of 7x9, 11x5 and 16x16 that the
// build of fb0c358 compressed with it (`tame compress RUN a.png b.png c.png
// --block 1`), under the frequency rule of the mixture's masses (rule 1), before
// the engine coded through the bin edges. The present engine decodes it through
// earlier_rule(), and that coder writes the same payloads again.
TEST(CodecFixtures, PixelCnnPPFileOfTheMassRule) {
  const std::string dir = std::string(TAME_FIXTURE_DIR) + "/v2-pixelcnn-pp";
  RunConfig cfg;
  auto model = std::dynamic_pointer_cast<AutoregressiveModel>(load_run_model(dir, {}, &cfg));
  ASSERT_TRUE(model);
  auto e = model->step_engine();
  const std::string file = read_file(dir + "/v2-pixelcnn-pp.tamez");
  const CodecHeader h = parse_header(file);
  // a and c are rANS-coded; b, which the model predicts worse than raw, stored.
  ASSERT_EQ(h.block_stored, (std::vector<uint8_t>{0, 1, 0}));
  EXPECT_NE(h.fingerprint, e->fingerprint());  // another rule, another fingerprint
  const auto masses = e->earlier_rule(h.fingerprint);
  ASSERT_TRUE(masses);
  EXPECT_EQ(masses->fingerprint(), h.fingerprint);
  EXPECT_FALSE(e->earlier_rule(h.fingerprint ^ 1));
  ImageList list;
  for (const char* name : {"a.png", "b.png", "c.png"}) {
    const torch::Tensor x = read_png(dir + "/" + name);
    list.sizes.push_back({x.size(0), x.size(1), x.size(2)});
    auto flat = x.flatten().to(torch::kInt32);
    for (int64_t k = 0; k < flat.numel(); ++k)
      list.values.push_back(static_cast<uint16_t>(flat[k].item<int>()));
  }
  const auto d = decode_images(*e, file, 2);
  EXPECT_EQ(d.images.values, list.values);
  ASSERT_EQ(d.images.sizes.size(), 3u);
  EXPECT_EQ(d.images.sizes[1], (ImageSize{3, 11, 5}));
  const std::string again = encode_images(*masses, "pixelcnn++", list, 1, 1, nullptr, true);
  const CodecHeader h2 = parse_header(again);
  ASSERT_EQ(h.block_bytes, h2.block_bytes);
  for (size_t b = 0; b < h.block_bytes.size(); ++b)
    EXPECT_EQ(file.substr(h.block_offset[b], h.block_bytes[b]),
              again.substr(h2.block_offset[b], h2.block_bytes[b]))
        << "block " << b;
  // The present rule writes its own file of the same images, which decodes.
  const std::string now = encode_images(*e, "pixelcnn++", list, 1, 1);
  EXPECT_EQ(parse_header(now).fingerprint, e->fingerprint());
  EXPECT_EQ(decode_images(*e, now, 1).images.values, list.values);
}

// A version-1 file names its model by a fingerprint that also hashed the image
// size: another model is refused as before.
TEST(CodecFixtures, Version1FileOfAnotherModelIsRefused) {
  auto other = fixture_engine("gated");
  EXPECT_THROW(decode_images(*other, fixture("pixelcnn"), 1), Error);
}
