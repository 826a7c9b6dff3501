// Every flow transform: inverse(forward(x)) returns x, and the log-determinant
// it reports equals log|det J| of the Jacobian computed by autograd.
#include <gtest/gtest.h>

#include "tame/models/flows/dequantization.h"
#include "tame/models/flows/flow_model.h"
#include "tame/models/flows/transforms.h"
#include "tame/registry.h"

using namespace tame::flows;

namespace {

// log|det dy/dx| of f on one example x [1, C, H, W], by autograd, one output
// at a time.
double autograd_logdet(const std::function<torch::Tensor(const torch::Tensor&)>& f,
                       const torch::Tensor& x) {
  auto xi = x.detach().clone().to(torch::kDouble).requires_grad_(true);
  auto y = f(xi).flatten();
  const int64_t D = y.numel();
  auto J = torch::zeros({D, D}, torch::kDouble);
  for (int64_t i = 0; i < D; ++i)
    J[i] = torch::autograd::grad({y[i]}, {xi}, {}, /*retain_graph=*/true)[0].flatten();
  return std::get<1>(torch::linalg_slogdet(J)).item<double>();
}
double autograd_logdet(Transform& t, const torch::Tensor& x) {
  return autograd_logdet([&](const torch::Tensor& v) { return t.forward(v).first; }, x);
}

// Perturbs every parameter so that no transform is the identity it starts as.
void randomize(torch::nn::Module& t, double scale = 0.3) {
  torch::NoGradGuard g;
  for (auto& p : t.parameters()) p.add_(scale * torch::randn_like(p));
}

struct Case {
  const char* name;
  std::function<TransformPtr()> make;
  std::vector<int64_t> shape;  // one example, [C, H, W]
  bool unit_interval = false;  // inputs in (0, 1) (for Logit)
};

std::vector<Case> cases() {
  return {
      {"additive-checkerboard",
       [] {
         return std::make_shared<AdditiveCoupling>(2, 4, 4, MaskKind::kCheckerboard, false, 8);
       },
       {2, 4, 4}},
      {"additive-channel",
       [] { return std::make_shared<AdditiveCoupling>(2, 4, 4, MaskKind::kChannel, true, 8); },
       {2, 4, 4}},
      {"diagonal-scale", [] { return std::make_shared<DiagonalScale>(2, 3, 3); }, {2, 3, 3}},
      {"affine-checkerboard",
       [] {
         return std::make_shared<AffineCoupling>(2, 4, 4, MaskKind::kCheckerboard, true, 8, 2.0);
       },
       {2, 4, 4}},
      {"affine-channel-unbounded",
       [] { return std::make_shared<AffineCoupling>(4, 2, 2, MaskKind::kChannel, false, 8, 0.0); },
       {4, 2, 2}},
      {"squeeze", [] { return std::make_shared<Squeeze>(); }, {2, 4, 4}},
      {"actnorm", [] { return std::make_shared<ActNorm>(3); }, {3, 3, 3}},
      {"invconv1x1", [] { return std::make_shared<InvConv1x1>(4); }, {4, 2, 3}},
      {"logit", [] { return std::make_shared<Logit>(0.05); }, {1, 3, 3}, true},
      {"split-learned-prior",
       [] {
         return std::make_shared<Split>(
             4, std::make_shared<AffineCoupling>(2, 2, 2, MaskKind::kChannel, false, 8, 2.0),
             /*learned_prior=*/true, 8, 2.0);
       },
       {4, 2, 2}},
      {"split-standard-prior",
       [] {
         return std::make_shared<Split>(3, std::make_shared<DiagonalScale>(1, 3, 2),
                                        /*learned_prior=*/false, 0, 0.0);
       },
       {3, 3, 2}},
      {"composite-with-inverse",
       [] {
         std::vector<TransformPtr> parts = {
             std::make_shared<ActNorm>(2), std::make_shared<Squeeze>(),
             std::make_shared<InvConv1x1>(8),
             std::make_shared<AffineCoupling>(8, 2, 2, MaskKind::kChannel, false, 8, 2.0),
             std::make_shared<Inverse>(std::make_shared<Squeeze>())};
         return std::make_shared<Composite>(parts);
       },
       {2, 4, 4}},
  };
}

}  // namespace

TEST(FlowTransforms, InverseAndLogDeterminant) {
  for (const auto& c : cases()) {
    torch::manual_seed(1);
    auto t = c.make();
    std::vector<int64_t> batch_shape = {3};
    batch_shape.insert(batch_shape.end(), c.shape.begin(), c.shape.end());
    auto x = c.unit_interval ? torch::rand(batch_shape) * 0.98 + 0.01 : torch::randn(batch_shape);
    t->forward(x);  // ActNorm initializes on this first batch
    randomize(*t);
    t->to(torch::kDouble);
    auto xd = x.to(torch::kDouble);
    auto [y, ld] = t->forward(xd);
    auto [back, ld_inv] = t->inverse(y);
    EXPECT_LT((back - xd).abs().max().item<double>(), 1e-9) << c.name;
    EXPECT_LT((ld + ld_inv).abs().max().item<double>(), 1e-9) << c.name;
    EXPECT_EQ(ld.sizes(), torch::IntArrayRef({3})) << c.name;
    for (int64_t b = 0; b < 2; ++b)
      EXPECT_NEAR(ld[b].item<double>(), autograd_logdet(*t, xd.slice(0, b, b + 1)), 1e-8) << c.name;
  }
}

TEST(FlowTransforms, InvConvLogDetIsSlogdetOfItsWeight) {
  torch::manual_seed(2);
  InvConv1x1 t(5);
  randomize(t);
  auto x = torch::randn({1, 5, 3, 2});
  auto ld = t.forward(x).second[0].item<double>();
  EXPECT_NEAR(ld, 6 * std::get<1>(torch::linalg_slogdet(t.weight())).item<double>(), 1e-4);
}

TEST(FlowTransforms, ActNormInitializesToZeroMeanUnitVariance) {
  torch::manual_seed(3);
  ActNorm t(3);
  auto x = 5.0 + 3.0 * torch::randn({16, 3, 4, 4});
  auto y = t.forward(x).first;
  EXPECT_LT(y.mean({0, 2, 3}).abs().max().item<double>(), 1e-5);
  EXPECT_LT((y.std({0, 2, 3}, false) - 1.0).abs().max().item<double>(), 1e-4);
  // The second batch uses the initialized parameters, not its own statistics.
  auto y2 = t.forward(x + 1.0).first;
  EXPECT_GT(y2.mean().item<double>(), 0.2);
}

TEST(FlowTransforms, BoundedScaleStaysInsideItsBound) {
  torch::manual_seed(4);
  AffineCoupling t(2, 4, 4, MaskKind::kCheckerboard, false, 8, 1.5);
  {
    torch::NoGradGuard g;
    for (auto& p : t.parameters()) p.add_(5.0 * torch::randn_like(p));  // huge raw scales
  }
  auto ld = t.forward(torch::randn({4, 2, 4, 4})).second;
  EXPECT_LE(ld.abs().max().item<double>(),
            1.5 * 16 + 1e-4);  // 16 transformed dims, |s| <= 1.5 each
}

// The whole flow of each model, multi-scale splits and learned priors included:
// inverse(forward(y)) returns y, and the reported log-det is the autograd one.
TEST(FlowModels, WholeTransformInvertsAndLogDetMatchesAutograd) {
  const std::vector<std::pair<std::string, nlohmann::json>> models = {
      {"nice", {{"couplings", 3}, {"hidden", 8}}},
      {"realnvp", {{"scales", 2}, {"hidden", 8}}},
      {"realnvp", {{"scales", 3}, {"hidden", 8}, {"scale_bound", 0.0}}},
      {"glow", {{"levels", 2}, {"steps", 2}, {"hidden", 8}}},
  };
  for (const auto& [name, hp] : models) {
    for (int64_t channels : {1, 3}) {
      torch::manual_seed(5);
      auto model = tame::make_model(name, hp, {channels, 8, 8}, 256);
      auto& flow = dynamic_cast<tame::FlowModel&>(*model);
      auto y = torch::rand({3, channels, 8, 8}) * 0.98 + 0.01;
      flow.transform().forward(y);        // ActNorm initializes on this first batch
      randomize(flow.transform(), 0.05);  // small: a deep stack of random scales overflows
      flow.to(torch::kDouble);
      auto yd = y.to(torch::kDouble);
      auto [z, ld] = flow.transform().forward(yd);
      auto [back, ld_inv] = flow.transform().inverse(z);
      const std::string what = name + " " + hp.dump() + " C=" + std::to_string(channels);
      EXPECT_EQ(z.sizes(), yd.sizes()) << what;
      EXPECT_LT((back - yd).abs().max().item<double>(), 1e-9) << what;
      EXPECT_LT((ld + ld_inv).abs().max().item<double>(), 1e-9 * ld.abs().max().item<double>())
          << what;
      if (channels == 1) {  // a 64x64 Jacobian; the 3-channel one is the same code
        EXPECT_NEAR(ld[0].item<double>(), autograd_logdet(flow.transform(), yd.slice(0, 0, 1)),
                    1e-7)
            << what;
      }
    }
  }
}

// Variational dequantization: u lies in (0, 1), and log q(u|x) = log N(eps) -
// log|det du/deps| with the log-det the autograd Jacobian's.
TEST(VariationalDequantizer, LogDensityMatchesAutogradJacobian) {
  torch::manual_seed(6);
  VariationalDequantizer q({2, 4, 4}, 256, 2, 8, 2.0);
  randomize(q, 0.05);
  q.to(torch::kDouble);
  auto x = torch::randint(0, 256, {2, 2, 4, 4}).to(torch::kUInt8);
  auto eps = torch::randn({2, 2, 4, 4}, torch::kDouble);
  auto [u, ld] = q.transform(eps, x);
  EXPECT_GT(u.min().item<double>(), 0.0);
  EXPECT_LT(u.max().item<double>(), 1.0);
  for (int64_t b = 0; b < 2; ++b) {
    auto xb = x.slice(0, b, b + 1);
    double want = autograd_logdet([&](const torch::Tensor& e) { return q.transform(e, xb).first; },
                                  eps.slice(0, b, b + 1));
    EXPECT_NEAR(ld[b].item<double>(), want, 1e-8);
  }
  // The conditioning matters: another x moves u for the same eps.
  auto other = q.transform(eps, (x.to(torch::kInt) + 7).remainder(256).to(torch::kUInt8)).first;
  EXPECT_GT((other - u).abs().max().item<double>(), 1e-3);
  // sample(): log q is log N(eps) minus that log-det, finite everywhere.
  q.to(torch::kFloat);
  auto [us, log_q] = q.sample(x);
  EXPECT_TRUE(torch::isfinite(log_q).all().item<bool>());
  EXPECT_EQ(log_q.sizes(), torch::IntArrayRef({2}));
}

TEST(FlowModels, BadGeometryIsOneClearError) {
  try {
    tame::make_model("glow", {{"levels", 3}}, {1, 28, 28}, 256);
    FAIL() << "glow levels=3 accepted a 28x28 image";
  } catch (const tame::Error& e) {
    EXPECT_NE(std::string(e.what()).find("divisible by 8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tame::make_model("realnvp", {{"dequantization", "fancy"}}, {1, 28, 28}, 256),
               tame::Error);
}
