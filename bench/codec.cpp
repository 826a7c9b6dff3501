// Sampling and coding speed of a trained model with a codec. Prints JSON:
//   {"bench":"sampling", ...}: autoregressive models only: one batch of 64
//     samples, naive (a network pass per sub-pixel, LibTorch) against cached
//     (the step engine); the ratio.
//   {"bench":"codec", ...}: encode and decode images/s and bits/dim on the
//     run's test split (for a bits-back coder, also the chains' start).
//
//   bench_codec RUN_DIR [--threads T] [--limit N] [--samples 64] [--naive 0|1]
//               [--tile S] [--rule 1|2]
//
// --tile: code images larger than S x S as tiles (tame compress's default is
// 256; 0 here, whole images). --rule: a pixelcnn++ coder's frequency rule (1:
// the bin masses of the files written before the bin edges; 2: the edges, the
// default), so that one binary times both.
#include <chrono>
#include <cstdio>
#include <cstring>

#include "flags.h"
#include "tame/codec/model_codec.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/models/autoregressive/pixelcnn_pp_engine.h"
#include "tame/train/run.h"

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The baseline the step engine replaces: one network pass per sub-pixel, over
// the rows drawn so far (outputs on row i depend only on rows <= i), or over
// the whole image for a dense model, which takes one size only.
torch::Tensor sample_naive(tame::AutoregressiveModel& m, int64_t n) {
  c10::InferenceMode guard;
  const auto s = m.shape();
  auto x = torch::zeros({n, s.channels, s.height, s.width}, torch::kUInt8);
  for (int64_t i = 0; i < s.height; ++i)
    for (int64_t j = 0; j < s.width; ++j)
      for (int64_t c = 0; c < s.channels; ++c) {
        auto l = m.logits(m.any_size() ? x.slice(2, 0, i + 1) : x)
                     .select(4, j)
                     .select(3, i)
                     .select(2, c);
        auto drawn = torch::multinomial(torch::softmax(l.to(torch::kFloat), 1), 1).squeeze(1);
        x.select(1, c).select(1, i).select(1, j).copy_(drawn);
      }
  return x;
}
void bench_sampling(tame::AutoregressiveModel& model, const tame::RunConfig& cfg,
                    const std::string& run_dir, int64_t samples, int threads, bool naive) {
  const auto shape = model.shape();
  auto engine = model.step_engine();
  torch::manual_seed(0);
  auto t0 = std::chrono::steady_clock::now();
  tame::draw_images(*engine, samples, shape.height, shape.width, 1.0, 1, threads);
  const double cached = since(t0);
  nlohmann::json s = {{"bench", "sampling"}, {"model", cfg.model},
                      {"run", run_dir},      {"images", samples},
                      {"threads", threads},  {"malloc", tame::allocator_name()},
                      {"cached_s", cached},  {"cached_images_per_s", samples / cached}};
  if (naive) {
    t0 = std::chrono::steady_clock::now();
    sample_naive(model, samples);
    const double slow = since(t0);
    s["naive_s"] = slow;
    s["speedup"] = slow / cached;
  }
  std::printf("%s\n", s.dump().c_str());
  std::fflush(stdout);
}
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(
        stderr,
        "usage: bench_codec RUN_DIR [--threads T] [--limit N] [--samples 64] [--naive 0|1] "
        "[--tile S] [--rule 1|2]\n");
    return 2;
  }
  std::string run_dir = argv[1];
  tame::bench::Flags flags(argc, argv, 2);
  int threads = static_cast<int>(flags.integer("--threads", 0));
  int64_t limit = flags.integer("--limit", 0), samples = flags.integer("--samples", 64);
  bool naive = flags.integer("--naive", 1) != 0;
  const int64_t tile = flags.integer("--tile", 0), rule = flags.integer("--rule", 0);
  if (!flags.ok()) return 2;
  threads = tame::set_threads(threads);
  tame::RunConfig cfg;
  auto model = tame::load_trained_model(run_dir, &cfg, "cpu");
  std::unique_ptr<tame::ImageCoder> coder = model->coder();
  if (!coder) throw tame::Error(run_dir + ": model " + cfg.model + " is not a codec");
  if (rule != 0) {
    auto* pp = dynamic_cast<const tame::PixelCnnPPEngine*>(coder.get());
    if (!pp) throw tame::Error("--rule takes a pixelcnn++ run");
    coder = pp->with_rule(static_cast<int>(rule));
  }
  if (auto ar = std::dynamic_pointer_cast<tame::AutoregressiveModel>(model))
    bench_sampling(*ar, cfg, run_dir, samples, threads, naive);

  auto images = tame::load_dataset(cfg.data, "test").images;
  if (limit > 0 && limit < images.size(0)) images = images.slice(0, 0, limit);
  images = images.contiguous();
  const int64_t n = images.size(0), dims = n * images[0].numel();
  tame::EncodeStats stats;
  auto t0 = std::chrono::steady_clock::now();
  const auto list = tame::image_list(images.data_ptr<uint8_t>(),
                                     n,  // the test images' own size (photos: 640x400)
                                     {images.size(1), images.size(2), images.size(3)});
  tame::EncodeOptions o;
  o.threads = threads;
  o.tile = tile;
  auto file = tame::encode_images(*coder, cfg.model, list, o, &stats);
  const double enc = since(t0);
  t0 = std::chrono::steady_clock::now();
  auto back = tame::decode_images(*coder, file, threads);
  const double dec = since(t0);
  const bool ok = back.images.values == list.values;
  nlohmann::json c = {{"bench", "codec"},
                      {"model", cfg.model},
                      {"data", cfg.data + "/test"},
                      {"images", n},
                      {"threads", threads},
                      {"malloc", tame::allocator_name()},
                      {"tile", tile},
                      {"rule", rule},
                      {"bytes", static_cast<int64_t>(file.size())},
                      {"bpd", stats.file_bits / dims},
                      {"model_bpd", stats.model_bits / dims},
                      {"chain_bpd", stats.chain_bits / dims},
                      {"encode_images_per_s", n / enc},
                      {"decode_images_per_s", n / dec},
                      {"round_trip", ok ? "ok" : "FAILED"}};
  std::printf("%s\n", c.dump().c_str());
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_codec: error: %s\n", tame::first_line(e).c_str());
  return 1;
}
