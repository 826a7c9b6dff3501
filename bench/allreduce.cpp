// What one bucketed allreduce costs between the ranks of a run on this
// machine: the RankGroup that tame train uses (c10d's ProcessGroupGloo over
// TCP on the loopback interface), summing float tensors of several sizes.
// Started without WORLD_SIZE it starts --nproc copies of itself as the ranks
// (as tame train --nproc does); rank 0 prints one JSON line per size: the
// median seconds per allreduce over --iters calls after --warmup, and the
// implied bus bandwidth 2 (W - 1) / W * bytes / seconds (a ring allreduce's
// traffic per rank).
//
//   build/bench_allreduce [--nproc 2] [--iters 50] [--warmup 5] [--threads 1]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "flags.h"
#include "tame/common.h"
#include "tame/train/data_parallel.h"

int main(int argc, char** argv) {
  tame::bench::Flags flags(argc, argv, 1);
  const int nproc = static_cast<int>(flags.integer("--nproc", 2));
  const int iters = static_cast<int>(flags.integer("--iters", 50));
  const int warmup = static_cast<int>(flags.integer("--warmup", 5));
  const int threads = static_cast<int>(flags.integer("--threads", 1));
  if (!flags.ok()) return 2;
  try {
    const tame::DistributedEnv env = tame::distributed_env();
    if (env.world_size == 1)
      return tame::run_local_ranks(nproc, std::vector<std::string>(argv, argv + argc), 30);
    tame::set_threads(threads);
    auto ranks = tame::connect_ranks(env, 60);
    // 4 KB (the loss and stop scalars' latency) up to 16 MB.
    for (int64_t bytes : {int64_t(4) << 10, int64_t(64) << 10, int64_t(512) << 10, int64_t(1) << 20,
                          int64_t(4) << 20, int64_t(16) << 20}) {
      auto t = torch::ones({bytes / 4});
      std::vector<double> seconds;
      for (int i = 0; i < warmup + iters; ++i) {
        ranks->reduce_({t});  // also lines the ranks up before the timed call
        const auto t0 = std::chrono::steady_clock::now();
        ranks->reduce_({t});
        const double s =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (i >= warmup) seconds.push_back(s);
        t.fill_(1.0f);
      }
      std::sort(seconds.begin(), seconds.end());
      const double median = seconds[seconds.size() / 2];
      const int w = ranks->size();
      if (ranks->rank() == 0)
        std::printf(
            "{\"bench\":\"allreduce\",\"ranks\":%d,\"bytes\":%lld,\"iters\":%d,"
            "\"median_s\":%.6f,\"bus_gb_per_s\":%.3f}\n",
            w, static_cast<long long>(bytes), iters, median,
            2.0 * (w - 1) / w * static_cast<double>(bytes) / median / 1e9);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_allreduce: %s\n", tame::first_line(e).c_str());
    return 1;
  }
  return 0;
}
