#include <gtest/gtest.h>

#include "tame/nn/masked_conv.h"

using namespace tame;

TEST(Masks, SingleChannelMaskAAndB) {
  auto a = make_mask(1, 1, 3, 3, 1, 1, 1, Mask::kA);
  auto b = make_mask(1, 1, 3, 3, 1, 1, 1, Mask::kB);
  auto expect_a = torch::tensor({1, 1, 1, 1, 0, 0, 0, 0, 0}, torch::kFloat).view({1, 1, 3, 3});
  auto expect_b = torch::tensor({1, 1, 1, 1, 1, 0, 0, 0, 0}, torch::kFloat).view({1, 1, 3, 3});
  EXPECT_TRUE(torch::equal(a, expect_a));
  EXPECT_TRUE(torch::equal(b, expect_b));
}

TEST(Masks, ColourOrderingAtTheCentre) {
  // 6 outputs and 3 inputs on C = 3: output o has colour o % 3, input i colour i.
  auto a = make_mask(6, 3, 3, 3, 1, 1, 3, Mask::kA).select(3, 1).select(2, 1);  // centre tap [6, 3]
  auto b = make_mask(6, 3, 3, 3, 1, 1, 3, Mask::kB).select(3, 1).select(2, 1);
  for (int64_t o = 0; o < 6; ++o)
    for (int64_t i = 0; i < 3; ++i) {
      EXPECT_EQ(a[o][i].item<float>(), (i < o % 3) ? 1.0f : 0.0f) << o << " " << i;
      EXPECT_EQ(b[o][i].item<float>(), (i <= o % 3) ? 1.0f : 0.0f) << o << " " << i;
    }
  // Off-centre taps ignore colour: earlier taps all 1, later taps all 0.
  auto m = make_mask(6, 3, 3, 3, 1, 1, 3, Mask::kA);
  EXPECT_EQ(m.select(2, 0).min().item<float>(), 1.0f);
  EXPECT_EQ(m.select(2, 2).max().item<float>(), 0.0f);
}

TEST(MaskedConv, ForwardEqualsConvWithMaskedWeightAndKeepsRawWeights) {
  MaskedConv2d conv(MaskedConv2dOptions(2, 4, 5).mask(Mask::kA).colors(2));
  auto x = torch::randn({3, 2, 6, 7});
  namespace F = torch::nn::functional;
  auto ref =
      F::conv2d(x, conv->weight * conv->mask, F::Conv2dFuncOptions().bias(conv->bias).padding(2));
  EXPECT_TRUE(torch::allclose(conv(x), ref, 1e-5, 1e-5));
  // The mask is applied in forward(): parameters under the mask keep their values
  // and receive zero gradient.
  auto before = conv->weight.detach().clone();
  EXPECT_GT((before * (1 - conv->mask)).abs().sum().item<double>(), 0.0);
  conv(x).sum().backward();
  EXPECT_EQ((conv->weight.grad() * (1 - conv->mask)).abs().sum().item<double>(), 0.0);
}

TEST(MaskedConv, AsymmetricCentreKeepsOutputAlignedAndCausal) {
  // A 2x3 kernel whose centre is its bottom-middle tap: output row r sees rows r-1..r.
  MaskedConv2d conv(MaskedConv2dOptions(1, 1, 3).kernel_h(2).center_row(1).mask(Mask::kNone));
  auto x = torch::randn({1, 1, 5, 5}, torch::requires_grad());
  auto y = conv(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  auto g = torch::autograd::grad({y[0][0][2][2]}, {x})[0][0][0];
  EXPECT_EQ(g.slice(0, 3).abs().sum().item<double>(), 0.0);  // no row below
  EXPECT_GT(g[1][3].abs().item<double>(), 0.0);              // row above, to the right
}

TEST(MaskedConv, ShiftDownMovesRowsByOne) {
  auto x = torch::arange(12, torch::kFloat).view({1, 1, 4, 3});
  auto y = shift_down(x);
  EXPECT_EQ(y[0][0][0].abs().sum().item<float>(), 0.0f);
  EXPECT_TRUE(torch::equal(y[0][0].slice(0, 1), x[0][0].slice(0, 0, 3)));
}
