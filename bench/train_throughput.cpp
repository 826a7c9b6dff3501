// Training throughput of every registered model on Fashion-MNIST-shaped
// batches (1x28x28, 256 levels; --levels 2 for binarized digits): images per
// second for forward + backward + Adam step, as `tame train` steps (gradient
// clipping at 1.0 by default, like its --clip), after --warmup steps (the first
// steps allocate and tune the kernels). Prints one JSON object per model; flows
// run twice, with uniform and with variational dequantization. --set
// KEY=VALUE[,KEY=VALUE...] overrides defaults of the one --model; --precision
// bf16 steps as `tame train --precision bf16` does (autocast forward).
//
//   bench_train_throughput [--steps N] [--warmup N] [--clip C] [--batch B]
//                          [--threads T] [--model NAME] [--levels K]
//                          [--set KEY=VALUE[,KEY=VALUE...]] [--precision fp32|bf16]
#include <chrono>
#include <cstdio>
#include <cstring>

#include "flags.h"
#include "tame/common.h"
#include "tame/registry.h"

namespace {

/// "a=1,b=2" as the hyper-parameter overrides {"a": 1, "b": 2}.
nlohmann::json overrides(const std::string& set) {
  nlohmann::json out = nlohmann::json::object();
  size_t begin = 0;
  while (begin <= set.size() && !set.empty()) {
    const size_t end = std::min(set.find(',', begin), set.size());
    auto [key, value] = tame::parse_hparam(set.substr(begin, end - begin));
    out[key] = value;
    begin = end + 1;
  }
  return out;
}

int run(int argc, char** argv) {
  tame::bench::Flags flags(argc, argv, 1);
  const int64_t steps = flags.integer("--steps", 20);
  const int64_t warmup = flags.integer("--warmup", 5);
  const double clip = flags.number("--clip", 1.0);
  const int64_t batch = flags.integer("--batch", 32);  // the batch size the demo trains with
  int threads = static_cast<int>(flags.integer("--threads", 0));
  const std::string only = flags.text("--model", "");
  const int64_t levels = flags.integer("--levels", 256);
  const std::string set = flags.text("--set", "");
  const std::string precision = flags.text("--precision", "fp32");
  if (!flags.ok()) return 2;
  const torch::ScalarType compute = tame::parse_precision(precision);
  threads = tame::set_threads(threads);
  tame::ImageShape shape{1, 28, 28};
  for (const auto& e : tame::model_registry()) {
    if (!only.empty() && e.name != only) continue;
    std::vector<nlohmann::json> variants = {e.defaults};
    if (!set.empty()) variants[0] = tame::resolve_hparams(e.name, overrides(set));
    if (e.family == "flow") {
      variants.push_back(variants[0]);
      variants.back()["dequantization"] = "variational";
    }
    for (const auto& hp : variants) {
      torch::manual_seed(0);
      auto model = e.make(hp, shape, levels);
      // The model's own optimizers and step, as tame train runs them.
      auto optimizers = model->make_optimizers(1e-3);
      auto x = torch::randint(0, levels, {batch, 1, 28, 28}).to(torch::kUInt8);
      tame::StepContext ctx;
      ctx.clip = clip;
      ctx.precision = compute;
      auto step = [&] { model->train_step(x, optimizers, ctx); };
      for (int64_t i = 0; i < warmup; ++i) step();
      auto t0 = std::chrono::steady_clock::now();
      for (int64_t i = 0; i < steps; ++i) step();
      double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      int64_t params = 0;
      for (const auto& p : model->parameters()) params += p.numel();
      nlohmann::json j = {{"bench", "train_throughput"}, {"model", e.name}};
      if (hp.contains("dequantization")) j["dequantization"] = hp["dequantization"];
      if (!set.empty()) j["set"] = set;
      j.update(nlohmann::json{{"levels", levels},
                              {"batch", batch},
                              {"threads", threads},
                              {"malloc", tame::allocator_name()},
                              {"steps", steps},
                              {"warmup", warmup},
                              {"clip", clip},
                              {"precision", precision},
                              {"parameters", params},
                              {"images_per_s", steps * batch / secs}});
      std::printf("%s\n", j.dump().c_str());
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train_throughput: %s\n", e.what());
    return 1;
  }
}
