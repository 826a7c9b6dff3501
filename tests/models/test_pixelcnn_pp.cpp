// PixelCNN++ (models/autoregressive/pixelcnn_pp.h): the mixture's parameters
// at pixel (i, j) depend on the pixels before it in raster order only, on 1-
// and 3-channel images (the mixture then orders the channels within a pixel);
// its NLL is the mixture's and falls when it trains; samples are images; the
// cached step engine gives the full network's parameters at any image size,
// independent of the batch, in a few rows of memory per layer.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "tame/dist/integer_cdf.h"
#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/pixelcnn_pp.h"
#include "tame/models/autoregressive/pixelcnn_pp_engine.h"
#include "tame/models/autoregressive/step_engine.h"

using namespace tame;

namespace {
std::shared_ptr<PixelCnnPP> small(int64_t C, int64_t side) {
  torch::manual_seed(1);
  PixelCnnPPOptions o;
  o.filters = 6;
  o.resnets = 1;
  o.mixtures = 2;
  auto m = std::make_shared<PixelCnnPP>(o, ImageShape{C, side, side}, 256);
  m->eval();
  return m;
}
}  // namespace

TEST(PixelCnnPP, CausalByGradients) {
  for (int64_t C : {1, 3}) {
    const int64_t S = 8;
    auto m = small(C, S);
    for (auto [i, j] :
         std::vector<std::pair<int64_t, int64_t>>{{0, 0}, {3, 4}, {5, 0}, {7, 7}, {2, 7}}) {
      SCOPED_TRACE("C " + std::to_string(C) + " at (" + std::to_string(i) + ", " +
                   std::to_string(j) + ")");
      auto x = torch::randn({1, C, S, S}).requires_grad_();
      m->forward_unit(x).select(2, i).select(2, j).sum().backward();
      auto g = x.grad().abs().sum(1)[0];  // [S, S]: every channel of each pixel
      for (int64_t r = 0; r < S; ++r)
        for (int64_t c = 0; c < S; ++c) {
          const bool before = r < i || (r == i && c < j);
          if (!before) EXPECT_EQ(g[r][c].item<double>(), 0.0) << r << "," << c;
        }
      if (j > 0) EXPECT_GT(g[i][j - 1].item<double>(), 0.0);  // the pixel to the left
      if (i > 0) EXPECT_GT(g[i - 1][j].item<double>(), 0.0);  // and the one above
      if (i > 0 && j + 1 < S) EXPECT_GT(g[i - 1][j + 1].item<double>(), 0.0);  // no blind spot
    }
  }
}

TEST(PixelCnnPP, NllIsTheMixturesAndFallsWhenTrained) {
  auto m = small(1, 8);
  m->train();
  const auto data = tame::testing::synthetic_images(256, 8, 8, 3);
  EXPECT_EQ(m->forward_unit(scale_to_unit(data.slice(0, 0, 2), 256)).size(1),
            mixture_features(1, 2));
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  auto bpd = [&] {
    torch::NoGradGuard g;
    m->eval();
    const double v = bits_per_dim(m->nll(data), 64).mean().item<double>();
    m->train();
    return v;
  };
  const double before = bpd();
  for (int step = 0; step < 60; ++step) {
    opt.zero_grad();
    m->loss(data.index_select(0, torch::randint(0, 256, {32}))).backward();
    opt.step();
  }
  const double after = bpd();
  std::printf("pixelcnn++ on 8x8: %.3f -> %.3f bits/dim\n", before, after);
  EXPECT_TRUE(std::isfinite(after));
  EXPECT_LT(after, before - 0.5);
  EXPECT_EQ(m->bound(), Bound::kExact);
}

TEST(PixelCnnPP, SamplesAreImagesAndZeroTemperatureIsDeterministic) {
  auto m = small(3, 4);
  auto s = m->sample(3, 1.0);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, 3, 4, 4}));
  EXPECT_EQ(s.scalar_type(), torch::kUInt8);
  EXPECT_TRUE(torch::equal(m->sample(2, 0.0), m->sample(2, 0.0)));
  // Samples come from the engine, seeded by torch's generator.
  torch::manual_seed(4);
  auto a = m->sample(2, 1.0);
  torch::manual_seed(4);
  EXPECT_TRUE(torch::equal(m->sample(2, 1.0), a));
}

namespace {

// Every pixel's mixture parameters from the engine ([B, P, H, W], as
// forward_unit gives them), and the engine's -log2 p of x in bits, summed.
std::pair<torch::Tensor, double> engine_pass(StepEngine& e, const torch::Tensor& x) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), P = e.params();
  auto out = torch::zeros({B, P, H, W});
  auto xa = x.accessor<uint8_t, 4>();
  auto oa = out.accessor<float, 4>();
  e.begin(B, H, W);
  std::vector<uint16_t> v(B);
  std::vector<uint32_t> cdf(B * (e.levels() + 1));
  double bits = 0;
  while (!e.done()) {
    const SubPixel p = e.next();
    for (int64_t b = 0; b < B; ++b) v[b] = xa[b][p.c][p.i][p.j];
    const float* f = e.conditional();
    if (p.c == 0)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t k = 0; k < P; ++k) oa[b][k][p.i][p.j] = f[b * P + k];
    bits += e.cdfs(16, cdf.data(), v.data());
    e.observe(v.data());
  }
  return {out, bits};
}

std::shared_ptr<PixelCnnPP> sharp(int64_t C) {
  auto m = small(C, 8);
  torch::NoGradGuard g;
  // Larger than initial weights, so that the parameters vary from pixel to
  // pixel and a wrong connection shows.
  for (auto& p : m->parameters()) p.mul_(1.6);
  return m;
}

}  // namespace

// The engine's parameters equal the full network's at every pixel, for 1 and
// 3 channels, at the model's size, at odd sizes (whose lower resolutions are
// rounded up and whose upsampled maps are cropped), at 1x1, 1xN and Nx1, and on
// a tall image whose rows wrap the rings many times; and its -log2 p is the
// model's NLL.
TEST(PixelCnnPP, CachedStepsEqualTheFullNetworkAtAnySize) {
  for (int64_t C : {1, 3}) {
    auto m = sharp(C);
    auto e = m->step_engine();
    for (auto [H, W] : {std::pair{8, 8}, std::pair{1, 1}, std::pair{1, 7}, std::pair{6, 1},
                        std::pair{9, 11}, std::pair{7, 5}, std::pair{37, 3}}) {
      SCOPED_TRACE("C " + std::to_string(C) + ", " + std::to_string(H) + "x" + std::to_string(W));
      torch::manual_seed(H * 31 + W);
      auto x = torch::randint(0, 256, {3, C, H, W}).to(torch::kUInt8);
      torch::Tensor full, nll;
      {
        torch::NoGradGuard g;
        full = m->forward_unit(scale_to_unit(x, 256));
        nll = m->nll(x);
      }
      auto [cached, bits] = engine_pass(*e, x);
      if (H * W > 4) {
        ASSERT_GT(full.std().item<double>(), 0.3);  // the test has teeth
      }
      EXPECT_LT((cached - full).abs().max().item<double>(), 2e-4);
      const double want = nll.sum().item<double>() / std::log(2.0);
      EXPECT_NEAR(bits, want, 1e-4 * want + 1e-3);
    }
  }
}

// The coder's symbols are the intervals of the tables cdfs() writes, under
// either frequency rule: for the true value (with the same -log2 p) and for
// slots at both ends of every symbol and between. The two rules are two
// fingerprints and two sets of tables, each within the tables' resolution of
// the model's NLL.
TEST(PixelCnnPP, SymbolsAreTheTablesIntervalsUnderEitherRule) {
  auto m = sharp(3);
  auto engine = m->step_engine();
  auto* pp = dynamic_cast<PixelCnnPPEngine*>(engine.get());
  ASSERT_TRUE(pp);
  EXPECT_EQ(pp->rule(), PixelCnnPPEngine::kEdgeRule);
  EXPECT_NE(pp->with_rule(PixelCnnPPEngine::kMassRule)->fingerprint(), pp->fingerprint());
  EXPECT_EQ(pp->with_rule(PixelCnnPPEngine::kEdgeRule)->fingerprint(), pp->fingerprint());
  torch::manual_seed(8);
  auto x = torch::randint(0, 256, {2, 3, 4, 5}).to(torch::kUInt8);
  auto xa = x.accessor<uint8_t, 4>();
  double nll = 0;
  {
    torch::NoGradGuard g;
    nll = m->nll(x).sum().item<double>() / std::log(2.0);
  }
  std::vector<std::vector<uint32_t>> tables;
  for (int rule : {PixelCnnPPEngine::kMassRule, PixelCnnPPEngine::kEdgeRule}) {
    SCOPED_TRACE("rule " + std::to_string(rule));
    auto e = pp->with_rule(rule);
    e->begin(2, 4, 5);
    std::vector<uint16_t> v(2);
    std::vector<uint32_t> cdf(2 * 257), all;
    double table_bits = 0, symbol_bits = 0, ideal = 0;
    while (!e->done()) {
      const SubPixel p = e->next();
      for (int64_t b = 0; b < 2; ++b) v[b] = xa[b][p.c][p.i][p.j];
      table_bits += e->cdfs(24, cdf.data(), v.data());
      all.insert(all.end(), cdf.begin(), cdf.end());
      for (int64_t b = 0; b < 2; ++b) {
        const uint32_t* t = cdf.data() + b * 257;
        const Symbol s = e->symbol(b, 24, v[b], 0, 1.0, &symbol_bits);
        ASSERT_EQ(s.value, v[b]);
        ASSERT_EQ(s.start, t[v[b]]);
        ASSERT_EQ(s.freq, t[v[b] + 1] - t[v[b]]);
        ideal += 24 - std::log2(static_cast<double>(s.freq));
        for (int64_t k : {int64_t{0}, int64_t{v[b]}, int64_t{255}, int64_t{(v[b] * 7 + 3) % 256}})
          for (uint32_t slot : {t[k], t[k] + (t[k + 1] - t[k]) / 3, t[k + 1] - 1})
            ASSERT_EQ(e->symbol(b, 24, -1, slot).value, k) << "slot " << slot;
      }
      e->observe(v.data());
    }
    EXPECT_NEAR(table_bits, symbol_bits, 1e-9 * table_bits);  // summed in another order
    EXPECT_NEAR(table_bits, nll, 1e-4 * nll + 1e-3);
    EXPECT_NEAR(ideal, nll, 1e-3 * nll + 0.01);
    tables.push_back(all);
  }
  EXPECT_NE(tables[0], tables[1]);
}

// One image alone or inside a batch gets bit-identical parameters; the
// fingerprint follows the weights; a clone gives the same.
TEST(PixelCnnPP, EngineBitsDoNotDependOnTheBatch) {
  auto m = sharp(3);
  torch::manual_seed(6);
  auto x = torch::randint(0, 256, {5, 3, 6, 7}).to(torch::kUInt8);
  auto e = m->step_engine();
  auto all = engine_pass(*e, x).first;
  auto clone = e->clone();
  auto one = engine_pass(*clone, x.slice(0, 3, 4)).first;
  EXPECT_TRUE(torch::equal(all[3], one[0]));
  EXPECT_EQ(e->fingerprint(), clone->fingerprint());
  {
    torch::NoGradGuard g;
    m->parameters()[5].view(-1)[0].add_(1e-3);
  }
  EXPECT_NE(m->step_engine()->fingerprint(), e->fingerprint());
}

// The rings hold a few rows of each layer, not the image: the caches are the
// same for any height, grow with the width, and are a small part of the
// full-resolution maps at 512x512.
TEST(PixelCnnPP, CachesHoldRowsNotImages) {
  torch::manual_seed(1);
  PixelCnnPPOptions o;  // the defaults
  auto m = std::make_shared<PixelCnnPP>(o, ImageShape{3, 28, 28}, 256);
  auto e = m->step_engine();
  e->begin(1, 512, 512);
  const size_t at_512 = e->cache_bytes();
  // Each gated resnet holds two maps of `filters`, each stream, each pass,
  // at 28x28, 14x14 and 7x7; the full-resolution ones dominate.
  const double full = 2.0 * 2 * (2 * o.resnets + 1) * 512 * 512 * o.filters * sizeof(float);
  std::printf("pixelcnn++ cache for one 512x512 image: %.1f MB (full-size maps: > %.0f MB)\n",
              at_512 / 1e6, full / 1e6);
  EXPECT_LT(at_512, 0.05 * full);
  e->begin(1, 2048, 512);
  EXPECT_EQ(e->cache_bytes(), at_512);
  e->begin(1, 512, 1024);
  EXPECT_GT(e->cache_bytes(), at_512);
  // The rings so sized still give the full network on a tall image whose rows
  // wrap them many times, with the deeper chains of more resnets.
  o.filters = 4;
  o.resnets = 3;
  o.mixtures = 2;
  torch::manual_seed(3);
  PixelCnnPP deep(o, ImageShape{1, 8, 8}, 256);
  deep.eval();
  auto x = torch::randint(0, 256, {2, 1, 41, 6}).to(torch::kUInt8);
  torch::NoGradGuard g;
  auto cached = engine_pass(*deep.step_engine(), x).first;
  EXPECT_LT((cached - deep.forward_unit(scale_to_unit(x, 256))).abs().max().item<double>(), 2e-4);
}

// weight_norm=true: the network starts as the plain one (gains at the
// weights' norms), its output no longer depends on the scale of a weight v
// (only on its direction and gain), and the engine exports the normalized
// weights.
TEST(PixelCnnPP, WeightNormalization) {
  PixelCnnPPOptions o;
  o.filters = 6;
  o.resnets = 1;
  o.mixtures = 2;
  torch::manual_seed(1);
  PixelCnnPP plain(o, ImageShape{3, 8, 8}, 256);
  o.weight_norm = true;
  torch::manual_seed(1);
  PixelCnnPP wn(o, ImageShape{3, 8, 8}, 256);
  plain.eval();
  wn.eval();
  EXPECT_GT(wn.parameters().size(), plain.parameters().size());
  torch::manual_seed(2);
  auto x = torch::randint(0, 256, {2, 3, 8, 8}).to(torch::kUInt8);
  torch::NoGradGuard g;
  auto f0 = wn.forward_unit(scale_to_unit(x, 256));
  EXPECT_LT((f0 - plain.forward_unit(scale_to_unit(x, 256))).abs().max().item<double>(), 1e-5);
  // Scaling every v by 3 leaves w = g v / |v| alone; changing the gains moves it.
  for (const auto& p : wn.named_parameters())
    if (p.key().find("weight") != std::string::npos) p.value().mul_(3.0);
  auto f1 = wn.forward_unit(scale_to_unit(x, 256));
  EXPECT_LT((f1 - f0).abs().max().item<double>(), 1e-4);
  for (const auto& p : wn.named_parameters())
    if (p.key().back() == 'g') p.value().mul_(1.5);  // "g", "skip_g", "head_g"
  auto f2 = wn.forward_unit(scale_to_unit(x, 256));
  EXPECT_GT((f2 - f0).abs().max().item<double>(), 0.1);
  auto [cached, bits] = engine_pass(*wn.step_engine(), x);
  EXPECT_LT((cached - f2).abs().max().item<double>(), 2e-4);
}
