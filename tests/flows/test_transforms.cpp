// Every flow transform: inverse(forward(x)) returns x, and the log-determinant
// it reports equals log|det J| of the Jacobian computed by autograd.
#include <gtest/gtest.h>

#include "tame/models/flows/transforms.h"

using namespace tame::flows;

namespace {

// log|det dy/dx| of t.forward on one example x [1, C, H, W], by autograd, one
// output at a time.
double autograd_logdet(Transform& t, const torch::Tensor& x) {
  auto xi = x.detach().clone().to(torch::kDouble).requires_grad_(true);
  auto y = t.forward(xi).first.flatten();
  const int64_t D = y.numel();
  auto J = torch::zeros({D, D}, torch::kDouble);
  for (int64_t i = 0; i < D; ++i)
    J[i] = torch::autograd::grad({y[i]}, {xi}, {}, /*retain_graph=*/true)[0].flatten();
  return std::get<1>(torch::linalg_slogdet(J)).item<double>();
}

// Perturbs every parameter so that no transform is the identity it starts as.
void randomize(Transform& t) {
  torch::NoGradGuard g;
  for (auto& p : t.parameters()) p.add_(0.3 * torch::randn_like(p));
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
