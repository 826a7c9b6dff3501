// The mathematics of the autoregressive models: causality in raster and
// R->G->B order, the PixelCNN blind spot, and the NLL against its definition.
#include <gtest/gtest.h>

#include "tame/dist/likelihood.h"
#include "tame/eval/evaluate.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/registry.h"

using namespace tame;

namespace {

// A model name, or "pixelrnn/<layer>" for one PixelRNN layer kind.
std::shared_ptr<AutoregressiveModel> tiny(std::string name, ImageShape shape, int64_t levels,
                                          nlohmann::json hp) {
  torch::manual_seed(3);
  if (const auto slash = name.find('/'); slash != std::string::npos) {
    hp["layer"] = name.substr(slash + 1);
    name = name.substr(0, slash);
  }
  auto m = make_model(name, hp, shape, levels);
  auto ar = std::dynamic_pointer_cast<AutoregressiveModel>(m);
  EXPECT_TRUE(ar != nullptr);
  return ar;
}

nlohmann::json tiny_hp(const std::string& name) {
  if (name == "pixelcnn") return {{"hidden", 6}, {"blocks", 2}, {"out_hidden", 12}};
  if (name.rfind("pixelrnn", 0) == 0) return {{"hidden", 12}, {"layers", 2}, {"out_hidden", 48}};
  return {{"hidden", 12},
          {"layers", 3},
          {"out_hidden", 48}};  // wide enough that no ReLU in the head is dead everywhere
}

// |d logits(c, i, j) / d x| for every input sub-pixel, summed over the batch of
// inputs x [B, C, H, W] (several inputs, so that a ReLU that happens to be off
// for one input does not hide a dependency): [C, H, W].
torch::Tensor input_gradient(AutoregressiveModel& m, const torch::Tensor& x, int64_t c, int64_t i,
                             int64_t j) {
  auto xi = x.detach().clone().requires_grad_(true);
  auto out = m.forward_unit(xi);  // [B, K, C, H, W]
  auto target = out.select(4, j).select(3, i).select(2, c).sum();
  return torch::autograd::grad({target}, {xi})[0].abs().sum(0);
}

class Causality : public ::testing::TestWithParam<std::tuple<std::string, int64_t>> {};

}  // namespace

// For every output sub-pixel, the gradient with respect to itself and every
// later sub-pixel (raster order, R before G before B) is exactly zero; for the
// Gated PixelCNN, every earlier sub-pixel has a non-zero gradient (on these
// small images its receptive field covers them all), and for the Diagonal
// BiLSTM every one but the single sub-pixel its design cannot reach.
TEST_P(Causality, OutputsDependOnlyOnEarlierSubPixels) {
  auto [name, C] = GetParam();
  const int64_t H = 5, W = 5;
  auto m = tiny(name, {C, H, W}, 7, tiny_hp(name));
  auto x = torch::randn({3, C, H, W});
  int64_t violations = 0, missing = 0, unreachable = 0;
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < C; ++c) {
        auto g = input_gradient(*m, x, c, i, j);
        const int64_t here = (i * W + j) * C + c;
        for (int64_t ii = 0; ii < H; ++ii)
          for (int64_t jj = 0; jj < W; ++jj)
            for (int64_t cc = 0; cc < C; ++cc) {
              const int64_t there = (ii * W + jj) * C + cc;
              double v = g[cc][ii][jj].item<double>();
              if (there >= here && v != 0.0) ++violations;
              if (there < here && v == 0.0) {
                // The one sub-pixel a Diagonal BiLSTM cannot see (see pixelrnn.h): the
                // last colour of the row above's last pixel, beyond the 7x7 input's reach.
                if (ii == i - 1 && jj == W - 1 && cc == C - 1 && j + 3 < W - 1)
                  ++unreachable;
                else
                  ++missing;
              }
            }
      }
  EXPECT_EQ(violations, 0) << name << " C=" << C;
  if (name == "gated-pixelcnn" || name == "pixelrnn/diagonal-bilstm") {
    EXPECT_EQ(missing, 0) << name << " has a blind spot";
  }
  if (name == "pixelrnn/diagonal-bilstm") {
    EXPECT_EQ(unreachable, (H - 1) * C);  // at j = 0 of rows 1..4, for each output colour
  }
}

INSTANTIATE_TEST_SUITE_P(Models, Causality,
                         ::testing::Combine(::testing::Values("pixelcnn", "gated-pixelcnn",
                                                              "pixelrnn/row-lstm",
                                                              "pixelrnn/diagonal-bilstm"),
                                            ::testing::Values(1, 3)),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           for (auto& ch : n)
                             if (ch == '-' || ch == '/') ch = '_';
                           return n + "_C" + std::to_string(std::get<1>(info.param));
                         });

// Three spatial layers each: PixelCNN (3x3 mask A + 2 blocks with a 3x3 mask B)
// against Gated PixelCNN (input layer + 2 gated layers, k = 3). The pixel one
// row up and two columns right is in PixelCNN's blind spot but seen by the
// gated stacks.
TEST(BlindSpot, PixelCNNMissesPixelsTheGatedStackSees) {
  ImageShape shape{1, 8, 8};
  auto pcnn = tiny("pixelcnn", shape, 5,
                   {{"hidden", 6}, {"blocks", 2}, {"input_kernel", 3}, {"out_hidden", 8}});
  auto gated = tiny("gated-pixelcnn", shape, 5,
                    {{"hidden", 6}, {"layers", 2}, {"input_kernel", 3}, {"out_hidden", 8}});
  auto x = torch::randn({1, 1, 8, 8});
  const int64_t i = 5, j = 3;
  auto gp = input_gradient(*pcnn, x, 0, i, j)[0];
  auto gg = input_gradient(*gated, x, 0, i, j)[0];
  EXPECT_EQ(gp[i - 1][j + 2].item<double>(), 0.0);
  EXPECT_GT(gg[i - 1][j + 2].item<double>(), 0.0);
  EXPECT_GT(gp[i - 1][j + 1].item<double>(), 0.0);  // the PixelCNN does see the near diagonal
  // Every earlier pixel PixelCNN sees, the gated model sees too, and strictly more.
  int64_t only_gated = 0;
  for (int64_t r = 0; r < 8; ++r)
    for (int64_t s = 0; s < 8; ++s) {
      if (r * 8 + s >= i * 8 + j) continue;
      bool p = gp[r][s].item<double>() > 0, g = gg[r][s].item<double>() > 0;
      EXPECT_FALSE(p && !g) << r << "," << s;
      only_gated += (!p && g);
    }
  EXPECT_GT(only_gated, 0);
}

TEST(Autoregressive, NllIsTheCategoricalNllOfTheLogits) {
  for (const std::string name : {"pixelcnn", "gated-pixelcnn"}) {
    auto m = tiny(name, {3, 4, 4}, 256, tiny_hp(name));
    auto x = torch::randint(0, 256, {2, 3, 4, 4}).to(torch::kUInt8);
    auto logits = m->logits(x);
    EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 256, 3, 4, 4}));
    EXPECT_TRUE(torch::allclose(m->nll(x), categorical_nll(logits, x)));
    EXPECT_EQ(m->bound(), Bound::kExact);
  }
}

TEST(Autoregressive, SamplesHaveTheRightShapeAndRange) {
  for (const std::string name : {"pixelcnn", "gated-pixelcnn"}) {
    auto m = tiny(name, {3, 4, 5}, 4, tiny_hp(name));
    torch::manual_seed(1);
    auto s = m->sample(3, 0.8);
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, 3, 4, 5}));
    EXPECT_EQ(s.scalar_type(), torch::kUInt8);
    EXPECT_LT(s.max().item<int>(), 4);
  }
}

// Naive sampling crops the image to the rows generated so far; that is only
// valid if outputs on row i do not change when later rows are removed.
TEST(Autoregressive, OutputsOnARowDoNotDependOnLaterRows) {
  for (const std::string name : {"pixelcnn", "gated-pixelcnn"}) {
    auto m = tiny(name, {1, 6, 6}, 16, tiny_hp(name));
    auto x = torch::randint(0, 16, {2, 1, 6, 6}).to(torch::kUInt8);
    auto full = m->logits(x).slice(3, 0, 3);
    auto cropped = m->logits(x.slice(2, 0, 3));
    EXPECT_TRUE(torch::allclose(full, cropped, 1e-4, 1e-5)) << name;
  }
}

TEST(Registry, UnknownNamesAndKeysAreClearErrors) {
  EXPECT_THROW(find_model("nope"), Error);
  EXPECT_THROW(resolve_hparams("pixelcnn", {{"widht", 3}}), Error);
  EXPECT_THROW(resolve_hparams("pixelcnn", {{"hidden", "wide"}}), Error);
  EXPECT_EQ(resolve_hparams("pixelcnn", {{"hidden", 3}})["hidden"], 3);
  EXPECT_THROW(make_model("gated-pixelcnn", {{"hidden", 4}}, {3, 8, 8}, 256), Error);  // 4 % 3 != 0
  for (const auto& e : model_registry()) EXPECT_FALSE(e.defaults.empty()) << e.name;
}

// Convolutional autoregressive models score images of any size with their
// channel count (evaluate() checks by any_size()); a model of a fixed size
// refuses them with one clear Error.
TEST(AnySize, ConvolutionalModelsScoreOtherSizesOthersRefuse) {
  for (const std::string name : {"pixelcnn", "gated-pixelcnn"}) {
    auto m = tiny(name, {1, 8, 8}, 256, tiny_hp(name));
    ASSERT_TRUE(m->any_size());
    for (auto hw : {std::pair<int64_t, int64_t>{1, 1}, {5, 9}, {12, 3}}) {
      auto x = torch::randint(0, 256, {2, 1, hw.first, hw.second}).to(torch::kUInt8);
      auto r = evaluate(*m, x);
      EXPECT_NEAR(r.nll_nats, m->nll(x).mean().item<double>(), 1e-3) << name;
      EXPECT_NEAR(r.bpd, bits_per_dim(r.nll_nats, hw.first * hw.second), 1e-9);
    }
    auto rgb = torch::randint(0, 256, {2, 3, 8, 8}).to(torch::kUInt8);
    EXPECT_THROW(evaluate(*m, rgb), Error) << name;
  }
  auto vae = make_model("vae", {{"latent", 2}, {"hidden", 4}}, {1, 8, 8}, 256);
  EXPECT_FALSE(vae->any_size());
  try {
    evaluate(*vae, torch::zeros({2, 1, 12, 12}, torch::kUInt8));
    ADD_FAILURE() << "a vae for 8x8 images scored 12x12 ones";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected 1x8x8 images, got 1x12x12"), std::string::npos)
        << e.what();
  }
}
