// tame sample RUN_DIR [--prior PRIOR_RUN] [-n N] [--out FILE.png] [--temperature T] [--seed S]
#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/train/run.h"

namespace tame::cli {

void add_sample(CLI::App& app) {
  struct Args {
    std::string run_dir, prior, out, device;
    int64_t n = 64, columns = 0;
    double temperature = 1.0;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("sample", "draw samples and write them as one PNG grid");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option("--prior", a->prior, "a prior trained on codes:RUN_DIR: sample the pair");
  c->add_option("-n", a->n, "number of samples")->capture_default_str();
  c->add_option("--out", a->out, "PNG file (default RUN_DIR/samples.png)");
  c->add_option("--temperature", a->temperature,
                "T < 1 sharpens: autoregressive models divide the logits by T, flows draw "
                "the base from N(0, T^2), latent models draw p(x|z) at T")
      ->capture_default_str();
  c->add_option("--seed", a->seed, "random seed")->capture_default_str();
  c->add_option("--columns", a->columns, "grid columns (0 = square)");
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  c->callback([=] {
    if (a->n < 1) throw Error("-n must be at least 1");
    if (!(a->temperature > 0)) throw Error("--temperature must be positive");
    set_threads(a->threads);
    RunConfig cfg;
    auto model = load_run_model(a->run_dir, a->prior, &cfg, a->device);
    std::string out = a->out.empty() ? join_path(a->run_dir, "samples.png") : a->out;
    torch::manual_seed(a->seed);
    auto t0 = std::chrono::steady_clock::now();
    auto x = model->sample(a->n, a->temperature);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_png(out, image_grid(x, cfg.levels, 2, a->columns));
    std::printf("wrote %lld samples to %s (%.1f s)\n", (long long)a->n, out.c_str(), secs);
  });
}

}  // namespace tame::cli
