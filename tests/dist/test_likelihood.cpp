// The pixel likelihoods (dist/pixel_likelihood.h) and bits/dim: every pmf sums
// to 1, samples stay in range and T = 0 is the mode, the mean is sum_k k p(k),
// uniform logits cost exactly log2 K bits, and the types compute bit for bit
// what the free functions they replaced computed.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

#include "tame/dist/likelihood.h"
#include "tame/dist/pixel_likelihood.h"

using namespace tame;

namespace {

// The formulas as the free functions wrote them before the types existed; the
// latent models' bounds must not move by a single rounding.
torch::Tensor reference_categorical_nll(const torch::Tensor& logits, const torch::Tensor& x) {
  auto nll = torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat), x.to(torch::kLong),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return nll.flatten(1).sum(1);
}

torch::Tensor reference_bernoulli_nll(const torch::Tensor& logits, const torch::Tensor& x) {
  auto nll = torch::nn::functional::binary_cross_entropy_with_logits(
      logits, x.to(logits.scalar_type()),
      torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return nll.flatten(1).sum(1);
}

torch::Tensor random_images(int64_t levels, std::vector<int64_t> shape) {
  return torch::randint(0, levels, shape).to(torch::kUInt8);
}

// One distribution of each type over K levels for images [B, C, H, W], from
// network features of the documented layout with entries of size `spread`.
std::vector<std::unique_ptr<PixelDistribution>> one_of_each(int64_t K, int64_t B, int64_t C,
                                                            double spread) {
  std::vector<std::unique_ptr<PixelDistribution>> d;
  for (const auto& name : pixel_likelihood_names()) {
    if (name == "bernoulli" && K != 2) continue;
    auto lik = pixel_likelihood(name, K);
    d.push_back(lik(spread * torch::randn({B, lik.features(C), 2, 3}), C));
  }
  return d;
}

}  // namespace

TEST(Likelihood, TypesComputeExactlyWhatTheFreeFunctionsComputed) {
  torch::manual_seed(1);
  for (int64_t K : {2, 16, 256}) {
    auto x = random_images(K, {4, 3, 5, 6});
    auto logits = 3.0 * torch::randn({4, K, 3, 5, 6});
    EXPECT_TRUE(
        torch::equal(-Categorical(logits).log_prob(x), reference_categorical_nll(logits, x)));
    EXPECT_TRUE(torch::equal(categorical_nll(logits, x), reference_categorical_nll(logits, x)));
    auto features = logits.reshape({4, K * 3, 5, 6});
    EXPECT_TRUE(
        torch::equal(-Categorical(features, 3).log_prob(x), reference_categorical_nll(logits, x)));
    // Log-scales from -9 to 3: those below the floor are raised to -7, as the
    // latent models did before calling the free function (which the type's
    // arithmetic reproduced bit for bit when it replaced it).
    auto mean = 1.2 * torch::randn({4, 3, 5, 6}),
         log_scale = -3.0 + 3.0 * torch::randn({4, 3, 5, 6});
    auto expected = -DiscretizedLogistic(mean, log_scale.clamp_min(-7.0), K).log_prob(x);
    EXPECT_TRUE(torch::equal(-DiscretizedLogistic(mean, log_scale, K).log_prob(x), expected)) << K;
    EXPECT_TRUE(torch::equal(
        -DiscretizedLogistic(torch::cat({mean, log_scale}, 1), 3, K).log_prob(x), expected));
  }
  auto bits = random_images(2, {4, 1, 7, 7});
  auto logits = 4.0 * torch::randn({4, 1, 7, 7});
  EXPECT_TRUE(
      torch::equal(-Bernoulli(logits).log_prob(bits), reference_bernoulli_nll(logits, bits)));
}

TEST(Likelihood, UniformLogitsGiveExactlyEightBitsPerDim) {
  auto x = random_images(256, {4, 3, 5, 7});
  auto bpd = bits_per_dim(-Categorical(torch::zeros({4, 256, 3, 5, 7})).log_prob(x), 3 * 5 * 7);
  EXPECT_NEAR(bpd.max().item<double>(), 8.0, 1e-5);
  EXPECT_NEAR(bpd.min().item<double>(), 8.0, 1e-5);
  char printed[16];
  std::snprintf(printed, sizeof printed, "%.3f", bpd.mean().item<double>());
  EXPECT_STREQ(printed, "8.000");
}

TEST(Likelihood, UniformBinaryGivesExactlyOneBitPerDim) {
  auto x = random_images(2, {3, 1, 6, 6});
  auto cat = bits_per_dim(-Categorical(torch::zeros({3, 2, 1, 6, 6})).log_prob(x), 36);
  auto ber = bits_per_dim(-Bernoulli(torch::zeros({3, 1, 6, 6})).log_prob(x), 36);
  for (const auto& bpd : {cat, ber}) {
    EXPECT_NEAR(bpd.max().item<double>(), 1.0, 1e-6);
    EXPECT_NEAR(bpd.min().item<double>(), 1.0, 1e-6);
  }
}

TEST(Likelihood, BitsPerDimScalar) {
  EXPECT_DOUBLE_EQ(bits_per_dim(784 * std::log(256.0), 784), 8.0);
}

TEST(Likelihood, PmfSumsToOneOverTheLevelsEvenAtExtremeParameters) {
  torch::manual_seed(2);
  for (int64_t K : {2, 5, 256})
    for (double spread : {0.1, 1.0, 30.0, 1e3})
      for (const auto& d : one_of_each(K, 3, 2, spread)) {
        auto logp = d->log_pmf();
        ASSERT_EQ(logp.sizes(), (std::vector<int64_t>{3, K, 2, 2, 3}));
        EXPECT_FALSE(logp.isnan().any().item<bool>()) << K << " " << spread;
        auto total = logp.to(torch::kDouble).exp().sum(1);
        EXPECT_LT((total - 1.0).abs().max().item<double>(), 2e-5) << K << " " << spread;
      }
}

TEST(Likelihood, LogProbIsTheSumOfTheTrueLevelsPmf) {
  torch::manual_seed(3);
  for (int64_t K : {2, 16, 256})
    for (const auto& d : one_of_each(K, 4, 3, 2.0)) {
      auto x = random_images(K, {4, 3, 2, 3});
      auto picked = d->log_pmf().gather(1, x.to(torch::kLong).unsqueeze(1)).squeeze(1);
      EXPECT_TRUE(torch::allclose(d->log_prob(x), picked.flatten(1).sum(1), 1e-5, 1e-4)) << K;
    }
}

TEST(Likelihood, SamplesAreInRangeAndZeroTemperatureIsTheMode) {
  torch::manual_seed(4);
  for (int64_t K : {2, 7, 256})
    for (const auto& d : one_of_each(K, 5, 3, 3.0)) {
      for (double t : {0.5, 1.0, 2.0}) {
        auto x = d->sample(t);
        EXPECT_EQ(x.scalar_type(), torch::kUInt8);
        EXPECT_EQ(x.sizes(), (std::vector<int64_t>{5, 3, 2, 3}));
        EXPECT_LT(x.max().item<int64_t>(), K);
      }
      EXPECT_TRUE(torch::equal(d->sample(0.0).to(torch::kLong), d->log_pmf().argmax(1))) << K;
      EXPECT_THROW(d->sample(-1.0), c10::Error);
    }
}

// Many draws from one parameter setting: the empirical frequencies approach
// the pmf, so sample() and log_pmf() describe the same distribution.
TEST(Likelihood, SampleFrequenciesMatchThePmf) {
  torch::manual_seed(5);
  const int64_t n = 40000;
  for (int64_t K : {2, 5})
    for (const auto& name : pixel_likelihood_names()) {
      if (name == "bernoulli" && K != 2) continue;
      auto lik = pixel_likelihood(name, K);
      auto one = torch::randn({1, lik.features(1), 1, 1});
      auto d = lik(one.expand({n, lik.features(1), 1, 1}), 1);
      auto freq =
          torch::bincount(d->sample(1.0).flatten().to(torch::kLong), {}, K).to(torch::kDouble) / n;
      auto pmf = d->log_pmf()[0].flatten().to(torch::kDouble).exp();
      EXPECT_LT((freq - pmf).abs().max().item<double>(), 0.015) << name << " " << K << freq << pmf;
    }
}

TEST(Likelihood, MeanIsTheSumOfLevelsTimesTheirProbabilities) {
  torch::manual_seed(6);
  for (int64_t K : {2, 16, 256})
    for (double spread : {0.5, 3.0})
      for (const auto& d : one_of_each(K, 3, 2, spread)) {
        auto p = d->log_pmf().to(torch::kDouble).exp();
        auto k = torch::arange(K, torch::kDouble).view({1, K, 1, 1, 1});
        auto expected = (p * k).sum(1);
        EXPECT_LT((d->mean().to(torch::kDouble) - expected).abs().max().item<double>(), 2e-5 * K)
            << K << " " << spread;
      }
}

TEST(Likelihood, BernoulliIsTheCategoricalWithLogitsZeroAndL) {
  auto l = 5.0 * torch::randn({3, 2, 4, 4});
  Bernoulli b(l);
  Categorical c(torch::stack({torch::zeros_like(l), l}, 1));
  auto x = random_images(2, {3, 2, 4, 4});
  EXPECT_TRUE(torch::allclose(b.log_prob(x), c.log_prob(x), 1e-5, 1e-4));
  EXPECT_TRUE(torch::allclose(b.log_pmf(), c.log_pmf(), 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(b.mean(), c.mean(), 1e-5, 1e-6));
  EXPECT_TRUE(torch::equal(b.sample(0.0), c.sample(0.0)));
}

TEST(Likelihood, BernoulliMatchesManual) {
  auto logits = torch::randn({2, 1, 3, 3});
  auto x = random_images(2, {2, 1, 3, 3});
  auto p = torch::sigmoid(logits);
  auto xf = x.to(torch::kFloat);
  auto manual = (xf * p.log() + (1 - xf) * (1 - p).log()).flatten(1).sum(1);
  EXPECT_TRUE(torch::allclose(Bernoulli(logits).log_prob(x), manual, 1e-4, 1e-5));
}

TEST(Likelihood, CategoricalMatchesManualLogSoftmax) {
  auto logits = torch::randn({2, 5, 1, 2, 3});
  auto x = random_images(5, {2, 1, 2, 3});
  auto logp = Categorical(logits).log_prob(x);
  auto table = torch::log_softmax(logits, 1);
  for (int64_t b = 0; b < 2; ++b) {
    double manual = 0;
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j)
        manual += table[b][x[b][0][i][j].item<int64_t>()][0][i][j].item<double>();
    EXPECT_NEAR(logp[b].item<double>(), manual, 1e-4);
  }
}

TEST(Likelihood, NetworkFeaturesFollowTheDocumentedLayout) {
  const int64_t K = 4, C = 3;
  auto f = torch::randn({2, K * C, 2, 2});
  Categorical cat(f, C);
  for (int64_t k = 0; k < K; ++k)
    for (int64_t c = 0; c < C; ++c)
      EXPECT_TRUE(torch::equal(cat.logits().select(1, k).select(1, c), f.select(1, k * C + c)));
  auto g = torch::randn({2, 2 * C, 2, 2});
  DiscretizedLogistic logistic(g, C, K);
  EXPECT_TRUE(torch::equal(logistic.location(), g.slice(1, 0, C)));
  EXPECT_TRUE(torch::equal(logistic.log_scale(), g.slice(1, C, 2 * C).clamp_min(-7.0)));
  EXPECT_THROW(Categorical(torch::randn({2, 7, 2, 2}), C), c10::Error);
  EXPECT_THROW(Categorical(torch::randn({2, 4, 2, 2})), c10::Error);
}

TEST(Likelihood, ChosenByNameWithErrorsThatNameTheChoices) {
  EXPECT_EQ(pixel_likelihood("auto", 2).name, "bernoulli");
  EXPECT_EQ(pixel_likelihood("auto", 256).name, "categorical");
  EXPECT_EQ(pixel_likelihood("bernoulli", 2).features(3), 3);
  EXPECT_EQ(pixel_likelihood("categorical", 256).features(3), 768);
  EXPECT_EQ(pixel_likelihood("logistic", 256).features(3), 6);
  EXPECT_THROW(pixel_likelihood("bernoulli", 256), c10::Error);
  try {
    pixel_likelihood("gaussian", 256);
    FAIL() << "no error";
  } catch (const c10::Error& e) {
    const std::string what = e.what_without_backtrace();
    for (const char* choice : {"auto", "bernoulli", "categorical", "logistic", "'gaussian'"})
      EXPECT_NE(what.find(choice), std::string::npos) << what;
  }
}

TEST(Likelihood, CategoricalProbsSumToOneAndTemperatureSharpens) {
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

// The coder's integer tables: exact sums, every level codable, and close to
// the float pmf the type scores with; Bernoulli's equals the two-logit categorical's.
TEST(Likelihood, IntegerCdfsAreExactAndMatchThePmf) {
  torch::manual_seed(4);
  const uint32_t precision = 24;
  for (int64_t K : {2, 16, 256}) {
    for (const auto& d : one_of_each(K, 2, 3, 2.0)) {
      auto cdf = d->integer_cdf(precision);
      ASSERT_EQ(cdf.sizes(), (std::vector<int64_t>{2, 3, 2, 3, K + 1}));
      EXPECT_TRUE((cdf.select(4, 0) == 0).all().item<bool>());
      EXPECT_TRUE((cdf.select(4, K) == (int64_t{1} << precision)).all().item<bool>());
      auto freq = cdf.slice(4, 1) - cdf.slice(4, 0, K);
      EXPECT_GE(freq.min().item<int64_t>(), 1);
      auto p = freq.to(torch::kDouble) / double(int64_t{1} << precision);
      auto pmf = d->log_pmf().exp().permute({0, 2, 3, 4, 1}).to(torch::kDouble);
      EXPECT_LT((p - pmf).abs().max().item<double>(), 2e-3) << K;
    }
  }
  auto l = 3.0 * torch::randn({2, 1, 3, 3});
  auto two = torch::stack({torch::zeros_like(l), l}, 1);
  EXPECT_TRUE(
      torch::equal(Bernoulli(l).integer_cdf(precision), Categorical(two).integer_cdf(precision)));
}
