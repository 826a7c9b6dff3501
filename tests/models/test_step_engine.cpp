// The cached step engine: its conditionals equal the naive network's, its
// kernels follow their stated summation order, and its results don't depend on
// the batch an image is computed in.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/registry.h"

using namespace tame;

namespace {

std::shared_ptr<AutoregressiveModel> random_model(const std::string& name, ImageShape shape,
                                                  int64_t levels) {
  torch::manual_seed(11);
  nlohmann::json hp = name == "pixelcnn"
                          ? nlohmann::json{{"hidden", 6}, {"blocks", 2}, {"out_hidden", 12}}
                          : nlohmann::json{{"hidden", 6}, {"layers", 3}, {"out_hidden", 12}};
  auto m = std::dynamic_pointer_cast<AutoregressiveModel>(make_model(name, hp, shape, levels));
  torch::NoGradGuard g;
  // Larger than initial weights, so that the logits are far from uniform and a
  // wrong connection shows.
  for (auto& p : m->parameters()) p.mul_(2.5);
  return m;
}

// Runs the engine over x ([B, C, H, W] uint8) and returns every conditional as
// [B, K, C, H, W], like AutoregressiveModel::logits.
torch::Tensor engine_logits(StepEngine& e, const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = e.levels();
  auto out = torch::zeros({B, K, C, H, W});
  auto xa = x.accessor<uint8_t, 4>();
  auto oa = out.accessor<float, 5>();
  e.begin(B);
  std::vector<uint8_t> v(B);
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < C; ++c) {
        const float* l = e.conditional();
        for (int64_t b = 0; b < B; ++b) {
          for (int64_t k = 0; k < K; ++k) oa[b][k][c][i][j] = l[b * K + k];
          v[b] = xa[b][c][i][j];
        }
        e.observe(v.data());
      }
  return out;
}

class Cached : public ::testing::TestWithParam<std::tuple<std::string, int64_t>> {};

}  // namespace

// The cached conditionals equal the naive network's (the full forward pass) on
// every sub-pixel, for C = 1 and C = 3, on a non-square image.
TEST_P(Cached, MatchesNaiveConditionals) {
  auto [name, C] = GetParam();
  const ImageShape shape{C, 6, 5};
  const int64_t K = 16;
  auto m = random_model(name, shape, K);
  torch::manual_seed(5);
  auto x = torch::randint(0, K, {3, C, 6, 5}).to(torch::kUInt8);
  torch::Tensor naive;
  {
    torch::NoGradGuard g;
    naive = m->logits(x);
  }
  auto engine = m->step_engine();
  ASSERT_TRUE(engine != nullptr);
  auto cached = engine_logits(*engine, x);
  ASSERT_GT(naive.std().item<double>(), 0.5);  // the test has teeth
  EXPECT_LT((cached - naive).abs().max().item<double>(), 2e-4);
  // And so the cached NLL equals the model's.
  EXPECT_NEAR(categorical_nll(cached, x).sum().item<double>(), m->nll(x).sum().item<double>(),
              1e-3);
}

// One image alone, or inside a batch at another index, gets bit-identical
// conditionals: rows of the step kernels never interact.
TEST_P(Cached, BatchDoesNotChangeBits) {
  auto [name, C] = GetParam();
  const ImageShape shape{C, 5, 4};
  auto m = random_model(name, shape, 256);
  torch::manual_seed(6);
  auto x = torch::randint(0, 256, {5, C, 5, 4}).to(torch::kUInt8);
  auto engine = m->step_engine();
  auto all = engine_logits(*engine, x);
  auto clone = engine->clone();
  auto one = engine_logits(*clone, x.slice(0, 3, 4));
  EXPECT_EQ(std::memcmp(all[3].contiguous().data_ptr<float>(),
                        one[0].contiguous().data_ptr<float>(), sizeof(float) * one[0].numel()),
            0);
  EXPECT_EQ(engine->fingerprint(), clone->fingerprint());
}

INSTANTIATE_TEST_SUITE_P(Models, Cached,
                         ::testing::Combine(::testing::Values("pixelcnn", "gated-pixelcnn"),
                                            ::testing::Values(int64_t{1}, int64_t{3})));

// The fingerprint follows the weights.
TEST(StepEngine, FingerprintChangesWithWeights) {
  auto m = random_model("gated-pixelcnn", {1, 4, 4}, 4);
  const uint64_t before = m->step_engine()->fingerprint();
  {
    torch::NoGradGuard g;
    m->parameters()[3].view(-1)[0].add_(1e-3);
  }
  EXPECT_NE(m->step_engine()->fingerprint(), before);
}

// Cached sampling: values in range, reproducible from the seed whatever the
// thread count, and temperature -> 0 approaches the argmax.
TEST(StepEngine, SamplingIsSeededAndThreadIndependent) {
  auto m = random_model("gated-pixelcnn", {1, 5, 5}, 8);
  auto e = m->step_engine();
  at::set_num_threads(1);
  auto a = sample_engine(*e, 6, 1.0, 42);
  at::set_num_threads(2);
  auto b = sample_engine(*e, 6, 1.0, 42);
  at::set_num_threads(1);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_LT(a.max().item<int>(), 8);
  EXPECT_FALSE(torch::equal(a, sample_engine(*e, 6, 1.0, 43)));
  // At a tiny temperature every image is the greedy (argmax) decode, so all agree.
  auto g = sample_engine(*e, 4, 1e-4, 7);
  EXPECT_TRUE(torch::equal(g[0], g[3]));
}

// The step kernel computes bias + sum_k in[k] w[k] in the order k = 0, 1, ...:
// bit-identical to the plain loop, for row and column counts off the blocking.
TEST(StepKernels, DenseFollowsItsSummationOrder) {
  std::mt19937 rng(1);
  std::normal_distribution<float> N;
  for (auto [rows, in, out] :
       {std::tuple{7, 13, 37}, std::tuple{4, 64, 256}, std::tuple{1, 3, 5}}) {
    steps::Dense d;
    d.in = in;
    d.out = out;
    for (int k = 0; k < in * out; ++k) d.w.push_back(N(rng));
    for (int m = 0; m < out; ++m) d.b.push_back(N(rng));
    std::vector<float> x(rows * in), y(rows * out), ref(rows * out);
    for (auto& v : x) v = N(rng);
    steps::dense(d, x.data(), in, rows, y.data(), out);
    for (int r = 0; r < rows; ++r)
      for (int m = 0; m < out; ++m) {
        float acc = d.b[m];
        for (int k = 0; k < in; ++k) {
          float p = x[r * in + k] * d.w[k * out + m];
          acc = acc + p;
        }
        ref[r * out + m] = acc;
      }
    EXPECT_EQ(std::memcmp(y.data(), ref.data(), sizeof(float) * y.size()), 0)
        << rows << "x" << in << "x" << out;
  }
}

TEST(StepKernels, NonlinearitiesAreAccurate) {
  double worst_exp = 0, worst_tanh = 0, worst_sig = 0;
  for (float x = -80.0f; x <= 80.0f; x += 0.01937f) {
    worst_exp =
        std::max(worst_exp, std::abs(steps::det_exp(x) / std::exp(static_cast<double>(x)) - 1));
    worst_tanh =
        std::max(worst_tanh, std::abs(steps::det_tanh(x) - std::tanh(static_cast<double>(x))));
    worst_sig = std::max(
        worst_sig, std::abs(steps::det_sigmoid(x) - 1 / (1 + std::exp(-static_cast<double>(x)))));
  }
  EXPECT_LT(worst_exp, 1e-6);
  EXPECT_LT(worst_tanh, 1e-6);
  EXPECT_LT(worst_sig, 1e-6);
  EXPECT_EQ(steps::det_tanh(0.0f), 0.0f);
  EXPECT_EQ(steps::det_sigmoid(0.0f), 0.5f);
}

// The vectorized kernels (the AVX2 clone on machines that have it) give the
// bits of the scalar functions, which are built for the baseline ISA.
TEST(StepKernels, VectorAndScalarFormsAgreeBitForBit) {
  std::vector<float> x;
  for (float v = -100.0f; v <= 100.0f; v += 0.0731f) x.push_back(v);
  std::vector<float> e(x.size()), g(x.size() / 2);
  steps::exp_shifted(x.data(), static_cast<int64_t>(x.size()), 0.5f, e.data());
  const int64_t half = static_cast<int64_t>(x.size() / 2);
  steps::gate(x.data(), half, g.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(e[i], steps::det_exp(x[i] - 0.5f)) << x[i];
  for (int64_t i = 0; i < half; ++i) {
    const float t = steps::det_tanh(x[i]), s = steps::det_sigmoid(x[half + i]);
    ASSERT_EQ(g[i], t * s) << x[i];
  }
}
