// tame classifier --data SPEC --out FILE [--epochs E] [--seed S]
// Trains the classifier whose features define tame's FID for a data set
// (eval/fid.h) on its labelled training split and prints its test accuracy.
#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/eval/fid.h"
#include "tame/train/progress.h"

namespace tame::cli {

void add_classifier(CLI::App& app) {
  struct Args {
    std::string data = "fashion-mnist", out;
    ClassifierOptions options;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "classifier",
      "train the classifier whose features define FID for a data set (tame eval --fid)");
  c->add_option("--data", a->data, "a labelled data set (fashion-mnist, mnist, idx:DIR)")
      ->capture_default_str();
  c->add_option("--out", a->out, "classifier file to write")->required();
  c->add_option("--epochs", a->options.epochs, "epochs")->capture_default_str();
  c->add_option("--batch-size", a->options.batch_size, "images per step")->capture_default_str();
  c->add_option("--lr", a->options.lr, "Adam's learning rate")->capture_default_str();
  c->add_option("--seed", a->options.seed, "random seed")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->callback([=] {
    set_threads(a->threads);
    Dataset train = load_dataset(a->data, "train"), test = load_dataset(a->data, "test");
    if (train.levels != 256)
      throw Error("train the classifier on an 8-bit set (" + a->data + " has " +
                  std::to_string(train.levels) + " levels); it scores the binarized set too");
    Progress progress(30.0);
    auto c = train_classifier(train, test, a->options, [&](int64_t e, int64_t b, int64_t n) {
      progress.update("classifier  epoch " + std::to_string(e + 1) + "/" +
                      std::to_string(a->options.epochs) + "  batch " + std::to_string(b) + "/" +
                      std::to_string(n));
    });
    progress.finish();
    save_classifier(a->out, c);
    std::printf("wrote the %s classifier to %s: test accuracy %.2f%%\n", a->data.c_str(),
                a->out.c_str(), 100 * c.meta["test_accuracy"].get<double>());
  });
}

}  // namespace tame::cli
