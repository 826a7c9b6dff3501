// PixelRNN: the skew and its inverse are exact, and the two layer kinds see
// what the paper says they see (the Row LSTM a triangle with a blind spot, the
// Diagonal BiLSTM every earlier pixel). Causality and the cached engine are in
// the shared suites (test_autoregressive.cpp, test_step_engine.cpp).
#include <gtest/gtest.h>

#include "tame/models/autoregressive/pixelrnn.h"
#include "tame/nn/lstm.h"
#include "tame/registry.h"

using namespace tame;

TEST(PixelRNN, SkewShiftsRowRByRAndUnskewInvertsIt) {
  torch::manual_seed(1);
  for (auto [H, W] : {std::pair{4, 6}, std::pair{5, 1}, std::pair{1, 5}, std::pair{7, 3}}) {
    auto x = torch::randn({2, 3, H, W});
    auto s = skew(x);
    ASSERT_EQ(s.sizes(), (std::vector<int64_t>{2, 3, H, W + H - 1}));
    for (int64_t r = 0; r < H; ++r)
      for (int64_t c = 0; c < W + H - 1; ++c) {
        auto want = c >= r && c < r + W ? x.select(2, r).select(2, c - r) : torch::zeros({2, 3});
        EXPECT_TRUE(torch::equal(s.select(2, r).select(2, c), want)) << r << "," << c;
      }
    EXPECT_TRUE(torch::equal(unskew(s), x)) << H << "x" << W;
  }
}

namespace {

// |d logits(0, i, j) / d x| of a one-channel PixelRNN with one LSTM layer and a
// 3x3 input convolution, over three inputs: [H, W].
torch::Tensor receptive_field(const std::string& layer, int64_t i, int64_t j) {
  torch::manual_seed(4);
  PixelRNN m({layer, 6, 1, 3, 3, 16}, {1, 7, 7}, 4);
  auto x = torch::randn({3, 1, 7, 7}).requires_grad_(true);
  auto target = m.forward_unit(x).select(4, j).select(3, i).select(2, 0).sum();
  return torch::autograd::grad({target}, {x})[0].abs().sum(0)[0];
}

}  // namespace

// One layer on a 3x3 mask-A input: the Row LSTM at (4, 3) sees the row above
// up to column 4 (the input convolution's reach) but not (3, 5) or (3, 6): its
// field widens by one column per row up, a triangle with a blind spot. The
// Diagonal BiLSTM sees every earlier pixel, (3, 5) through its right-to-left
// direction, but one: (3, 6), the row above's last pixel, enters the layer
// input only on row 4 at columns 5 and up, which no state of (4, 3) reads.
// At (4, 5) the input convolution reaches it, and nothing earlier is missed.
TEST(PixelRNN, RowLstmHasATriangleTheDiagonalBiLstmMissesOnePixel) {
  for (const int64_t j : {3, 5}) {
    const int64_t i = 4;
    auto row = receptive_field("row-lstm", i, j);
    auto diag = receptive_field("diagonal-bilstm", i, j);
    int64_t row_missing = 0;
    for (int64_t r = 0; r < 7; ++r)
      for (int64_t c = 0; c < 7; ++c) {
        const bool earlier = r * 7 + c < i * 7 + j, unreachable = r == i - 1 && c == 6 && j + 1 < 6;
        EXPECT_EQ(diag[r][c].item<double>() > 0, earlier && !unreachable) << r << "," << c;
        if (!earlier) {
          EXPECT_EQ(row[r][c].item<double>(), 0.0) << r << "," << c;
        } else {
          row_missing += row[r][c].item<double>() == 0.0;
        }
      }
    if (j != 3) continue;
    EXPECT_GT(row[i - 1][j + 1].item<double>(), 0.0);
    EXPECT_EQ(row[i - 1][j + 2].item<double>(), 0.0);
    EXPECT_EQ(row[i - 1][j + 3].item<double>(), 0.0);
    EXPECT_GT(row[i - 3][j + 3].item<double>(), 0.0);  // three rows up, three columns right
    EXPECT_GT(row_missing, 0);
  }
}

TEST(PixelRNN, RefusesUnknownLayersAndWidthsTheMasksCannotSplit) {
  EXPECT_THROW(make_model("pixelrnn", {{"layer", "grid-lstm"}}, ImageShape{1, 8, 8}, 256),
               std::exception);
  EXPECT_THROW(make_model("pixelrnn", {{"hidden", 8}}, ImageShape{3, 8, 8}, 256), std::exception);
  EXPECT_NO_THROW(make_model("pixelrnn", {{"hidden", 6}, {"layers", 1}}, ImageShape{3, 8, 8}, 256));
}

// The fused CPU step (float) against the composite form (double takes it):
// the same h and c, and the same gradients for the gates and the previous
// cell, with and without a mask and with only one of the outputs used.
TEST(PixelRNN, FusedLstmStepMatchesTheCompositeFormAndItsGradients) {
  torch::manual_seed(2);
  const int64_t B = 3, h = 5, L = 13;  // 5 x 13 = 65: vector lanes and a tail
  auto gates = (2 * torch::randn({B, 4 * h, L})).to(torch::kDouble);
  auto c_prev = torch::randn({B, h, L}, torch::kDouble);
  auto mask = (torch::rand({L}) > 0.3).to(torch::kDouble);
  auto wh = torch::randn({B, h, L}, torch::kDouble), wc = torch::randn({B, h, L}, torch::kDouble);
  for (bool masked : {false, true})
    for (int use : {0, 1, 2}) {  // both outputs, h only, c only
      std::vector<torch::Tensor> got[2];
      for (auto type : {torch::kDouble, torch::kFloat}) {
        auto g = gates.to(type).requires_grad_(true);
        auto c = c_prev.to(type).requires_grad_(true);
        auto [hh, cc] = lstm_step(g, c, masked ? mask.to(type) : torch::Tensor());
        torch::Tensor loss = torch::zeros({}, type);
        if (use != 2) loss = loss + (hh * wh.to(type)).sum();
        if (use != 1) loss = loss + (cc * wc.to(type)).sum();
        auto d = torch::autograd::grad({loss}, {g, c});
        got[type == torch::kFloat] = {hh.to(torch::kDouble), cc.to(torch::kDouble),
                                      d[0].to(torch::kDouble), d[1].to(torch::kDouble)};
      }
      for (int k = 0; k < 4; ++k)
        EXPECT_LT((got[0][k] - got[1][k]).abs().max().item<double>(), 2e-5)
            << "masked " << masked << " use " << use << " tensor " << k;
      if (masked)
        EXPECT_EQ((got[1][0] * (1 - mask)).abs().max().item<double>(), 0.0);  // held at zero
    }
}
