// Flow models on the one bits/dim scale: the dequantization bound, its
// importance-weighted tightening, and sampling.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "tame/dist/likelihood.h"
#include "tame/models/flows/flow_model.h"
#include "tame/registry.h"

using namespace tame;

// A flow whose density is uniform on [0, 1)^D scores exactly log2 K bits/dim on
// any image: the dequantization term is D log K and nothing else.
TEST(FlowModel, UniformDensityScoresExactlyLog2K) {
  for (int64_t K : {256, 2}) {
    FlowModel m({1, 5, 4}, K,
                std::make_shared<flows::Composite>(std::vector<flows::TransformPtr>{}),
                FlowBase::kUniformUnit);
    auto x = torch::randint(0, K, {6, 1, 5, 4}).to(torch::kUInt8);
    auto bpd = bits_per_dim(m.nll(x), 20);
    EXPECT_LT((bpd - std::log2(static_cast<double>(K))).abs().max().item<double>(), 1e-6) << K;
    EXPECT_LT((bits_per_dim(m.nll_iw(x, 7), 20) - std::log2(static_cast<double>(K)))
                  .abs()
                  .max()
                  .item<double>(),
              1e-6);
  }
}

// The k-draw bound is not worse than the one-draw bound on average, and
// tightens as k grows. The model is sharp inside each quantization bin (its
// scale is e^3 after the logit), so that the draws of u matter.
TEST(FlowModel, ImportanceWeightedBoundTightensWithK) {
  torch::manual_seed(0);
  auto scale = std::make_shared<flows::DiagonalScale>(1, 8, 8);
  {
    torch::NoGradGuard g;
    scale->log_scale.fill_(3.0);
  }
  FlowModel m({1, 8, 8}, 256,
              std::make_shared<flows::Composite>(
                  std::vector<flows::TransformPtr>{std::make_shared<flows::Logit>(0.05), scale}));
  torch::NoGradGuard g;
  auto test = tame::testing::synthetic_images(32, 8, 8, 3);
  torch::manual_seed(1);
  // Each bound's expectation, estimated over repeats (the same number of draws each).
  auto bound = [&](int64_t k) {
    double sum = 0;
    const int64_t repeats = 400 / k;
    for (int64_t r = 0; r < repeats; ++r) sum += m.nll_iw(test, k).mean().item<double>();
    return sum / repeats;
  };
  const double k1 = bound(1), k4 = bound(4), k40 = bound(40);
  const double one = m.nll(test).mean().item<double>();
  std::printf("mean NLL bound (nats/image): k=1 %.4f, k=4 %.4f, k=40 %.4f\n", k1, k4, k40);
  EXPECT_NEAR(k1, one, 0.05 * std::abs(one));  // both single-draw estimates
  EXPECT_LT(k4, k1);
  EXPECT_LT(k40, k4);
  EXPECT_EQ(m.bound(), Bound::kUpper);
}

// The same on a small trained model: realnvp trained on 4-level 4x4 images,
// where the within-bin shape of the density (the logit and the couplings) makes
// the draws of u matter.
TEST(FlowModel, ImportanceWeightedBoundTightensWithKOnATrainedModel) {
  torch::manual_seed(3);
  auto m = make_model("realnvp", {{"scales", 2}, {"hidden", 16}}, {1, 4, 4}, 4);
  auto data = (tame::testing::synthetic_images(512, 4, 4, 4) / 64).to(torch::kUInt8);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int64_t step = 0; step < 300; ++step) {
    auto batch = data.index_select(0, torch::randint(0, 512, {64}));
    opt.zero_grad();
    auto loss = m->loss(batch);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first - 2.0);  // it learned something (nats per 16-dim image)
  torch::NoGradGuard g;
  auto test = data.slice(0, 0, 128);
  auto bound = [&](int64_t k) {
    double sum = 0;
    const int64_t repeats = 400 / k;
    for (int64_t r = 0; r < repeats; ++r) sum += m->nll_iw(test, k).mean().item<double>();
    return sum / repeats;
  };
  const double k1 = bound(1), k4 = bound(4), k40 = bound(40);
  std::printf("trained realnvp, mean NLL bound (nats/image): k=1 %.4f, k=4 %.4f, k=40 %.4f\n", k1,
              k4, k40);
  EXPECT_LT(k4, k1);
  EXPECT_LT(k40, k4);
}

TEST(FlowModel, SamplesAreImagesAndTemperatureNarrowsThem) {
  torch::manual_seed(2);
  auto m = make_model("nice", {{"couplings", 2}, {"hidden", 8}}, {1, 6, 6}, 256);
  auto s = m->sample(5, 1.0);
  EXPECT_EQ(s.sizes(), torch::IntArrayRef({5, 1, 6, 6}));
  EXPECT_EQ(s.scalar_type(), torch::kUInt8);
  // At T -> 0 every sample is f^-1(0), up to a level where it meets a boundary.
  auto cold = m->sample(3, 1e-6).to(torch::kInt);
  EXPECT_LE((cold[0] - cold[2]).abs().max().item<int>(), 1);
  auto warm = m->sample(3, 1.0).to(torch::kInt);
  EXPECT_GT((warm[0] - warm[2]).abs().max().item<int>(), 1);
}
