// tame eval RUN_DIR [--split test|train] [--limit N] [--iw-samples K] [--json]
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/eval/evaluate.h"
#include "tame/train/batches.h"
#include "tame/train/progress.h"
#include "tame/train/run.h"

namespace tame::cli {

namespace {

void print_eval(const RunConfig& cfg, const std::string& split, const EvalResult& r,
                const nlohmann::json& extra, bool json) {
  const bool scored = r.bound != Bound::kNone;
  if (json) {
    nlohmann::json j = {{"model", cfg.model},
                        {"data", cfg.data},
                        {"split", split},
                        {"images", r.images},
                        {"bound", bound_name(r.bound)}};
    if (scored) {
      j["nll_nats"] = r.nll_nats;
      j["bpd"] = r.bpd;
      j["iw_samples"] = r.iw_samples;
    }
    j.update(extra);
    std::printf("%s\n", j.dump().c_str());
    return;
  }
  if (scored)
    std::printf("%s on %s/%s (%lld images): %.4f bits/dim, %.2f nats/image (%s)\n",
                cfg.model.c_str(), cfg.data.c_str(), split.c_str(), (long long)r.images, r.bpd,
                r.nll_nats, r.bound == Bound::kExact ? "exact" : "upper bound");
  else
    std::printf("%s has no likelihood: no bits/dim on %s/%s\n", cfg.model.c_str(), cfg.data.c_str(),
                split.c_str());
  if (!extra.empty()) std::printf("%s\n", extra.dump().c_str());
}

}  // namespace

void add_eval(CLI::App& app) {
  struct Args {
    std::string run_dir, split = "test", device;
    int64_t limit = 0, iw_samples = 1,
            batch_size = 32;  // 32 keeps 256-way logits under glibc's mmap threshold
    int threads = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("eval", "bits/dim of a trained model on a dataset split");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option("--split", a->split, "test or train")->capture_default_str();
  c->add_option("--limit", a->limit, "evaluate the first N images only (0 = all)");
  c->add_option("--iw-samples", a->iw_samples, "importance samples K for models with a bound")
      ->capture_default_str();
  c->add_option("--batch-size", a->batch_size, "images per batch")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  c->add_flag("--json", a->json, "print one JSON object");
  c->callback([=] {
    set_threads(a->threads);
    if (a->limit < 0 || a->iw_samples < 1 || a->batch_size < 1)
      throw Error("--limit must be >= 0, --iw-samples and --batch-size >= 1");
    RunConfig cfg;
    auto model = load_trained_model(a->run_dir, &cfg, a->device);
    Dataset ds = load_run_data(cfg.data, a->split);
    auto images = images_to_score(cfg, *model, ds.images);
    if (a->limit > 0 && a->limit < images.size(0)) images = images.slice(0, 0, a->limit);
    Progress progress(30.0, a->json && !::isatty(2));
    auto r =
        evaluate(*model, images, a->batch_size, a->iw_samples, [&](int64_t done, int64_t total) {
          progress.update("eval  " + std::to_string(done) + "/" + std::to_string(total) +
                          " images");
        });
    progress.finish();
    const nlohmann::json extra = model->diagnostics(images);  // e.g. a VAE's KL and active units
    print_eval(cfg, a->split, r, extra, a->json);
  });
}

}  // namespace tame::cli
