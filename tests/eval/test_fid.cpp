// tame's FID: the Frechet distance against its closed forms, the classifier
// and its file, and the score of a model.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "tame/data/datasets.h"
#include "tame/eval/fid.h"
#include "tame/registry.h"

using namespace tame;
using namespace tame::testing;

namespace {

torch::Tensor random_spd(int64_t d, uint64_t seed) {
  torch::manual_seed(seed);
  auto a = torch::randn({d, d}, torch::kDouble);
  return torch::matmul(a, a.t()) + 0.1 * torch::eye(d, torch::kDouble);
}

// A classifier trained on tmp/data's labelled 8x8 synthetic set (two classes).
struct Trained {
  TempDir tmp;
  Dataset train, test;
  TrainedClassifier c;
  Trained() {
    write_idx_dataset(tmp / "data", 400, 200, 8, 8);
    train = load_dataset("idx:" + (tmp / "data"), "train");
    test = load_dataset("idx:" + (tmp / "data"), "test");
    ClassifierOptions o;
    o.epochs = 4;
    o.batch_size = 32;
    c = train_classifier(train, test, o);
  }
};

}  // namespace

TEST(Fid, FrechetDistanceMatchesClosedForms) {
  // One dimension: (m1 - m2)^2 + (s1 - s2)^2.
  auto one = [](double v) { return torch::full({1}, v, torch::kDouble); };
  EXPECT_NEAR(frechet_distance(one(1.0), one(4.0).view({1, 1}), one(-0.5), one(0.25).view({1, 1})),
              1.5 * 1.5 + (2.0 - 0.5) * (2.0 - 0.5), 1e-9);
  // Diagonal covariances: |dmu|^2 + sum (sqrt a - sqrt b)^2.
  auto a = torch::tensor({1.0, 2.0, 9.0}, torch::kDouble),
       b = torch::tensor({4.0, 0.5, 1.0}, torch::kDouble);
  auto mu1 = torch::tensor({0.0, 1.0, 2.0}, torch::kDouble),
       mu2 = torch::tensor({1.0, 1.0, 0.0}, torch::kDouble);
  const double diag = 1 + 4 + (a.sqrt() - b.sqrt()).pow(2).sum().item<double>();
  EXPECT_NEAR(frechet_distance(mu1, torch::diag(a), mu2, torch::diag(b)), diag, 1e-9);
  // A full covariance against c^2 times itself: (1 - c)^2 tr S.
  auto s = random_spd(6, 1);
  auto z = torch::zeros({6}, torch::kDouble);
  EXPECT_NEAR(frechet_distance(z, s, z, 2.25 * s), 0.25 * s.trace().item<double>(), 1e-7);
  // Symmetric, and zero between a Gaussian and itself.
  auto t = random_spd(6, 2);
  EXPECT_NEAR(frechet_distance(z, s, z + 1, t), frechet_distance(z + 1, t, z, s), 1e-7);
  EXPECT_NEAR(frechet_distance(z, s, z, s), 0.0, 1e-7);
}

TEST(Fid, SetAgainstItselfIsZero) {
  torch::manual_seed(3);
  auto f = torch::randn({300, 16}, torch::kDouble) * 3 + 1;
  EXPECT_NEAR(frechet_distance(f, f), 0.0, 1e-7);
  EXPECT_GT(frechet_distance(f, f + 0.5), 0.0);
}

// The classifier learns the synthetic labels, its file round-trips and
// refuses damage, and its features score held-out images of the same set
// closer to the test split than noise.
TEST(Fid, ClassifierSeparatesHeldOutImagesFromNoise) {
  Trained t;
  EXPECT_EQ(t.train.labels.size(0), 400);
  EXPECT_TRUE(torch::equal(t.test.labels, synthetic_labels(t.test.images).to(torch::kLong)));
  EXPECT_GT(t.c.meta["test_accuracy"].get<double>(), 0.8);
  EXPECT_EQ(t.c.meta["data"], "idx:" + (t.tmp / "data"));

  auto reference = fid_features(*t.c.net, t.test.images, 256);
  auto held_out = fid_features(*t.c.net, t.train.images.slice(0, 0, 200), 256);
  torch::manual_seed(4);
  auto noise = torch::randint(0, 256, {200, 1, 8, 8}).to(torch::kUInt8);
  const double real = frechet_distance(held_out, reference);
  const double fake = frechet_distance(fid_features(*t.c.net, noise, 256), reference);
  EXPECT_LT(real, fake / 4) << real << " vs " << fake;

  std::string path = t.tmp / "c.fidc";
  save_classifier(path, t.c);
  auto back = load_classifier(path);
  EXPECT_EQ(back.meta, t.c.meta);
  EXPECT_TRUE(
      torch::equal(fid_features(*back.net, noise, 256), fid_features(*t.c.net, noise, 256)));
  std::string bytes = read_file(path);
  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 1;
  write_file_atomic(t.tmp / "flip.fidc", flipped);
  EXPECT_NE(error_of([&] { load_classifier(t.tmp / "flip.fidc"); }).find("checksum"),
            std::string::npos);
  write_file_atomic(t.tmp / "short.fidc", bytes.substr(0, bytes.size() - 9));
  EXPECT_NE(error_of([&] { load_classifier(t.tmp / "short.fidc"); }).find("truncated"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_classifier(t.tmp / "data/t10k-images-idx3-ubyte");
            }).find("not a tame FID classifier"),
            std::string::npos);

  // It scores its own set and that set binarized, at its shape only.
  check_classifier_fits(t.c, "idx:" + (t.tmp / "data"), {1, 8, 8});
  check_classifier_fits(t.c, "idx:" + (t.tmp / "data") + "-bin", {1, 8, 8});
  EXPECT_NE(error_of([&] {
              check_classifier_fits(t.c, "fashion-mnist", {1, 8, 8});
            }).find("was trained on"),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              check_classifier_fits(t.c, "idx:" + (t.tmp / "data"), {3, 8, 8});
            }).find("takes 1x8x8 images"),
            std::string::npos);
}

// A model's FID: the same model and seed give the same score; another seed
// draws other samples.
TEST(Fid, ModelScoreIsReproducible) {
  Trained t;
  for (const std::string name : {"dcgan", "vqvae"}) {
    const auto& e = find_model(name);
    auto model = make_model(name, resolve_hparams(name, e.tiny), {1, 8, 8}, 256);
    auto a = model_fid(*model, *t.c.net, t.test.images, 40, 7, 16);
    auto b = model_fid(*model, *t.c.net, t.test.images, 40, 7, 16);
    auto c = model_fid(*model, *t.c.net, t.test.images, 40, 8, 16);
    EXPECT_EQ(a.fid, b.fid) << name;
    EXPECT_NE(a.fid, c.fid) << name;
    EXPECT_EQ(a.samples, 40);
    EXPECT_EQ(a.reference, 200);
    EXPECT_GT(a.fid, 0.0);
  }
}

// Classifier-based rejection keeps only samples the classifier is confident
// about and says how many it drew; max_draws ends it short of n; 0 keeps
// every draw.
TEST(Fid, RejectionKeepsOnlyConfidentSamples) {
  Trained t;
  const auto& e = find_model("dcgan");
  auto model = make_model("dcgan", resolve_hparams("dcgan", e.tiny), {1, 8, 8}, 256);
  torch::manual_seed(3);
  auto pilot = classifier_confidence(*t.c.net, model->sample(200, 1.0), 256);
  const double median = pilot.median().item<double>();
  ASSERT_LT(pilot.min().item<double>(), median);  // the threshold rejects some draws
  torch::manual_seed(4);
  auto r = sample_with_rejection(*model, *t.c.net, 30, 1.0, median, 2000, 16);
  ASSERT_EQ(r.images.size(0), 30);
  EXPECT_GT(r.drawn, 30);
  EXPECT_GE(classifier_confidence(*t.c.net, r.images, 256).min().item<double>(), median);
  auto few = sample_with_rejection(*model, *t.c.net, 1000, 1.0, median, 40, 16);
  EXPECT_LT(few.images.size(0), 40);  // max_draws ends it, short of n
  EXPECT_EQ(few.drawn, 40);
  auto all = sample_with_rejection(*model, *t.c.net, 20, 1.0, 0.0, 100, 16);
  EXPECT_EQ(all.images.size(0), 20);
  EXPECT_EQ(all.drawn, 32);  // two batches of 16
  EXPECT_THROW(sample_with_rejection(*model, *t.c.net, 5, 1.0, 1.5, 40), Error);
  // The FID of kept samples: reproducible, and it says how many it drew.
  auto f = model_fid(*model, *t.c.net, t.test.images, 20, 7, 16, {}, median);
  EXPECT_EQ(f.samples, 20);
  EXPECT_GT(f.drawn, 20);
  EXPECT_EQ(model_fid(*model, *t.c.net, t.test.images, 20, 7, 16, {}, median).fid, f.fid);
}
