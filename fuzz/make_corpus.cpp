// Writes the fuzz target's seed corpus: valid files for both fuzz engines,
// with and without stored names, one and several blocks.
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
  std::vector<uint8_t> images(16 * 5);
  for (size_t i = 0; i < images.size(); ++i) images[i] = static_cast<uint8_t>((i * 7 + i / 5) % 4);
  int k = 0;
  for (const auto* e : {gated.get(), pixelcnn.get()}) {
    const std::string name = e == gated.get() ? "gated" : "pixelcnn";
    auto put = [&](const std::string& bytes) {
      tame::write_file_atomic(tame::join_path(dir, "seed-" + std::to_string(k++)), bytes);
    };
    put(tame::encode_images(*e, name, images.data(), 1, {}, 64, 1));
    put(tame::encode_images(*e, name, images.data(), 5, {}, 2, 1));
    put(tame::encode_images(*e, name, images.data(), 3, {"a.png", "b.png", "c.png"}, 64, 1));
  }
  std::printf("wrote %d files to %s\n", k, dir.c_str());
  return 0;
}
