// The integer CDF writers: every level keeps a frequency >= 1, the table sums
// exactly to 2^precision, and it is close to the float distribution it stands for.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "tame/dist/integer_cdf.h"
#include "tame/nn/step_kernels.h"

using namespace tame;

namespace {

void expect_valid(const std::vector<uint32_t>& cdf, uint32_t precision, const std::string& what) {
  const size_t K = cdf.size() - 1;
  EXPECT_EQ(cdf[0], 0u) << what;
  EXPECT_EQ(cdf[K], 1u << precision) << what;
  for (size_t k = 0; k < K; ++k) ASSERT_GE(cdf[k + 1], cdf[k] + 1) << what << " level " << k;
}

// The discretized logistic's pmf in double precision, from libm.
std::vector<double> logistic_pmf(double mean, double log_scale, int64_t K) {
  auto F = [&](double x) { return 1.0 / (1.0 + std::exp(-(x - mean) / std::exp(log_scale))); };
  std::vector<double> p(K);
  const double d = 1.0 / (K - 1);
  for (int64_t k = 0; k < K; ++k) {
    const double c = 2.0 * k * d - 1.0;
    p[k] = (k == K - 1 ? 1.0 : F(c + d)) - (k == 0 ? 0.0 : F(c - d));
  }
  return p;
}

}  // namespace

TEST(IntegerCdf, CategoricalKeepsEverySymbol) {
  std::vector<uint32_t> cdf(257);
  for (float spread : {0.0f, 1.0f, 30.0f, 1e4f}) {
    std::vector<float> logits(256);
    for (int k = 0; k < 256; ++k)
      logits[k] = spread * std::sin(0.37f * k) + (k == 17 ? 5 * spread : 0.0f);
    categorical_cdf(logits.data(), 256, 24, cdf.data());
    expect_valid(cdf, 24, "spread " + std::to_string(spread));
    if (spread == 0.0f) {
      for (int k = 1; k < 256; ++k)
        EXPECT_EQ(cdf[k + 1] - cdf[k], cdf[2] - cdf[1]);  // uniform stays uniform
    }
  }
}

// The table is the documented rule, computed here the plain way: the first
// maximum, det_exp(l - top), their sum in double in level order, frequencies
// 1 + floor(e_k (2^p - K) / sum), the remainder to the first largest. Ties
// for the maximum and for the largest frequency are in the cases.
TEST(IntegerCdf, CategoricalIsThePlainRule) {
  for (int64_t K : {2, 7, 256, 1000}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> l(K);
      for (int64_t k = 0; k < K; ++k)
        l[k] = variant == 0   ? 3.0f * std::sin(0.71f * k)
               : variant == 1 ? std::floor(2.0f * std::cos(0.3f * k))  // many equal maxima
               : variant == 2 ? -40.0f + 0.001f * k                    // one at the end
                              : (k % 5 == 0 ? 30.0f : -30.0f);         // spiky, tied
      for (uint32_t precision : {16u, 24u, 31u}) {
        float top = l[0];
        for (int64_t k = 1; k < K; ++k) top = l[k] > top ? l[k] : top;
        std::vector<float> e(K);
        double sum = 0;
        for (int64_t k = 0; k < K; ++k) {
          e[k] = steps::det_exp(l[k] - top);
          sum = sum + static_cast<double>(e[k]);
        }
        const uint32_t total = uint32_t{1} << precision;
        const double scale = static_cast<double>(total - K) / sum;
        std::vector<uint32_t> want(K + 1, 0);
        uint32_t used = 0;
        int64_t best = 0;
        for (int64_t k = 0; k < K; ++k) {
          want[k + 1] = 1 + static_cast<uint32_t>(static_cast<double>(e[k]) * scale);
          used += want[k + 1];
          if (want[k + 1] > want[best + 1]) best = k;
        }
        want[best + 1] += total - used;  // unsigned: an excess is taken away
        for (int64_t k = 0; k < K; ++k) want[k + 1] += want[k];
        std::vector<uint32_t> got(K + 1);
        categorical_cdf(l.data(), K, precision, got.data());
        ASSERT_EQ(got, want) << "K " << K << " variant " << variant << " precision " << precision;
      }
    }
  }
}

// Logits that are not numbers (a model whose weights diverged) still give a
// valid table, so the codec writes a file rather than a broken stream.
TEST(IntegerCdf, NonFiniteLogitsGiveAValidTable) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (std::vector<float> l : {std::vector<float>(256, nan), std::vector<float>{nan, 1.0f, 2.0f},
                               std::vector<float>{1.0f, nan, 2.0f}, std::vector<float>{inf, 0.0f},
                               std::vector<float>{-inf, -inf, 0.0f}}) {
    std::vector<uint32_t> cdf(l.size() + 1);
    categorical_cdf(l.data(), static_cast<int64_t>(l.size()), 24, cdf.data());
    expect_valid(cdf, 24, "non-finite logits");
  }
}

TEST(IntegerCdf, CategoricalTemperature) {
  std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f};
  std::vector<uint32_t> a(5), b(5), cold(5), hot(5);
  const double bits = categorical_cdf(logits.data(), 4, 16, a.data(), 2);
  categorical_cdf(logits.data(), 4, 16, b.data(), -1, 1.0);
  EXPECT_EQ(a, b);
  double z = 0;
  for (float l : logits) z += std::exp(l);
  EXPECT_NEAR(bits, -std::log2(std::exp(2.0) / z), 1e-6);
  categorical_cdf(logits.data(), 4, 16, cold.data(), -1, 0.25);
  categorical_cdf(logits.data(), 4, 16, hot.data(), -1, 4.0);
  EXPECT_GT(cold[3] - cold[2], a[3] - a[2]);  // the mode sharpens
  EXPECT_LT(hot[3] - hot[2], a[3] - a[2]);
  EXPECT_EQ(cdf_mode(a.data(), 4), 2);
}

TEST(IntegerCdf, LogisticSumsExactlyAndMatchesTheFloatPmf) {
  for (int64_t K : {2, 16, 256, 65536}) {
    for (auto [mean, log_scale] :
         {std::pair{0.0f, -2.0f}, std::pair{0.7f, -4.5f}, std::pair{-1.3f, -1.0f},
          std::pair{0.2f, 1.5f}, std::pair{0.999f, -7.0f}}) {
      const uint32_t precision = 24;
      std::vector<uint32_t> cdf(K + 1);
      logistic_cdf(mean, log_scale, K, precision, cdf.data());
      const std::string what = "K " + std::to_string(K) + " mean " + std::to_string(mean) +
                               " log_scale " + std::to_string(log_scale);
      expect_valid(cdf, precision, what);
      const auto p = logistic_pmf(mean, log_scale, K);
      const double total = std::ldexp(1.0, precision);
      double worst = 0;
      for (int64_t k = 0; k < K; ++k)
        worst = std::max(worst, std::abs((cdf[k + 1] - cdf[k]) / total - p[k]));
      // Float rounding of the edges and one unit per level of the floor.
      EXPECT_LT(worst, 2e-5 + K / total) << what;
    }
  }
}
