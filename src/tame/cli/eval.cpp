// tame eval RUN_DIR [--prior PRIOR_RUN] [--split test|train] [--limit N] [--iw-samples K]
//           [--fid N --classifier FILE [--seed S] [--min-confidence P]] [--json]
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/eval/evaluate.h"
#include "tame/eval/fid.h"
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
  if (extra.contains("fid"))
    std::printf(
        "FID %.3f: %lld samples against %lld %s images (the %s classifier, %.2f%% test "
        "accuracy)\n",
        extra["fid"].get<double>(), (long long)extra["fid_samples"].get<int64_t>(),
        (long long)extra["fid_reference"].get<int64_t>(), split.c_str(),
        extra["fid_classifier"]["data"].get<std::string>().c_str(),
        100 * extra["fid_classifier"]["test_accuracy"].get<double>());
}

}  // namespace

void add_eval(CLI::App& app) {
  struct Args {
    std::string run_dir, split = "test", device, classifier;
    std::vector<std::string> prior;
    int64_t limit = 0, iw_samples = 1, fid = 0,
            batch_size = 32;  // 32 keeps 256-way logits under glibc's mmap threshold
    int threads = 0;
    uint64_t seed = 0;
    double min_confidence = 0;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("eval", "bits/dim of a trained model on a dataset split");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option(
      "--prior", a->prior,
      "a prior trained on codes:RUN_DIR (one per stage, in order, for vqvae2): evaluate the "
      "pair's bound "
      "-log p(x|z) - log p(z)");
  c->add_option("--split", a->split, "test or train")->capture_default_str();
  c->add_option("--limit", a->limit, "evaluate the first N images only (0 = all)");
  c->add_option("--iw-samples", a->iw_samples, "importance samples K for models with a bound")
      ->capture_default_str();
  c->add_option("--batch-size", a->batch_size, "images per batch")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  c->add_option("--fid", a->fid,
                "also score N samples by FID against the whole split (needs --classifier)");
  c->add_option("--classifier", a->classifier, "FID classifier file (tame classifier)");
  c->add_option("--seed", a->seed, "random seed of the FID samples")->capture_default_str();
  c->add_option("--min-confidence", a->min_confidence,
                "with --fid: score only samples the classifier is this confident about "
                "(classifier-based rejection)")
      ->capture_default_str();
  c->add_flag("--json", a->json, "print one JSON object");
  c->callback([=] {
    set_threads(a->threads);
    if (a->limit < 0 || a->iw_samples < 1 || a->batch_size < 1 || a->fid < 0)
      throw Error("--limit and --fid must be >= 0, --iw-samples and --batch-size >= 1");
    if (a->fid > 0 && a->classifier.empty())
      throw Error("--fid needs --classifier FILE (train one with tame classifier)");
    if (a->min_confidence != 0 && a->fid == 0) throw Error("--min-confidence needs --fid N");
    TrainedClassifier classifier;
    if (a->fid > 0) classifier = load_classifier(a->classifier);
    RunConfig cfg;
    auto model = load_run_model(a->run_dir, a->prior, &cfg, a->device);
    if (a->fid > 0) check_classifier_fits(classifier, cfg.data, model->shape());
    Dataset ds = load_run_data(cfg.data, a->split);
    const auto all = images_to_score(cfg, *model, ds.images);
    auto images = all;
    if (a->limit > 0 && a->limit < images.size(0)) images = images.slice(0, 0, a->limit);
    Progress progress(30.0, a->json && !::isatty(2));
    auto r =
        evaluate(*model, images, a->batch_size, a->iw_samples, [&](int64_t done, int64_t total) {
          progress.update("eval  " + std::to_string(done) + "/" + std::to_string(total) +
                          " images");
        });
    progress.finish();
    nlohmann::json extra = model->diagnostics(images);  // e.g. a VAE's KL and active units
    if (a->fid > 0) {
      auto f = model_fid(
          *model, *classifier.net, all, a->fid, a->seed, 100,
          [&](int64_t done, int64_t total) {
            progress.update("fid  sampled " + std::to_string(done) + "/" + std::to_string(total));
          },
          a->min_confidence);
      progress.finish();
      extra["fid"] = f.fid;
      extra["fid_samples"] = f.samples;
      if (a->min_confidence > 0) {
        extra["fid_min_confidence"] = a->min_confidence;
        extra["fid_drawn"] = f.drawn;
      }
      extra["fid_reference"] = f.reference;
      extra["fid_classifier"] = {{"data", classifier.meta["data"]},
                                 {"test_accuracy", classifier.meta["test_accuracy"]}};
    }
    print_eval(cfg, a->split, r, extra, a->json);
  });
}

}  // namespace tame::cli
