// What tame's FID reads on real images, for the scale of a model's score:
// the first N training images, and N images of uniform noise, each scored
// against the whole test split in a classifier's features (eval/fid.h). The
// training images are what a perfect model's N samples would score (the
// floor at that N); noise is a model that learned nothing. Prints JSON lines.
//
//   bench_fid_reference CLASSIFIER [--data fashion-mnist] [--n 1000] [--seed 0]
#include <cstdio>

#include "flags.h"
#include "tame/data/datasets.h"
#include "tame/eval/fid.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: bench_fid_reference CLASSIFIER [--data D] [--n N] [--seed S]\n");
    return 2;
  }
  tame::bench::Flags flags(argc, argv, 2);
  const std::string data = flags.text("--data", "fashion-mnist");
  const int64_t n = flags.integer("--n", 1000);
  const auto seed = static_cast<uint64_t>(flags.integer("--seed", 0));
  if (!flags.ok()) return 2;
  try {
    auto c = tame::load_classifier(argv[1]);
    auto train = tame::load_dataset(data, "train"), test = tame::load_dataset(data, "test");
    tame::check_classifier_fits(c, data, train.shape());
    auto reference = tame::fid_features(*c.net, test.images, test.levels);
    torch::manual_seed(seed);
    auto noise = torch::randint(0, train.levels, train.images.slice(0, 0, n).sizes())
                     .to(train.images.scalar_type());
    for (const auto& [name, images] : {std::make_pair("train_images", train.images.slice(0, 0, n)),
                                       std::make_pair("uniform_noise", noise)}) {
      const double fid =
          tame::frechet_distance(tame::fid_features(*c.net, images, train.levels), reference);
      std::printf(
          "{\"bench\":\"fid_reference\",\"data\":\"%s\",\"images\":\"%s\",\"n\":%lld,"
          "\"reference\":%lld,\"fid\":%.4f}\n",
          data.c_str(), name, static_cast<long long>(n), static_cast<long long>(test.size()), fid);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_fid_reference: %s\n", e.what());
    return 1;
  }
  return 0;
}
