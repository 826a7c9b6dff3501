// tame sample RUN_DIR [--prior PRIOR_RUN] [-n N] [--out FILE.png] [--temperature T] [--seed S]
//             [--classifier FILE --min-confidence P [--max-draws M]]
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/eval/fid.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/train/progress.h"
#include "tame/train/run.h"

namespace tame::cli {

void add_sample(CLI::App& app) {
  struct Args {
    std::string run_dir, out, device, classifier;
    std::vector<std::string> prior;
    int64_t n = 64, columns = 0, max_draws = 0;
    double temperature = 1.0, min_confidence = 0.0;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("sample", "draw samples and write them as one PNG grid");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option(
      "--prior", a->prior,
      "a prior trained on codes:RUN_DIR (one per stage, in order, for vqvae2): sample the pair");
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
  c->add_option("--classifier", a->classifier,
                "keep only samples this classifier (tame classifier) is confident about");
  c->add_option("--min-confidence", a->min_confidence,
                "with --classifier: the top-class probability a kept sample needs, in [0, 1]")
      ->capture_default_str();
  c->add_option("--max-draws", a->max_draws, "with --classifier: draws at most (0 = 20 n)");
  c->callback([=] {
    if (a->n < 1) throw Error("-n must be at least 1");
    if (!(a->temperature > 0)) throw Error("--temperature must be positive");
    set_threads(a->threads);
    RunConfig cfg;
    auto model = load_run_model(a->run_dir, a->prior, &cfg, a->device);
    std::string out = a->out.empty() ? join_path(a->run_dir, "samples.png") : a->out;
    torch::manual_seed(a->seed);
    if (a->classifier.empty() && (a->min_confidence != 0.0 || a->max_draws != 0))
      throw Error("--min-confidence and --max-draws need --classifier FILE");
    auto t0 = std::chrono::steady_clock::now();
    torch::Tensor x;
    if (a->classifier.empty()) {
      x = model->sample(a->n, a->temperature);
    } else {
      TrainedClassifier classifier = load_classifier(a->classifier);
      check_classifier_fits(classifier, cfg.data, model->shape());
      classifier.net->to(model->device());
      const int64_t max_draws = a->max_draws > 0 ? a->max_draws : 20 * a->n;
      Progress bar(30.0, !::isatty(2));  // a terminal only: in a log, a failure is one line
      auto r = sample_with_rejection(
          *model, *classifier.net, a->n, a->temperature, a->min_confidence, max_draws, 100,
          [&](int64_t kept, int64_t drawn) {
            bar.update("sample  kept " + std::to_string(kept) + "/" + std::to_string(a->n) +
                       " of " + std::to_string(drawn) + " draws");
          });
      bar.finish();
      if (r.images.size(0) < a->n)
        throw Error("kept " + std::to_string(r.images.size(0)) + " of " + std::to_string(a->n) +
                    " samples in " + std::to_string(r.drawn) + " draws at --min-confidence " +
                    std::to_string(a->min_confidence) + "; lower it or raise --max-draws");
      std::printf("kept %lld of %lld draws (%.1f%%) at confidence >= %.3f\n", (long long)a->n,
                  (long long)r.drawn, 100.0 * static_cast<double>(a->n) / r.drawn,
                  a->min_confidence);
      x = r.images;
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    write_png(out, image_grid(x, cfg.levels, 2, a->columns));
    std::printf("wrote %lld samples to %s (%.1f s)\n", (long long)a->n, out.c_str(), secs);
  });
}

}  // namespace tame::cli
