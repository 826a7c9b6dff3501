#include <gtest/gtest.h>

#include <cmath>

#include "tame/dist/likelihood.h"

using namespace tame;

TEST(Likelihood, UniformLogitsGiveExactlyEightBitsPerDim) {
  auto x = torch::randint(0, 256, {4, 3, 5, 7}).to(torch::kUInt8);
  auto logits = torch::zeros({4, 256, 3, 5, 7});
  auto bpd = bits_per_dim(categorical_nll(logits, x), 3 * 5 * 7);
  EXPECT_NEAR(bpd.max().item<double>(), 8.0, 1e-5);
  EXPECT_NEAR(bpd.min().item<double>(), 8.0, 1e-5);
}

TEST(Likelihood, UniformBinaryGivesExactlyOneBitPerDim) {
  auto x = torch::randint(0, 2, {3, 1, 6, 6}).to(torch::kUInt8);
  auto cat = bits_per_dim(categorical_nll(torch::zeros({3, 2, 1, 6, 6}), x), 36);
  auto ber = bits_per_dim(bernoulli_nll(torch::zeros({3, 1, 6, 6}), x), 36);
  EXPECT_NEAR(cat.mean().item<double>(), 1.0, 1e-6);
  EXPECT_NEAR(ber.mean().item<double>(), 1.0, 1e-6);
}

TEST(Likelihood, BitsPerDimScalar) {
  EXPECT_DOUBLE_EQ(bits_per_dim(784 * std::log(256.0), 784), 8.0);
}

TEST(Likelihood, CategoricalMatchesManualLogSoftmax) {
  auto logits = torch::randn({2, 5, 1, 2, 3});
  auto x = torch::randint(0, 5, {2, 1, 2, 3}).to(torch::kUInt8);
  auto nll = categorical_nll(logits, x);
  auto logp = torch::log_softmax(logits, 1);
  for (int64_t b = 0; b < 2; ++b) {
    double manual = 0;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) manual -= logp[b][x[b][0][i][j].item<int64_t>()][0][i][j].item<double>();
    EXPECT_NEAR(nll[b].item<double>(), manual, 1e-4);
  }
}

TEST(Likelihood, BernoulliMatchesManual) {
  auto logits = torch::randn({2, 1, 3, 3});
  auto x = torch::randint(0, 2, {2, 1, 3, 3}).to(torch::kUInt8);
  auto p = torch::sigmoid(logits);
  auto xf = x.to(torch::kFloat);
  auto manual = -(xf * p.log() + (1 - xf) * (1 - p).log()).flatten(1).sum(1);
  EXPECT_TRUE(torch::allclose(bernoulli_nll(logits, x), manual, 1e-4, 1e-5));
}

TEST(Likelihood, PmfSumsToOneAndTemperatureSharpens) {
  auto logits = torch::randn({3, 256, 1, 2, 2});
  auto p = categorical_probs(logits);
  EXPECT_TRUE(torch::allclose(p.sum(1), torch::ones({3, 1, 2, 2}), 1e-5, 1e-5));
  auto cold = categorical_probs(logits, 0.5);
  EXPECT_GT(cold.max().item<double>(), p.max().item<double>());
}

TEST(Likelihood, ScaleToUnitMapsEndsToMinusOneAndOne) {
  auto x = torch::tensor({0, 255}).to(torch::kUInt8);
  auto s = scale_to_unit(x, 256);
  EXPECT_FLOAT_EQ(s[0].item<float>(), -1.0f);
  EXPECT_FLOAT_EQ(s[1].item<float>(), 1.0f);
}
