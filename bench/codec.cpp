// Sampling and coding speed of a trained autoregressive model. Prints JSON:
//   {"bench":"sampling", ...}: one batch of 64 samples, naive (a network pass
//     per sub-pixel, LibTorch) against cached (the step engine); the ratio.
//   {"bench":"codec", ...}: encode and decode images/s and bits/dim on a
//     dataset split (default: the full Fashion-MNIST test set).
//
//   bench_codec RUN_DIR [--threads T] [--limit N] [--samples 64] [--naive 0|1]
#include <chrono>
#include <cstdio>
#include <cstring>

#include "tame/codec/model_codec.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/train/run.h"

namespace {
double since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) try {
  if (argc < 2) {
    std::fprintf(
        stderr,
        "usage: bench_codec RUN_DIR [--threads T] [--limit N] [--samples 64] [--naive 0|1]\n");
    return 2;
  }
  std::string run_dir = argv[1];
  int threads = 0;
  int64_t limit = 0, samples = 64;
  bool naive = true;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads"))
      threads = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--limit"))
      limit = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--samples"))
      samples = std::atoll(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--naive"))
      naive = std::atoi(argv[i + 1]) != 0;
  }
  threads = tame::set_threads(threads);
  tame::RunConfig cfg;
  auto model = std::dynamic_pointer_cast<tame::AutoregressiveModel>(
      tame::load_trained_model(run_dir, &cfg, "cpu"));
  if (!model) throw tame::Error(run_dir + ": not an autoregressive model");
  auto engine = model->step_engine();

  torch::manual_seed(0);
  auto t0 = std::chrono::steady_clock::now();
  tame::sample_engine(*engine, samples, 1.0, 1);
  const double cached = since(t0);
  nlohmann::json s = {{"bench", "sampling"},
                      {"model", cfg.model},
                      {"run", run_dir},
                      {"images", samples},
                      {"threads", threads},
                      {"cached_s", cached},
                      {"cached_images_per_s", samples / cached}};
  if (naive) {
    t0 = std::chrono::steady_clock::now();
    model->sample_naive(samples, 1.0);
    const double slow = since(t0);
    s["naive_s"] = slow;
    s["speedup"] = slow / cached;
  }
  std::printf("%s\n", s.dump().c_str());
  std::fflush(stdout);

  auto images = tame::load_dataset(cfg.data, "test").images;
  if (limit > 0 && limit < images.size(0)) images = images.slice(0, 0, limit);
  images = images.contiguous();
  const int64_t n = images.size(0), dims = n * images[0].numel();
  tame::EncodeStats stats;
  t0 = std::chrono::steady_clock::now();
  auto file = tame::encode_images(*engine, cfg.model, images.data_ptr<uint8_t>(), n, {}, 64,
                                  threads, &stats);
  const double enc = since(t0);
  t0 = std::chrono::steady_clock::now();
  auto back = tame::decode_images(*engine, file, threads);
  const double dec = since(t0);
  const bool ok =
      std::memcmp(back.pixels.data(), images.data_ptr<uint8_t>(), back.pixels.size()) == 0;
  nlohmann::json c = {{"bench", "codec"},
                      {"model", cfg.model},
                      {"data", cfg.data + "/test"},
                      {"images", n},
                      {"threads", threads},
                      {"bytes", static_cast<int64_t>(file.size())},
                      {"bpd", stats.file_bits / dims},
                      {"model_bpd", stats.model_bits / dims},
                      {"encode_images_per_s", n / enc},
                      {"decode_images_per_s", n / dec},
                      {"round_trip", ok ? "ok" : "FAILED"}};
  std::printf("%s\n", c.dump().c_str());
  return ok ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "bench_codec: error: %s\n", tame::first_line(e).c_str());
  return 1;
}
