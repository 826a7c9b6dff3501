// tame baselines --data SPEC [--split test|train] [--limit N] [--threads T] [--json]
#include "tame/codec/baselines.h"

#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/common.h"
#include "tame/data/datasets.h"

namespace tame::cli {

void add_baselines(CLI::App& app) {
  struct Args {
    std::string data, split = "test";
    int64_t limit = 0;
    int threads = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "baselines",
      "bits/dim of PNG, WebP lossless, JPEG-XL lossless (and JBIG1) on a dataset split");
  c->add_option("--data", a->data, "dataset spec (see `tame data`)")->required();
  c->add_option("--split", a->split, "test or train")->capture_default_str();
  c->add_option("--limit", a->limit, "the first N images only (0 = all)");
  c->add_option("--threads", a->threads, "worker threads (0 = all)");
  c->add_flag("--json", a->json, "print one JSON object per codec per line");
  c->footer(
      "One file per image, whole file bytes counted; bits/dim = 8 * bytes / (N*C*H*W).\n"
      "png: optipng -o7's search through libpng, webp: cwebp -lossless -z 9 -exact,\n"
      "jxl: cjxl -q 100 -e 9. Bilevel sets (K = 2) also get JBIG1 (jbigkit), PNG at bit\n"
      "depth 1 and JPEG-XL at 1 bit per sample. Every file is decoded and compared.");
  c->callback([=] {
    if (a->limit < 0) throw Error("--limit must be >= 0");
    if (a->threads < 0) throw Error("--threads must be >= 0");
    Dataset ds = load_dataset(a->data, a->split);
    auto images = ds.images;
    if (a->limit > 0 && a->limit < images.size(0)) images = images.slice(0, 0, a->limit);
    if (images.size(0) == 0) throw Error(a->data + "/" + a->split + ": no images");
    if (images.size(1) != 1 && images.size(1) != 3)
      throw Error(a->data + ": the codecs take gray or RGB images, got " + ds.shape().str());
    auto results = measure_baselines(images, a->threads, ds.levels == 2 ? 2 : 256);

    const auto n = static_cast<long long>(images.size(0));
    if (!a->json) {
      std::printf("%s/%s: %lld images of %s, K=%lld, one file per image\n", a->data.c_str(),
                  a->split.c_str(), n, ds.shape().str().c_str(), (long long)ds.levels);
      std::printf("%-6s %12s %9s %11s %9s\n", "codec", "bytes", "bits/dim", "round trip",
                  "seconds");
    }
    bool all_ok = true;
    for (const auto& r : results) {
      all_ok = all_ok && r.round_trip_ok;
      if (a->json) {
        nlohmann::json j = {{"codec", r.codec},
                            {"data", a->data},
                            {"split", a->split},
                            {"images", n},
                            {"bytes", r.bytes},
                            {"bpd", r.bits_per_dim},
                            {"round_trip_ok", r.round_trip_ok},
                            {"seconds", r.seconds},
                            {"fallback_images", r.fallback_images}};
        std::printf("%s\n", j.dump().c_str());
      } else {
        std::printf("%-6s %12lld %9.4f %11s %9.2f\n", r.codec.c_str(), (long long)r.bytes,
                    r.bits_per_dim, r.round_trip_ok ? "ok" : "FAILED", r.seconds);
      }
    }
    for (const auto& r : results)
      if (r.fallback_images > 0 && !a->json)
        std::printf(
            "note: libjxl 0.7 aborts at effort %d on some small or nearly constant images "
            "(cjxl -e %d crashes on them); %lld images were encoded at effort %d\n",
            kJxlEffort, kJxlEffort, (long long)r.fallback_images, kJxlFallbackEffort);
    if (!all_ok) {
      std::fflush(stdout);
      std::fprintf(stderr, "tame: error: a codec did not decode every image exactly\n");
      g_exit_code = 1;
    }
  });
}

}  // namespace tame::cli
