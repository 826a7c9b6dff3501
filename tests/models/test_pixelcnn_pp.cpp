// PixelCNN++ (models/autoregressive/pixelcnn_pp.h): the mixture's parameters
// at pixel (i, j) depend on the pixels before it in raster order only, on 1-
// and 3-channel images (the mixture then orders the channels within a pixel);
// its NLL is the mixture's and falls when it trains; samples are images.
#include <gtest/gtest.h>

#include "../test_util.h"
#include "tame/dist/integer_cdf.h"
#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/pixelcnn_pp.h"

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
  EXPECT_THROW(PixelCnnPP(PixelCnnPPOptions{}, ImageShape{1, 6, 6}, 256), std::exception);
}
