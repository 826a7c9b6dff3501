// Files written by earlier versions of tame still decode, bit for bit, and the
// present encoder writes the same coded bytes as the first one did.
//
// tests/codec/fixtures/v1-*.tamez were written by the encoder of container
// version 1 from fixture_images() with the engines of fixture_engines.h, whose
// weights come from a fixed generator: the files pin down the coder, the CDF
// arithmetic and the engines' float kernels together.
#include <gtest/gtest.h>

#include "fixture_engines.h"
#include "tame/codec/model_codec.h"
#include "tame/io/file.h"
#include "tame/test_fixtures.h"

using namespace tame;

namespace {

std::string fixture_path(const std::string& name) {
  return std::string(TAME_FIXTURE_DIR) + "/" + name;
}

std::unique_ptr<StepEngine> fixture_engine(const std::string& kind) {
  using namespace fixtures;
  if (kind == "pixelcnn")
    return std::make_unique<PixelCNNEngine>(pixelcnn_net(), 1, kHeight, kWidth, kLevels);
  return std::make_unique<GatedPixelCNNEngine>(gated_net(), 1, kHeight, kWidth, kLevels);
}

std::vector<std::string> fixture_names() { return {"a.png", "b.png", "c.png", "d.png", "e.png"}; }

}  // namespace

// Run with --gtest_also_run_disabled_tests to write the fixtures again (only
// meaningful with the encoder of the version the files are named after).
TEST(CodecFixtures, DISABLED_Write) {
  const auto images = fixtures::fixture_images();
  for (const std::string kind : {"pixelcnn", "gated"}) {
    auto e = fixture_engine(kind);
    const auto names = kind == "pixelcnn" ? fixture_names() : std::vector<std::string>{};
    write_file_atomic(fixture_path("v1-" + kind + ".tamez"),
                      encode_images(*e, kind, images.data(), fixtures::kImages, names, 2, 1));
  }
}

TEST(CodecFixtures, Version1FilesDecodeToTheirImages) {
  const auto images = fixtures::fixture_images();
  for (const std::string kind : {"pixelcnn", "gated"}) {
    auto e = fixture_engine(kind);
    const std::string file = read_file(fixture_path("v1-" + kind + ".tamez"));
    auto d = decode_images(*e, file, 2);
    EXPECT_EQ(d.pixels, images) << kind;
    EXPECT_EQ(d.header.names, kind == "pixelcnn" ? fixture_names() : std::vector<std::string>{});
  }
}

// Today's encoder writes the bytes of version 1's.
TEST(CodecFixtures, EncoderWritesTheVersion1Bytes) {
  const auto images = fixtures::fixture_images();
  for (const std::string kind : {"pixelcnn", "gated"}) {
    auto e = fixture_engine(kind);
    const auto names = kind == "pixelcnn" ? fixture_names() : std::vector<std::string>{};
    EXPECT_EQ(encode_images(*e, kind, images.data(), fixtures::kImages, names, 2, 1),
              read_file(fixture_path("v1-" + kind + ".tamez")))
        << kind;
  }
}
