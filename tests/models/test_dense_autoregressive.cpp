// The dense autoregressive models (FVSBN, NADE, MADE, the transformer): causality by gradients
// for every connectivity draw, NADE's running sum against the direct
// conditionals, MADE's masks and its ensemble against -log mean_m p_m(x),
// uniform outputs at exactly 1 and 8 bits/dim, the step engines against the
// full models, and the codec's round trip at any thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tame/codec/model_codec.h"
#include "tame/dist/likelihood.h"
#include "tame/error.h"
#include "tame/models/autoregressive/made.h"
#include "tame/models/autoregressive/nade.h"
#include "tame/registry.h"

using namespace tame;

namespace {

struct Case {
  std::string name;
  nlohmann::json hp;
  int64_t levels;
};

std::vector<Case> cases() {
  return {{"fvsbn", nlohmann::json::object(), 2},
          {"fvsbn", {{"rank", 3}}, 16},
          {"fvsbn", {{"rank", 0}}, 5},
          {"nade", {{"hidden", 7}}, 2},
          {"nade", {{"hidden", 7}}, 16},
          {"made", {{"hidden", 9}}, 2},
          {"made", {{"hidden", 9}, {"direct", false}}, 2},
          {"made", {{"hidden", 9}, {"direct", false}, {"masks", 2}}, 16},
          {"made", {{"hidden", 9}, {"layers", 2}, {"masks", 3}}, 2},
          {"made", {{"hidden", 9}, {"layers", 2}, {"masks", 2}}, 16},
          {"transformer", {{"width", 8}, {"layers", 2}, {"heads", 2}, {"mlp", 8}}, 2},
          {"transformer", {{"width", 8}, {"layers", 2}, {"heads", 2}, {"mlp", 8}}, 16}};
}

std::string label(const Case& c) { return c.name + c.hp.dump() + " K=" + std::to_string(c.levels); }

std::shared_ptr<DenseAutoregressiveModel> make(const Case& c, ImageShape shape, double gain = 2.0) {
  torch::manual_seed(17);
  auto m = std::dynamic_pointer_cast<DenseAutoregressiveModel>(
      make_model(c.name, c.hp, shape, c.levels));
  EXPECT_TRUE(m != nullptr);
  torch::NoGradGuard g;
  // Far from uniform, so that a wrong connection shows.
  for (auto& p : m->parameters()) p.mul_(gain).add_(0.05 * torch::randn_like(p));
  return m;
}

torch::Tensor images(int64_t n, ImageShape s, int64_t levels, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(0, levels, {n, s.channels, s.height, s.width})
      .to(levels <= 256 ? torch::kUInt8 : torch::kInt32);
}

// -log2 p of every sub-pixel through the engine, summed over the batch: [D].
std::vector<double> engine_bits(StepEngine& e, const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = e.levels();
  auto xa = x.accessor<uint8_t, 4>();
  std::vector<double> bits;
  std::vector<uint16_t> v(B);
  std::vector<uint32_t> cdf(B * (K + 1));
  e.begin(B, H, W);
  while (!e.done()) {
    const SubPixel p = e.next();
    for (int64_t b = 0; b < B; ++b) v[b] = xa[b][p.c][p.i][p.j];
    bits.push_back(e.cdfs(16, cdf.data(), v.data()));
    e.observe(v.data());
  }
  EXPECT_EQ(static_cast<int64_t>(bits.size()), C * H * W);
  return bits;
}

// The same from the full model's logits: [D] in sub-pixel order.
std::vector<double> full_bits(DenseAutoregressiveModel& m, const torch::Tensor& x) {
  torch::NoGradGuard g;
  auto lp = torch::log_softmax(m.logits(x), 1).gather(1, x.to(torch::kLong).unsqueeze(1));
  auto per = to_subpixels(lp.squeeze(1)).sum(0) / -std::log(2.0);
  return {per.data_ptr<float>(), per.data_ptr<float>() + per.numel()};
}

}  // namespace

// Every output sub-pixel has a zero gradient with respect to itself and every
// later sub-pixel; FVSBN, NADE and MADE with direct connections read every
// earlier one. MADE: every draw.
TEST(DenseAutoregressive, CausalByGradientsForEveryDraw) {
  for (const auto& c : cases())
    for (int64_t C : {1, 3}) {
      if (c.name == "transformer") continue;  // its inputs are tokens: see the next test
      ImageShape s{C, 3, 2};
      auto m = make(c, s);
      const int64_t D = s.dims(), draws = c.hp.value("masks", 1);
      for (int64_t draw = 0; draw < draws; ++draw) {
        if (auto made = std::dynamic_pointer_cast<Made>(m)) made->set_draw(draw);
        auto x = torch::randn({4, D}).requires_grad_(true);
        auto out = m->flat_logits(x);  // [B, D, K']
        int64_t violations = 0, missing = 0;
        for (int64_t d = 0; d < D; ++d) {
          auto g = torch::autograd::grad({out.select(1, d).sum()}, {x}, {}, true)[0].abs().sum(0);
          for (int64_t j = 0; j < D; ++j) {
            const double v = g[j].item<double>();
            violations += j >= d && v != 0.0;
            missing += j < d && v == 0.0;
          }
        }
        EXPECT_EQ(violations, 0) << label(c) << " C=" << C << " draw " << draw;
        // MADE's direct connections read every earlier sub-pixel; its hidden
        // units alone may leave some out.
        if (c.name != "made" || c.hp.value("direct", true)) {
          EXPECT_EQ(missing, 0) << label(c) << " C=" << C;
        }
      }
    }
}

// The transformer reads tokens, which have no gradient: changing sub-pixel j
// changes no output d <= j and (for this far-from-uniform model) every later
// one.
TEST(DenseAutoregressive, TransformerIsCausalByPerturbation) {
  for (const auto& c : cases()) {
    if (c.name != "transformer") continue;
    for (int64_t C : {1, 3}) {
      ImageShape s{C, 3, 2};
      auto m = make(c, s);
      const int64_t D = s.dims(), K = c.levels;
      torch::NoGradGuard g;
      auto x = images(1, s, K, 4);
      auto base = m->logits(x);  // [1, K, C, H, W]
      int64_t violations = 0, missing = 0;
      for (int64_t j = 0; j < D; ++j) {
        auto y = x.clone();
        auto flat = y.permute({0, 2, 3, 1}).reshape({-1});  // a copy in sub-pixel order
        flat[j] = (flat[j].item<int64_t>() + 1) % K;
        y = flat.view({1, s.height, s.width, C}).permute({0, 3, 1, 2}).contiguous();
        auto diff = to_subpixels((m->logits(y) - base).abs().sum(1));  // [1, D]
        for (int64_t d = 0; d < D; ++d) {
          const double v = diff[0][d].item<double>();
          violations += d <= j && v != 0.0;
          missing += d > j && v == 0.0;
        }
      }
      EXPECT_EQ(violations, 0) << label(c) << " C=" << C;
      EXPECT_EQ(missing, 0) << label(c) << " C=" << C;
    }
  }
}

// NADE's cumulative sum is the direct h_d = sigmoid(c + W[:, <d] x_<d).
TEST(DenseAutoregressive, NadeRecursionEqualsTheDirectConditionals) {
  for (int64_t K : {2, 9}) {
    ImageShape s{1, 4, 5};
    auto m = std::dynamic_pointer_cast<Nade>(make({"nade", {{"hidden", 6}}, K}, s));
    auto p = m->named_parameters();
    auto W = p["W"], c = p["c"], V = p["V"], b = p["b"];
    torch::NoGradGuard g;
    auto x = torch::rand({3, s.dims()}) * 2 - 1;
    auto fast = m->flat_logits(x);
    for (int64_t d = 0; d < s.dims(); ++d) {
      auto a = c + torch::matmul(x.slice(1, 0, d), W.slice(1, 0, d).t());  // [B, H]
      auto direct = torch::matmul(torch::sigmoid(a), V[d].t()) + b[d];     // [B, K']
      EXPECT_LT((fast.select(1, d) - direct).abs().max().item<double>(), 1e-5) << d;
    }
    EXPECT_GT(fast.std().item<double>(), 0.1);
  }
}

// Binary NADE's fused CPU kernel gives the cumulative-sum form's logits and
// gradients (for the input and every parameter).
TEST(DenseAutoregressive, NadeFusedKernelMatchesTheTorchForm) {
  ImageShape s{1, 5, 6};
  auto m = std::dynamic_pointer_cast<Nade>(make({"nade", {{"hidden", 19}}, 2}, s));
  auto x = (torch::rand({21, s.dims()}) * 2 - 1).round().requires_grad_(true);
  auto g = torch::randn({21, s.dims(), 1});
  auto grads = [&](bool fused) {
    m->zero_grad();
    x.mutable_grad() = torch::Tensor();
    auto out = fused ? m->flat_logits(x) : m->flat_logits_reference(x);
    (out * g).sum().backward();
    std::vector<torch::Tensor> all = {out.detach(), x.grad().clone()};
    for (auto& p : m->parameters()) all.push_back(p.grad().clone());
    return all;
  };
  auto fused = grads(true), reference = grads(false);
  ASSERT_EQ(fused.size(), 6u);
  for (size_t k = 0; k < fused.size(); ++k) {
    EXPECT_GT(reference[k].abs().max().item<double>(), 1e-3) << k;
    EXPECT_LT((fused[k] - reference[k]).abs().max().item<double>(),
              1e-4 * (1 + reference[k].abs().max().item<double>()))
        << k;
  }
}

// The product of each draw's masks (output <- hidden <- ... <- input) is
// strictly lower triangular: output d is connected to inputs j < d only.
TEST(DenseAutoregressive, MadeMaskProductsAreStrictlyLowerTriangular) {
  for (int64_t layers : {1, 2}) {
    ImageShape s{1, 4, 4};
    auto m = std::dynamic_pointer_cast<Made>(
        make({"made", {{"hidden", 30}, {"layers", layers}, {"masks", 4}}, 2}, s));
    for (int64_t draw = 0; draw < 4; ++draw) {
      auto path = m->weight_mask(draw, 0);  // [H, D]
      for (int64_t l = 1; l <= layers; ++l) path = torch::matmul(m->weight_mask(draw, l), path);
      ASSERT_EQ(path.sizes(), (std::vector<int64_t>{16, 16}));
      EXPECT_EQ(torch::triu(path).abs().sum().item<double>(), 0.0) << "draw " << draw;
      EXPECT_GT(torch::tril(path, -1).gt(0).sum().item<int64_t>(), 30) << "draw " << draw;
    }
    // Draws differ, and the seed decides them.
    EXPECT_NE(m->connectivity(0, 0), m->connectivity(1, 0));
    auto again = std::dynamic_pointer_cast<Made>(
        make({"made", {{"hidden", 30}, {"layers", layers}, {"masks", 4}}, 2}, s));
    EXPECT_EQ(m->connectivity(3, layers - 1), again->connectivity(3, layers - 1));
  }
}

// The ensemble's NLL is -log((1/M) sum_m p_m(x)), computed here from each
// draw's own NLL; its conditionals are causal (changing later sub-pixels
// leaves them as they were).
TEST(DenseAutoregressive, MadeEnsembleIsTheMixtureOfItsDraws) {
  ImageShape s{1, 3, 3};
  const int64_t M = 3;
  auto m = std::dynamic_pointer_cast<Made>(
      make({"made", {{"hidden", 12}, {"layers", 2}, {"masks", M}}, 2}, s));
  auto x = images(5, s, 2, 3);
  torch::NoGradGuard g;
  std::vector<torch::Tensor> each;
  for (int64_t d = 0; d < M; ++d) {
    m->set_draw(d);
    each.push_back(categorical_nll(m->forward_unit(scale_to_unit(x, 2)), x));
  }
  m->set_draw(0);
  auto by_hand = -(torch::logsumexp(-torch::stack(each), 0) - std::log(static_cast<double>(M)));
  auto nll = m->nll(x);
  EXPECT_LT((nll - by_hand).abs().max().item<double>(), 1e-4);
  EXPECT_GT((each[0] - each[1]).abs().max().item<double>(), 0.05);  // the draws differ
  EXPECT_EQ(m->bound(), Bound::kExact);
  // Causality of the mixture: sub-pixels from d on changed, the logits before d stay.
  auto lx = m->logits(x);
  auto y = x.clone();
  y.view({5, -1}).slice(1, 4).fill_(1);
  auto ly = m->logits(y);
  auto a = to_subpixels(lx.select(1, 1)), b2 = to_subpixels(ly.select(1, 1));
  EXPECT_LT((a.slice(1, 0, 5) - b2.slice(1, 0, 5)).abs().max().item<double>(), 1e-6);
}

// With every weight and bias zero, each conditional is uniform: exactly 1 and
// 8 bits per dimension, in the model and through the engine.
TEST(DenseAutoregressive, UniformOutputsGiveOneAndEightBitsPerDim) {
  for (const auto& c : cases())
    for (int64_t K : {2, 256}) {
      ImageShape s{1, 3, 4};
      auto m = make({c.name, c.hp, K}, s, 0.0);
      {
        torch::NoGradGuard g;
        for (auto& p : m->parameters()) p.zero_();
      }
      auto x = images(3, s, K, 5);
      const double bpd = bits_per_dim(m->nll(x).mean().item<double>(), s.dims());
      EXPECT_NEAR(bpd, K == 2 ? 1.0 : 8.0, 1e-6) << label(c);
      auto e = m->step_engine();
      double total = 0;
      for (double b : engine_bits(*e, x)) total += b;
      EXPECT_NEAR(total / (3.0 * s.dims()), K == 2 ? 1.0 : 8.0, 1e-6) << label(c);
    }
}

// The step engine's conditionals are the full model's, sub-pixel by
// sub-pixel, for C = 1 and C = 3; an image alone or in a batch gets the same
// CDF tables bit for bit; other image sizes are refused.
TEST(DenseAutoregressive, CachedStepsEqualTheFullModel) {
  for (const auto& c : cases())
    for (int64_t C : {1, 3}) {
      ImageShape s{C, 3, 4};
      auto m = make(c, s);
      auto x = images(4, s, c.levels, 8);
      auto e = m->step_engine();
      auto cached = engine_bits(*e, x);
      auto full = full_bits(*m, x);
      ASSERT_EQ(cached.size(), full.size());
      double worst = 0, total = 0;
      for (size_t d = 0; d < full.size(); ++d) {
        worst = std::max(worst, std::abs(cached[d] - full[d]));
        total += full[d];
      }
      EXPECT_LT(worst, 2e-3) << label(c) << " C=" << C;
      EXPECT_GT(total, 4 * s.dims() * 0.05);  // not a degenerate model
      // Batch independence: image 2 alone.
      const int64_t K = c.levels;
      auto tables = [&](StepEngine& en, const torch::Tensor& imgs) {
        std::vector<uint32_t> all, cdf(imgs.size(0) * (K + 1));
        std::vector<uint16_t> v(imgs.size(0));
        auto xa = imgs.accessor<uint8_t, 4>();
        en.begin(imgs.size(0), s.height, s.width);
        while (!en.done()) {
          const SubPixel p = en.next();
          en.cdfs(16, cdf.data());
          all.insert(all.end(), cdf.end() - (K + 1), cdf.end());
          for (int64_t b = 0; b < imgs.size(0); ++b) v[b] = xa[b][p.c][p.i][p.j];
          en.observe(v.data());
        }
        return all;
      };
      auto clone = e->clone();
      EXPECT_EQ(tables(*e, x.slice(0, 0, 3)), tables(*clone, x.slice(0, 2, 3))) << label(c);
      EXPECT_EQ(e->fingerprint(), clone->fingerprint());
      EXPECT_THROW(e->begin(1, 4, 3), std::invalid_argument);
    }
}

// Compress and decompress through each dense model: identical files at any
// thread count, the images back exactly, the file near the model's cost, and
// a file refused by the same model with other weights.
TEST(DenseAutoregressive, CodecRoundTripsAtAnyThreadCount) {
  for (const auto& c : cases()) {
    ImageShape s{1, 4, 4};
    auto m = make(c, s);
    auto e = m->step_engine();
    ImageList list;
    const int64_t n = 9;
    list.sizes.assign(n, ImageSize{1, 4, 4});
    list.values = draw_images(*e, n, 4, 4, 1.0, 3, 1);
    EncodeStats stats;
    const std::string file = encode_images(*e, c.name, list, 4, 1, &stats);
    EXPECT_EQ(encode_images(*e, c.name, list, 4, 3), file) << label(c);
    EXPECT_EQ(decode_images(*e, file, 1).images.values, list.values) << label(c);
    EXPECT_EQ(decode_images(*e, file, 3).images.values, list.values) << label(c);
    EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * stats.model_bits + 0.05) << label(c);
    auto other = make(c, s, 2.5)->step_engine();
    EXPECT_NE(other->fingerprint(), e->fingerprint());
    EXPECT_THROW(decode_images(*other, file, 1), Error) << label(c);
  }
}
