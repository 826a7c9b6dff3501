// The latent-variable family: the Gaussian KL, the estimators, the
// Gumbel-softmax, the pixel likelihoods, the ordering of the bounds on a
// small trained model, and the two-layer VAE against quadrature.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "tame/dist/likelihood.h"
#include "tame/dist/pixel_likelihood.h"
#include "tame/models/latent/estimators.h"
#include "tame/models/latent/gumbel_vae.h"
#include "tame/models/latent/vae.h"
#include "tame/models/latent/vae2.h"
#include "tame/models/latent/vlae.h"
#include "tame/registry.h"

using namespace tame;

TEST(Latent, AnalyticGaussianKlMatchesMonteCarlo) {
  torch::manual_seed(0);
  auto mu = torch::randn({3, 4}, torch::kDouble),
       logvar = 0.5 * torch::randn({3, 4}, torch::kDouble);
  const int64_t n = 200000;
  auto z = mu + torch::exp(0.5 * logvar) * torch::randn({n, 3, 4}, torch::kDouble);
  auto mc = (latent::gaussian_log_prob(z, mu, logvar) - standard_normal_log_prob(z)).mean(0);
  auto exact = latent::gaussian_kl(mu, logvar);
  for (int64_t i = 0; i < 3; ++i)
    EXPECT_NEAR(mc[i].item<double>(), exact[i].item<double>(),
                0.02 + 0.01 * exact[i].item<double>());
  EXPECT_NEAR(latent::gaussian_kl(torch::zeros({5}), torch::zeros({5})).item<double>(), 0.0, 1e-12);
}

// d/dmu and d/dlogsigma of E_{z ~ N(mu, sigma^2)} (z - 3)^2 = (mu - 3)^2 + sigma^2
// are 2 (mu - 3) and 2 sigma^2. Both estimators find them on average; the
// score-function one (with a baseline) has the larger per-sample variance.
TEST(Latent, PathwiseAndScoreFunctionGradientsAgreeInExpectation) {
  torch::manual_seed(1);
  const int64_t n = 200000;
  const double mu0 = 1.0, logsigma0 = std::log(0.5), sigma0 = 0.5;
  auto per_sample = [&](bool score) {
    // One copy of the parameters per sample, so that one backward gives every
    // sample's own gradient.
    auto mu = torch::full({n}, mu0, torch::kDouble).requires_grad_(true);
    auto logsigma = torch::full({n}, logsigma0, torch::kDouble).requires_grad_(true);
    auto eps = torch::randn({n}, torch::kDouble);
    auto z = mu + torch::exp(logsigma) * eps;
    torch::Tensor objective;
    if (score) {
      auto zd = z.detach();
      auto f = (zd - 3.0).pow(2);
      auto log_q = latent::gaussian_log_prob(zd.unsqueeze(-1), mu.unsqueeze(-1),
                                             (2.0 * logsigma).unsqueeze(-1));
      objective = latent::score_function_surrogate(f, log_q, f.mean());
    } else {
      objective = (z - 3.0).pow(2);
    }
    objective.sum().backward();
    return std::make_pair(mu.grad(), logsigma.grad());
  };
  auto [pm, ps] = per_sample(false);
  auto [sm, ss] = per_sample(true);
  const double want_mu = 2 * (mu0 - 3.0), want_s = 2 * sigma0 * sigma0;
  EXPECT_NEAR(pm.mean().item<double>(), want_mu, 0.01);
  EXPECT_NEAR(ps.mean().item<double>(), want_s, 0.01);
  EXPECT_NEAR(sm.mean().item<double>(), want_mu, 0.05);
  EXPECT_NEAR(ss.mean().item<double>(), want_s, 0.05);
  EXPECT_GT(sm.var().item<double>(), 2.0 * pm.var().item<double>());
  EXPECT_GT(ss.var().item<double>(), 2.0 * ps.var().item<double>());
}

TEST(Latent, GumbelSoftmaxApproachesOneHotAndMatchesTheCategorical) {
  torch::manual_seed(2);
  auto logits = torch::log(torch::tensor({0.1, 0.2, 0.3, 0.4}, torch::kDouble));
  const int64_t n = 100000;
  auto many = logits.expand({n, 4});
  double last_gap = 1.0;
  for (double tau : {2.0, 0.5, 0.1, 0.01}) {
    auto s = latent::gumbel_softmax(many, tau, false);
    EXPECT_LT((s.sum(-1) - 1).abs().max().item<double>(), 1e-9);
    const double gap = 1.0 - s.amax(-1).mean().item<double>();  // 0 when one-hot
    EXPECT_LT(gap, last_gap) << tau;
    last_gap = gap;
    // argmax frequencies are the categorical probabilities at any temperature
    auto freq = torch::bincount(s.argmax(-1), {}, 4).to(torch::kDouble) / n;
    EXPECT_LT((freq - torch::exp(logits)).abs().max().item<double>(), 0.01) << tau;
  }
  EXPECT_LT(last_gap, 0.01);
  // Straight-through: exactly one-hot values, the soft sample's gradient.
  auto l = logits.clone().requires_grad_(true);
  auto hard = latent::gumbel_softmax(l.expand({8, 4}), 0.5, true);
  EXPECT_TRUE(((hard == 0) | (hard == 1)).all().item<bool>());
  EXPECT_TRUE((hard.sum(-1) == 1).all().item<bool>());
  (hard * torch::arange(4, torch::kDouble)).sum().backward();
  EXPECT_GT(l.grad().abs().sum().item<double>(), 0.0);
}

TEST(Latent, DiscretizedLogisticSumsToOneOverTheLevels) {
  for (int64_t K : {2, 16, 256}) {
    auto x = torch::arange(K).view({K, 1, 1, 1});
    for (double m : {-0.9, 0.0, 0.37}) {
      for (double ls : {-6.0, -2.0, 0.5}) {
        auto mean = torch::full({K, 1, 1, 1}, m, torch::kDouble);
        auto log_scale = torch::full({K, 1, 1, 1}, ls, torch::kDouble);
        auto p = torch::exp(DiscretizedLogistic(mean, log_scale, K).log_prob(x));
        EXPECT_NEAR(p.sum().item<double>(), 1.0, 1e-6) << K << " " << m << " " << ls << " " << p;
      }
    }
  }
}

namespace {
// A small VAE trained briefly on 8x8 binarized images, with either network.
std::shared_ptr<Vae> trained_vae(const std::string& arch) {
  torch::manual_seed(3);
  VaeOptions o{.latent = 4, .hidden = 8};
  o.arch = arch;
  if (arch == "mlp") o.hidden = 32;
  auto m = std::make_shared<Vae>(o, ImageShape{1, 8, 8}, 2);
  auto data = (tame::testing::synthetic_images(256, 8, 8, 5) > 127).to(torch::kUInt8);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  for (int64_t step = 0; step < 300; ++step) {
    auto batch = data.index_select(0, torch::randint(0, 256, {64}));
    opt.zero_grad();
    m->loss(batch).backward();
    opt.step();
  }
  return m;
}
}  // namespace

// ELBO >= IWAE(k) bound >= IWAE(k') bound (as NLLs: nll >= nll_iw(k) >= nll_iw(k'))
// for k < k', on average over a batch; IWAE(1) is the ELBO estimator. Both
// network architectures.
TEST(Latent, BoundsTightenFromElboThroughIwae) {
  for (std::string arch : {"conv", "mlp"}) {
    SCOPED_TRACE(arch);
    auto m = trained_vae(arch);
    m->eval();
    torch::NoGradGuard g;
    auto x = (tame::testing::synthetic_images(128, 8, 8, 6) > 127).to(torch::kUInt8);
    auto average = [&](const std::function<torch::Tensor()>& f, int64_t repeats) {
      double s = 0;
      for (int64_t r = 0; r < repeats; ++r) s += f().mean().item<double>();
      return s / repeats;
    };
    const double elbo = average([&] { return m->nll(x); }, 200);
    const double k1 = average([&] { return m->nll_iw(x, 1); }, 200);
    const double k10 = average([&] { return m->nll_iw(x, 10); }, 20);
    const double k1000 = average([&] { return m->nll_iw(x, 1000); }, 1);  // two chunks of 512 draws
    std::printf("%s nats/image: ELBO %.3f, IWAE k=1 %.3f, k=10 %.3f, k=1000 %.3f\n", arch.c_str(),
                elbo, k1, k10, k1000);
    EXPECT_NEAR(k1, elbo, 0.02 * elbo);
    EXPECT_LT(k10, elbo);
    EXPECT_LT(k1000, k10);
    // The chunked k = 1000 bound is one estimate: repeat runs agree to a fraction of a nat.
    EXPECT_NEAR(m->nll_iw(x, 1000).mean().item<double>(), k1000, 0.3);
  }
}

// arch = mlp: the fully connected pair, a decoder output of the image's shape,
// and an unknown arch named in the error.
TEST(Latent, MlpNetworksKeepTheInterface) {
  auto m =
      make_model("gumbel-vae", {{"arch", "mlp"}, {"hidden", 16}, {"groups", 2}, {"classes", 3}},
                 {3, 5, 6}, 256);
  auto x = torch::randint(0, 256, {4, 3, 5, 6}).to(torch::kUInt8);
  EXPECT_EQ(m->nll(x).sizes(), torch::IntArrayRef({4}));
  EXPECT_EQ(m->sample(2).sizes(), torch::IntArrayRef({2, 3, 5, 6}));  // 5x6: no divisibility by 4
  std::string what;
  try {
    make_model("vae", {{"arch", "resnet"}}, {1, 8, 8}, 2);
  } catch (const Error& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("arch must be conv or mlp"), std::string::npos) << what;
}

TEST(Latent, GumbelVaeTrainsItsScheduleAndBoundsAreDiscrete) {
  torch::manual_seed(4);
  GumbelVaeOptions o;
  o.groups = 3;
  o.classes = 4;
  o.hidden = 8;
  o.anneal = 0.01;
  GumbelVae m(o, {1, 8, 8}, 2);
  auto x = (tame::testing::synthetic_images(16, 8, 8, 7) > 127).to(torch::kUInt8);
  const double tau0 = m.temperature();
  for (int i = 0; i < 100; ++i) m.loss(x);
  EXPECT_NEAR(tau0, 1.0, 1e-12);
  EXPECT_NEAR(m.temperature(), std::max(0.5, std::exp(-1.0)), 1e-9);
  m.eval();
  torch::NoGradGuard g;
  auto q = m.encode(x);
  auto z = m.draw(q, 5, false);
  EXPECT_TRUE((z.sum(-1) == 1).all().item<bool>());  // exact one-hot draws for the bounds
  // KL(q || uniform) is E_q[log q - log p], estimated from those draws.
  auto many = m.draw(q, 4000, false);
  auto mc = (m.log_q(q, many) - m.log_prior(many)).mean(0);
  EXPECT_LT((mc - m.kl(q, many)).abs().max().item<double>(), 0.1);
}

TEST(Latent, ScoreFunctionVaeTrainsAndItsLossIsTheBound) {
  torch::manual_seed(5);
  auto m = make_model("vae", {{"latent", 4}, {"hidden", 8}, {"estimator", "score"}}, {1, 8, 8}, 2);
  auto x = (tame::testing::synthetic_images(64, 8, 8, 8) > 127).to(torch::kUInt8);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  double first = 0, last = 0;
  for (int step = 0; step < 150; ++step) {
    opt.zero_grad();
    auto loss = m->loss(x);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  EXPECT_LT(last, first - 5.0);
  EXPECT_THROW(make_model("vae", {{"estimator", "score"}, {"k", 5}}, {1, 8, 8}, 2), Error);
}

// The VLAE's decoder is autoregressive: the pixel parameters at a position
// depend on z and on earlier pixels only. Changing pixel p leaves every
// position up to p as it was and changes some position after it.
namespace {
struct OpenVlae : Vlae {
  using Vlae::Vlae;
  torch::Tensor params(const torch::Tensor& z, const torch::Tensor& x) {
    return pixel_params(decoder_context(z), x);
  }
};
}  // namespace

TEST(Latent, VlaeDecoderIsCausal) {
  torch::manual_seed(9);
  auto o = nlohmann::json{
      {"latent", 3},
      {"hidden", 4},
      {"pixel_hidden", 4},
      {"input_kernel", 5},
      {"pixel_layers",
       3}}.get<VlaeOptions>();
  OpenVlae m(o, {1, 8, 8}, 4);
  {
    torch::NoGradGuard g;
    for (auto& p : m.parameters()) p.add_(0.3 * torch::randn_like(p));
  }
  torch::NoGradGuard g;
  auto z = torch::randn({1, 3});
  auto x = torch::randint(0, 4, {1, 1, 8, 8}).to(torch::kUInt8);
  for (int64_t p : {0, 27, 62}) {
    auto changed = x.clone();
    changed.view({-1})[p] = (changed.view({-1})[p].item<int>() + 1) % 4;
    auto diff = (m.params(z, x) - m.params(z, changed)).abs().amax(1).view({-1});  // per position
    EXPECT_EQ(diff.slice(0, 0, p + 1).max().item<float>(), 0.0f) << p;
    EXPECT_GT(diff.slice(0, p + 1).max().item<float>(), 0.0f) << p;
  }
  // z reaches every position.
  auto dz = (m.params(z, x) - m.params(z + 1.0, x)).abs().amax(1).view({-1});
  EXPECT_GT(dz.min().item<float>(), 0.0f);
}

// The two-layer VAE with one unit per stochastic layer on 1x1x3 binary images,
// against quadrature on a grid over (z1, z2): its prior and posterior are
// normalized densities, p(x) sums to 1 over the 8 images, the prior's draws
// have the grid's moments, the importance weights p(x, z) / q(z|x) of q's own
// draws average to p(x) (so log q is the density that draw() samples and
// log p(x, z) the model's), and the bounds are ordered: ELBO >= the k-sample
// bound, which is -log p(x) within its spread.
TEST(Latent, TwoLayerVaeMatchesQuadrature) {
  torch::manual_seed(7);
  Vae2Options o;
  o.latent1 = o.latent2 = 1;
  o.hidden1 = o.hidden2 = 4;
  Vae2 m(o, {1, 1, 3}, 2);
  m.eval();
  torch::NoGradGuard g;
  for (auto& p : m.parameters()) p.mul_(2.0);  // sharper, more non-linear conditionals
  const int64_t n = 801;
  const double lo = -10, step = 20.0 / (n - 1), log_area = 2 * std::log(step);
  auto axis = torch::linspace(lo, -lo, n, torch::kDouble).to(torch::kFloat);
  auto grid =
      torch::stack(torch::meshgrid({axis, axis}, "ij"), -1).reshape({n * n, 2});  // [z1, z2]
  auto log_prior = m.log_prior(grid);                                             // [n n]
  EXPECT_NEAR(torch::logsumexp(log_prior, 0).item<double>() + log_area, 0.0, 1e-3);
  auto prior = torch::exp(log_prior + log_area);
  const double mean_z1 = (prior * grid.select(1, 0)).sum().item<double>();
  EXPECT_NEAR(m.prior_draw(200000).select(1, 0).mean().item<double>(), mean_z1, 0.02);

  auto x = torch::zeros({8, 1, 1, 3}, torch::kUInt8);
  for (int64_t v = 0; v < 8; ++v)
    for (int64_t d = 0; d < 3; ++d) x[v][0][0][d] = (v >> d) & 1;
  auto q = m.encode(x);
  double total = 0;
  const int64_t draws = 200000;
  for (int64_t v = 0; v < 8; ++v) {
    SCOPED_TRACE(v);
    auto xv = x[v].unsqueeze(0).expand({n * n, 1, 1, 3});
    const double log_px =
        torch::logsumexp(log_prior - m.decode_nll(grid, xv), 0).item<double>() + log_area;
    total += std::exp(log_px);
    auto qv = Posterior{q.a.slice(0, v, v + 1), q.b.slice(0, v, v + 1)};
    const double q_mass =
        torch::logsumexp(m.log_q(qv, grid.unsqueeze(1)).squeeze(1), 0).item<double>() + log_area;
    EXPECT_NEAR(q_mass, 0.0, 1e-3);
    // w / p(x) over q's draws: mean 1, within four standard errors.
    auto z = m.draw(qv, draws, false);  // [draws, 1, 2]
    auto log_w = -m.decode_nll(z.squeeze(1), x[v].unsqueeze(0).expand({draws, 1, 1, 3})) +
                 (m.log_prior(z) - m.log_q(qv, z)).squeeze(1);
    auto ratio = torch::exp(log_w.to(torch::kDouble) - log_px);
    const double mean = ratio.mean().item<double>(),
                 se = ratio.std().item<double>() / std::sqrt(static_cast<double>(draws));
    EXPECT_NEAR(mean, 1.0, 5 * se + 1e-3);
    // The k-sample bound is the log of such a mean over k draws: its ratio to
    // p(x) is 1 within the same spread, sqrt(draws / k) times wider.
    const int64_t k = 20000;
    const double elbo = m.nll(x[v].unsqueeze(0).expand({k, 1, 1, 3})).mean().item<double>();
    const double iw = m.nll_iw(x[v].unsqueeze(0), k).item<double>();
    std::printf("x=%ld: -log p(x) %.4f, k-sample %.4f, ELBO %.4f nats, w / p(x) %.4f +- %.4f\n",
                static_cast<long>(v), -log_px, iw, elbo, mean, se);
    EXPECT_NEAR(std::exp(-iw - log_px), 1.0,
                5 * se * std::sqrt(static_cast<double>(draws) / k) + 1e-3);
    EXPECT_LT(iw, elbo - 0.5);  // q is far from the posterior: the bound tightens a lot
  }
  EXPECT_NEAR(total, 1.0, 1e-3);
}
