// The discretized logistic mixture of PixelCNN++ (dist/pixel_likelihood.h):
// the 256 bin probabilities sum to 1 for extreme parameters, a one-component
// mixture with the smallest scale puts its mass on one level, the R -> G -> B
// coupling moves G and B only, the joint is the product of the conditionals,
// the coder's integer tables match the float pmf and come out the same from
// the torch-free writer, and samples follow the pmf.
#include <gtest/gtest.h>

#include <cmath>

#include "tame/dist/integer_cdf.h"
#include "tame/dist/pixel_likelihood.h"

using namespace tame;

namespace {

constexpr int64_t K = 256;

torch::Tensor features(int64_t B, int64_t C, int64_t M, int64_t H, int64_t W, double scale,
                       uint64_t seed) {
  torch::manual_seed(seed);
  return scale * torch::randn({B, mixture_features(C, M), H, W});
}

torch::Tensor images(int64_t B, int64_t C, int64_t H, int64_t W, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, K, {B, C, H, W}).to(torch::kUInt8);
}

}  // namespace

TEST(LogisticMixture, BinsSumToOneForExtremeParameters) {
  for (double scale : {0.1, 1.0, 10.0, 60.0}) {
    for (int64_t C : {1, 3}) {
      SCOPED_TRACE("scale " + std::to_string(scale) + ", C " + std::to_string(C));
      auto f = features(2, C, 5, 3, 2, scale, 1);
      DiscretizedLogisticMixture d(f, C, K, 5, images(2, C, 3, 2, 2));
      auto pmf = torch::exp(d.log_pmf().to(torch::kDouble));
      EXPECT_EQ(pmf.sizes(), (std::vector<int64_t>{2, K, C, 3, 2}));
      EXPECT_LT((pmf.sum(1) - 1.0).abs().max().item<double>(), 1e-4);
      EXPECT_TRUE(torch::isfinite(d.log_prob(images(2, C, 3, 2, 3))).all().item<bool>());
    }
  }
}

TEST(LogisticMixture, OneComponentWithTheSmallestScaleIsOneLevel) {
  const int64_t level = 100;
  auto f = torch::zeros({1, mixture_features(1, 1), 1, 1});
  f[0][1] = 2.0 * level / (K - 1) - 1.0;  // the location: level 100's centre
  f[0][2] = -20.0;                        // the log-scale, raised to kMinLogScale
  DiscretizedLogisticMixture d(f, 1, K, 1, torch::zeros({1, 1, 1, 1}, torch::kUInt8));
  auto pmf = torch::exp(d.log_pmf()).flatten();
  EXPECT_GT(pmf[level].item<double>(), 0.95);  // +-4.3 scales of e^-7 inside the bin
  EXPECT_EQ(pmf.argmax().item<int64_t>(), level);
  EXPECT_EQ(d.sample(0.0).flatten()[0].item<int64_t>(), level);
}

// Changing R moves G's and B's conditionals and leaves R's; changing G moves
// B's alone; with zero coefficients nothing couples.
TEST(LogisticMixture, RgbCouplingChangesOnlyTheLaterChannels) {
  auto f = features(1, 3, 4, 2, 2, 1.0, 4);
  auto x = images(1, 3, 2, 2, 5).to(torch::kLong);
  auto pmf = [&](const torch::Tensor& feats, const torch::Tensor& v) {
    return DiscretizedLogisticMixture(feats, 3, K, feats.size(1) / mixture_features(3, 1), v)
        .log_pmf();
  };
  auto base = pmf(f, x);
  auto r = x.clone();
  r.select(1, 0).add_(37).remainder_(K);
  auto moved = pmf(f, r);
  EXPECT_TRUE(torch::allclose(moved.select(2, 0), base.select(2, 0)));
  EXPECT_FALSE(torch::allclose(moved.select(2, 1), base.select(2, 1)));
  EXPECT_FALSE(torch::allclose(moved.select(2, 2), base.select(2, 2)));
  auto g = x.clone();
  g.select(1, 1).add_(37).remainder_(K);
  moved = pmf(f, g);
  EXPECT_TRUE(torch::allclose(moved.select(2, 0), base.select(2, 0)));
  EXPECT_TRUE(torch::allclose(moved.select(2, 1), base.select(2, 1)));
  EXPECT_FALSE(torch::allclose(moved.select(2, 2), base.select(2, 2)));
  // One component and no coefficients: the channels are independent.
  auto one = features(1, 3, 1, 2, 2, 1.0, 6);
  one.slice(1, mixture_features(3, 1) - 3).zero_();
  EXPECT_TRUE(torch::allclose(pmf(one, r), pmf(one, x)));
}

// log p(x) = sum_c log p(x_c | x_<c): the joint is the product of the
// conditionals the codec codes with.
TEST(LogisticMixture, JointIsTheProductOfTheConditionals) {
  auto f = features(3, 3, 5, 4, 3, 2.0, 7);
  auto x = images(3, 3, 4, 3, 8);
  DiscretizedLogisticMixture d(f, 3, K, 5, x);
  auto chain = d.log_pmf().gather(1, x.to(torch::kLong).unsqueeze(1)).squeeze(1).flatten(1).sum(1);
  EXPECT_TRUE(torch::allclose(d.log_prob(x), chain, 1e-4, 1e-3));
  // and its gradient is finite for extreme parameters
  auto big = (60.0 * f).requires_grad_();
  DiscretizedLogisticMixture e(big, 3, K, 5, x);
  e.log_prob(x).sum().backward();
  EXPECT_TRUE(torch::isfinite(big.grad()).all().item<bool>());
}

// The coder's tables: exact sums, every level >= 1, the float pmf to within
// the tables' resolution, and the torch-free writer's bits.
TEST(LogisticMixture, IntegerTablesMatchThePmf) {
  constexpr uint32_t kPrecision = 24;
  auto f = features(2, 3, 3, 2, 2, 1.0, 9);
  auto x = images(2, 3, 2, 2, 10);
  DiscretizedLogisticMixture d(f, 3, K, 3, x);
  auto t = d.integer_cdf(kPrecision);
  EXPECT_EQ(t.sizes(), (std::vector<int64_t>{2, 3, 2, 2, K + 1}));
  auto freq = t.slice(4, 1) - t.slice(4, 0, K);
  EXPECT_EQ(t.select(4, 0).max().item<int64_t>(), 0);
  EXPECT_EQ(t.select(4, K).min().item<int64_t>(), int64_t{1} << kPrecision);
  EXPECT_GE(freq.min().item<int64_t>(), 1);
  auto p = freq.to(torch::kDouble) / std::ldexp(1.0, kPrecision);
  auto pmf = torch::exp(d.log_pmf().to(torch::kDouble)).permute({0, 2, 3, 4, 1});
  EXPECT_LT((p - pmf).abs().max().item<double>(), 2e-4);
  // Pixel (1, 1, 0), channel 2, by the writer itself.
  auto row = f[1].select(1, 1).select(1, 0).contiguous();
  const uint16_t earlier[3] = {static_cast<uint16_t>(x[1][0][1][0].item<int>()),
                               static_cast<uint16_t>(x[1][1][1][0].item<int>()), 0};
  MixtureEdges edges;
  edges.prepare(row.data_ptr<float>(), 3, 2, earlier, 3, K, kPrecision);
  for (int64_t k = 0; k <= K; ++k) ASSERT_EQ(edges.cdf(k), t[1][2][1][0][k].item<int64_t>()) << k;
  const double want =
      -d.log_pmf()[1][x[1][2][1][0].item<int>()][2][1][0].item<double>() / std::log(2.0);
  EXPECT_NEAR(edges.bits(x[1][2][1][0].item<int>()), want, 1e-3);
  // The tables of the files written before the edges (rule 1) are as close.
  std::vector<uint32_t> cdf(K + 1);
  const double bits = logistic_mixture_cdf(row.data_ptr<float>(), 3, 2, earlier, 3, K, kPrecision,
                                           cdf.data(), x[1][2][1][0].item<int>());
  EXPECT_NEAR(bits, want, 1e-3);
  for (int64_t k = 0; k < K; ++k)
    ASSERT_NEAR((cdf[k + 1] - cdf[k]) / 16777216.0, (edges.cdf(k + 1) - edges.cdf(k)) / 16777216.0,
                2e-4)
        << k;
}

namespace {

// Checks one conditional's edge table: exact ends, every frequency >= 1,
// find() the inverse of the table at every boundary and between, and bits()
// the table's cost to within its resolution where the mass is not tiny.
void expect_edges_valid(const MixtureEdges& e, int64_t levels, uint32_t precision,
                        const std::string& what) {
  std::vector<uint32_t> cdf(levels + 1);
  e.table(cdf.data());
  ASSERT_EQ(cdf[0], 0u) << what;
  ASSERT_EQ(cdf[levels], uint32_t{1} << precision) << what;
  for (int64_t k = 0; k < levels; ++k) {
    ASSERT_GE(cdf[k + 1], cdf[k] + 1) << what << " level " << k;
    ASSERT_EQ(e.cdf(k), cdf[k]);
    for (uint32_t slot : {cdf[k], cdf[k] + (cdf[k + 1] - cdf[k]) / 2, cdf[k + 1] - 1}) {
      uint32_t start = 0, end = 0;
      ASSERT_EQ(e.find(slot, &start, &end), k) << what << " slot " << slot;
      ASSERT_EQ(start, cdf[k]);
      ASSERT_EQ(end, cdf[k + 1]);
    }
    const double freq = cdf[k + 1] - cdf[k], p = freq / std::ldexp(1.0, precision);
    if (precision >= 20 && p > 1e-3)
      EXPECT_NEAR(e.bits(k), precision - std::log2(freq), 0.01) << what << " " << k;
  }
}

}  // namespace

// The edge rule's tables are valid for broad and sharp components, locations
// far outside [-1, 1], weights from extreme logits, 2 to 4096 levels, and the
// earlier channels' coupling; its binary search finds every level.
TEST(LogisticMixture, EdgeTablesAreValidForExtremeParameters) {
  MixtureEdges e;
  for (int64_t levels : {2, 3, 16, 256, 4096})
    for (double scale : {0.1, 1.0, 6.0, 60.0})
      for (int64_t C : {1, 3}) {
        const int64_t M = 4;
        auto f = features(1, C, M, 1, 1, scale, 100 + levels).flatten().contiguous();
        auto fa = f.accessor<float, 1>();
        // Component 0 as sharp as the floor allows, centred on a level's edge.
        fa[M] = 1.0f / static_cast<float>(levels - 1);
        fa[M + C * M] = -20.0f;
        const uint16_t earlier[3] = {static_cast<uint16_t>(levels / 3),
                                     static_cast<uint16_t>(levels - 1), 0};
        for (int64_t c = 0; c < C; ++c) {
          const std::string what = "levels " + std::to_string(levels) + " scale " +
                                   std::to_string(scale) + " C " + std::to_string(C) + " c " +
                                   std::to_string(c);
          e.prepare(f.data_ptr<float>(), C, c, earlier, M, levels, 24);
          expect_edges_valid(e, levels, 24, what);
        }
      }
  // The smallest precision the rule allows: 4 counts per level.
  auto f = features(1, 1, 2, 1, 1, 1.0, 7).flatten().contiguous();
  e.prepare(f.data_ptr<float>(), 1, 0, nullptr, 2, 16, 6);
  expect_edges_valid(e, 16, 6, "precision 6");
  EXPECT_THROW(e.prepare(f.data_ptr<float>(), 1, 0, nullptr, 2, 32, 6), std::invalid_argument);
}

// Edge tables as a coder sees them: a sharp logistic puts nearly all of
// 2^24 on its level, and temperature widens the table as it widens the
// masses.
TEST(LogisticMixture, EdgeTablesFollowTheMixture) {
  auto f = torch::zeros({mixture_features(1, 1)});
  f[1] = 2.0f * 100 / (K - 1) - 1.0f;  // level 100's centre
  f[2] = -7.0f;
  MixtureEdges e;
  e.prepare(f.data_ptr<float>(), 1, 0, nullptr, 1, K, 24);
  EXPECT_GT(e.cdf(101) - e.cdf(100), 0.95 * 16777216.0);
  EXPECT_EQ(e.find(1u << 23), 100);
  auto spread = [&](double t) {
    MixtureEdges w;
    auto g = torch::zeros({mixture_features(1, 1)});
    g[2] = -3.0f;
    w.prepare(g.data_ptr<float>(), 1, 0, nullptr, 1, K, 24, t);
    double m = 0, m2 = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double q = (w.cdf(k + 1) - w.cdf(k)) / 16777216.0;
      m += q * k;
      m2 += q * k * k;
    }
    return m2 - m * m;
  };
  EXPECT_NEAR(spread(2.0) / spread(1.0), 4.0, 0.1);
}

// Draws of one pixel's R and G follow the joint: the frequencies of R match
// its pmf, and T = 0 takes each channel's most likely level in turn.
TEST(LogisticMixture, SamplesFollowThePmf) {
  auto f = features(1, 2, 3, 1, 1, 1.0, 11);
  const int64_t n = 5000;
  auto many = f.expand({n, -1, -1, -1}).contiguous();
  DiscretizedLogisticMixture d(many, 2, K, 3, torch::zeros({n, 2, 1, 1}, torch::kUInt8));
  auto s = d.sample(1.0);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{n, 2, 1, 1}));
  auto r = s.select(1, 0).flatten().to(torch::kLong);
  auto counts = torch::bincount(r, {}, K).to(torch::kDouble) / n;
  auto pmf = torch::exp(d.log_pmf()[0].select(1, 0).flatten().to(torch::kDouble));
  // Over bins of 16 levels, so that each holds enough draws.
  auto binned = [](const torch::Tensor& v) { return v.view({16, 16}).sum(1); };
  EXPECT_LT((binned(counts) - binned(pmf)).abs().max().item<double>(), 0.02);
  // The mean level of G given R equals the average of E[G | R] over the draws' R.
  DiscretizedLogisticMixture given(many, 2, K, 3, s);
  const double mean_g = given.mean().select(1, 1).mean().item<double>();
  EXPECT_NEAR(s.select(1, 1).to(torch::kDouble).mean().item<double>(), mean_g, 3.0);
  auto mode =
      DiscretizedLogisticMixture(f, 2, K, 3, torch::zeros({1, 2, 1, 1}, torch::kUInt8)).sample(0.0);
  DiscretizedLogisticMixture at_mode(f, 2, K, 3, mode);
  EXPECT_EQ(mode[0][0][0][0].item<int64_t>(),
            at_mode.log_pmf()[0].select(1, 0).argmax().item<int64_t>());
  EXPECT_EQ(mode[0][1][0][0].item<int64_t>(),
            at_mode.log_pmf()[0].select(1, 1).argmax().item<int64_t>());
}

// Temperature multiplies every scale: T = 1 is the plain table, bit for bit;
// T = 2 doubles a centred logistic's spread (4x the variance, in levels); and
// the same T over the earlier channel reweights the components as the widened
// mixture does.
TEST(LogisticMixture, TemperatureWidensTheTables) {
  auto f = torch::zeros({mixture_features(1, 1)});
  f[2] = -3.0;  // scale e^-3 on [-1, 1]: about 6 levels
  std::vector<uint32_t> plain(K + 1), one(K + 1), two(K + 1);
  const float* p = f.data_ptr<float>();
  logistic_mixture_cdf(p, 1, 0, nullptr, 1, K, 24, plain.data());
  logistic_mixture_cdf(p, 1, 0, nullptr, 1, K, 24, one.data(), -1, 1.0);
  logistic_mixture_cdf(p, 1, 0, nullptr, 1, K, 24, two.data(), -1, 2.0);
  EXPECT_EQ(plain, one);
  auto variance = [](const std::vector<uint32_t>& cdf) {
    double m = 0, m2 = 0;
    for (int64_t k = 0; k < K; ++k) {
      const double q = (cdf[k + 1] - cdf[k]) / 16777216.0;  // 2^24: the floor of 1 per level is ~0
      m += q * k;
      m2 += q * k * k;
    }
    return m2 - m * m;
  };
  EXPECT_NEAR(variance(two) / variance(one), 4.0, 0.1);
  // Two components told apart by R: at T = 2 R's evidence is weaker, so G's
  // table moves towards the other component.
  auto g = torch::zeros({mixture_features(2, 2)});
  auto ga = g.accessor<float, 1>();
  // logits 0, 0; R locations -0.5, 0.5; G locations -0.5, 0.5; log-scales -3.
  ga[2] = -0.5f, ga[3] = 0.5f, ga[4] = -0.5f, ga[5] = 0.5f;
  for (int64_t k = 6; k < 10; ++k) ga[k] = -3.0f;
  const uint16_t r[1] = {115};  // x = -0.098: 8 scales from component 0, 12 from component 1
  std::vector<uint32_t> g1(K + 1), g2(K + 1);
  logistic_mixture_cdf(g.data_ptr<float>(), 2, 1, r, 2, K, 16, g1.data(), -1, 1.0);
  logistic_mixture_cdf(g.data_ptr<float>(), 2, 1, r, 2, K, 16, g2.data(), -1, 2.0);
  const double upper1 = 1.0 - g1[K / 2] / 65536.0, upper2 = 1.0 - g2[K / 2] / 65536.0;
  EXPECT_LT(upper1, 0.05);           // G given R: mostly component 0 at T = 1 (weight ~e^-4 on 1)
  EXPECT_GT(upper2, upper1 + 0.05);  // ~e^-2 at T = 2
}
