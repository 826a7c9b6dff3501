// Training throughput of every registered model on Fashion-MNIST-shaped
// batches (1x28x28, 256 levels): images per second for forward + backward +
// Adam step, after warm-up. Prints one JSON object per model; flows run twice,
// with uniform and with variational dequantization.
//
//   bench_train_throughput [--steps N] [--batch B] [--threads T] [--model NAME]
#include <chrono>
#include <cstdio>
#include <cstring>

#include "flags.h"
#include "tame/common.h"
#include "tame/registry.h"

int main(int argc, char** argv) {
  tame::bench::Flags flags(argc, argv, 1);
  const int64_t steps = flags.integer("--steps", 10);
  const int64_t batch = flags.integer("--batch", 32);  // the batch size the demo trains with
  int threads = static_cast<int>(flags.integer("--threads", 0));
  const std::string only = flags.text("--model", "");
  if (!flags.ok()) return 2;
  threads = tame::set_threads(threads);
  tame::ImageShape shape{1, 28, 28};
  for (const auto& e : tame::model_registry()) {
    if (!only.empty() && e.name != only) continue;
    std::vector<nlohmann::json> variants = {e.defaults};
    if (e.family == "flow") {
      variants.push_back(e.defaults);
      variants.back()["dequantization"] = "variational";
    }
    for (const auto& hp : variants) {
      torch::manual_seed(0);
      auto model = e.make(hp, shape, 256);
      // The model's own optimizers and step, as tame train runs them (without clipping).
      auto optimizers = model->make_optimizers(1e-3);
      auto x = torch::randint(0, 256, {batch, 1, 28, 28}).to(torch::kUInt8);
      tame::StepContext ctx;
      auto step = [&] { model->train_step(x, optimizers, ctx); };
      for (int i = 0; i < 2; ++i) step();
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) step();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      int64_t params = 0;
      for (const auto& p : model->parameters()) params += p.numel();
      const std::string deq =
          hp.contains("dequantization") ? hp["dequantization"].get<std::string>() : "";
      std::printf(
          "{\"bench\":\"train_throughput\",\"model\":\"%s\",%s\"batch\":%lld,\"threads\":%d,"
          "\"steps\":%lld,"
          "\"parameters\":%lld,\"images_per_s\":%.1f}\n",
          e.name.c_str(), deq.empty() ? "" : ("\"dequantization\":\"" + deq + "\",").c_str(),
          (long long)batch, threads, (long long)steps, (long long)params, steps * batch / secs);
      std::fflush(stdout);
    }
  }
  return 0;
}
