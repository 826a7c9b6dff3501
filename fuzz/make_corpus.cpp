// Writes the fuzz target's seed corpus: valid files for both fuzz engines,
// with and without stored names, one and several blocks, one image size and
// several; bits-back files, one with a stored block; flow files of one image
// and of five in two blocks; codes-coder files of one image and of five. (Version 1 files written
// by an earlier make_corpus stay in the corpus beside them.)
#include <cstdio>
#include <string>
#include <vector>

#include "fuzz_engines.h"
#include "tame/codec/model_codec.h"
#include "tame/io/file.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_corpus DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  auto gated = tame::fuzz::gated_engine();
  auto pixelcnn = tame::fuzz::pixelcnn_engine();
  std::vector<uint8_t> pixels(16 * 5);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>((i * 7 + i / 5) % 4);
  int k = 0;
  for (const auto* e : {gated.get(), pixelcnn.get()}) {
    const std::string name = e == gated.get() ? "gated" : "pixelcnn";
    auto put = [&](const std::string& bytes) {
      tame::write_file_atomic(tame::join_path(dir, "v2-seed-" + std::to_string(k++)), bytes);
    };
    const tame::ImageSize s{1, 4, 4};
    put(tame::encode_images(*e, name, tame::image_list(pixels.data(), 1, s), 64, 1));
    put(tame::encode_images(*e, name, tame::image_list(pixels.data(), 5, s), 2, 1));
    put(tame::encode_images(
        *e, name, tame::image_list(pixels.data(), 3, s, {"a.png", "b.png", "c.png"}), 64, 1));
    // Three sizes in one file: 4x4, 2x8, 1x3.
    auto mixed = tame::image_list(pixels.data(), 2, s);
    for (tame::ImageSize t : {tame::ImageSize{1, 2, 8}, tame::ImageSize{1, 1, 3}}) {
      auto more = tame::image_list(pixels.data(), 1, t);
      mixed.sizes.push_back(t);
      mixed.values.insert(mixed.values.end(), more.values.begin(), more.values.end());
    }
    put(tame::encode_images(*e, name, mixed, 64, 1));
  }
  // Bits-back chains of one image and of five in two blocks; and a stored
  // block: one image's chain start costs more than its 16 raw bytes.
  auto bits_back = tame::fuzz::bits_back_coder();
  const tame::ImageSize s{1, 4, 4};
  for (int64_t n : {1, 5})
    tame::write_file_atomic(
        tame::join_path(dir, "v2-seed-" + std::to_string(k++)),
        tame::encode_images(*bits_back, "vae", tame::image_list(pixels.data(), n, s), 3, 1));
  const std::string stored = tame::encode_images(
      *bits_back, "vae", tame::image_list(pixels.data(), 1, s), 1, 1, nullptr, true);
  if (tame::parse_header(stored).block_stored.at(0) != 1) {
    std::fprintf(stderr, "make_corpus: the stored seed was not stored\n");
    return 1;
  }
  tame::write_file_atomic(tame::join_path(dir, "v2-seed-" + std::to_string(k++)), stored);
  auto flow = tame::fuzz::flow_coder();
  for (int64_t n : {1, 5})
    tame::write_file_atomic(
        tame::join_path(dir, "v2-seed-" + std::to_string(k++)),
        tame::encode_images(*flow, "glow", tame::image_list(pixels.data(), n, s), 3, 1));
  auto codes = tame::fuzz::codes_coder();
  for (int64_t n : {1, 5})
    tame::write_file_atomic(
        tame::join_path(dir, "v2-seed-" + std::to_string(k++)),
        tame::encode_images(*codes, "vqvae", tame::image_list(pixels.data(), n, s), 3, 1));
  std::printf("wrote %d files to %s\n", k, dir.c_str());
  return 0;
}
