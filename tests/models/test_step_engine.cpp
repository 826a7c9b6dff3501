// The step engine: its conditionals equal the full network's at any image
// size, its kernels follow their stated summation order, its results don't
// depend on the batch an image is computed in, its caches hold a few rows and
// not the image, and VLAE's decoder runs on it given z.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/models/autoregressive/gated_pixelcnn.h"
#include "tame/models/latent/vlae.h"
#include "tame/registry.h"

using namespace tame;

namespace {

// A model name, or "pixelrnn/<layer>" for one PixelRNN layer kind.
std::shared_ptr<AutoregressiveModel> random_model(std::string name, ImageShape shape,
                                                  int64_t levels) {
  torch::manual_seed(11);
  nlohmann::json hp = name == "pixelcnn"
                          ? nlohmann::json{{"hidden", 6}, {"blocks", 2}, {"out_hidden", 12}}
                          : nlohmann::json{{"hidden", 6}, {"layers", 3}, {"out_hidden", 12}};
  if (const auto slash = name.find('/'); slash != std::string::npos) {
    hp["layer"] = name.substr(slash + 1);
    name = name.substr(0, slash);
  }
  auto m = std::dynamic_pointer_cast<AutoregressiveModel>(make_model(name, hp, shape, levels));
  torch::NoGradGuard g;
  // Larger than initial weights, so that the logits are far from uniform and a
  // wrong connection shows.
  for (auto& p : m->parameters()) p.mul_(2.5);
  return m;
}

// Runs the engine over x ([B, C, H, W] uint8) and returns every conditional as
// [B, K, C, H, W], like AutoregressiveModel::logits; context as for begin().
torch::Tensor engine_logits(StepEngine& e, const torch::Tensor& x, const float* context = nullptr) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), K = e.levels();
  auto out = torch::zeros({B, K, C, H, W});
  auto xa = x.accessor<uint8_t, 4>();
  auto oa = out.accessor<float, 5>();
  e.begin(B, H, W, context);
  std::vector<uint16_t> v(B);
  while (!e.done()) {
    const SubPixel p = e.next();
    const float* l = e.conditional();
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t k = 0; k < K; ++k) oa[b][k][p.c][p.i][p.j] = l[b * K + k];
      v[b] = xa[b][p.c][p.i][p.j];
    }
    e.observe(v.data());
  }
  return out;
}

class Cached : public ::testing::TestWithParam<std::tuple<std::string, int64_t>> {};

}  // namespace

// The cached conditionals equal the full network's (one forward pass) on every
// sub-pixel, for C = 1 and C = 3, on a non-square image and on images of other
// sizes than the model was built for (1x1, 1xN and Nx1 included): the engines
// are fully convolutional.
TEST_P(Cached, MatchesTheFullNetworkAtAnySize) {
  auto [name, C] = GetParam();
  const int64_t K = 16;
  auto m = random_model(name, {C, 6, 5}, K);
  auto engine = m->step_engine();
  ASSERT_TRUE(engine != nullptr);
  for (auto [H, W] :
       {std::pair{6, 5}, std::pair{1, 1}, std::pair{1, 7}, std::pair{8, 1}, std::pair{9, 11}}) {
    torch::manual_seed(5 + H * W);
    auto x = torch::randint(0, K, {3, C, H, W}).to(torch::kUInt8);
    torch::Tensor full;
    {
      torch::NoGradGuard g;
      full = m->logits(x);
    }
    auto cached = engine_logits(*engine, x);
    if (H * W > 4) {
      ASSERT_GT(full.std().item<double>(), 0.5);  // the test has teeth
    }
    EXPECT_LT((cached - full).abs().max().item<double>(), 2e-4) << H << "x" << W;
    // And so the cached NLL equals the model's.
    EXPECT_NEAR(categorical_nll(cached, x).sum().item<double>(), m->nll(x).sum().item<double>(),
                1e-3);
  }
}

// One image alone, or inside a batch at another index, gets bit-identical
// conditionals: rows of the step kernels never interact.
TEST_P(Cached, BatchDoesNotChangeBits) {
  auto [name, C] = GetParam();
  auto m = random_model(name, {C, 5, 4}, 256);
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
                         ::testing::Combine(::testing::Values("pixelcnn", "gated-pixelcnn",
                                                              "pixelrnn/row-lstm",
                                                              "pixelrnn/diagonal-bilstm"),
                                            ::testing::Values(int64_t{1}, int64_t{3})),
                         [](const auto& info) {
                           std::string n = std::get<0>(info.param);
                           for (auto& ch : n)
                             if (ch == '-' || ch == '/') ch = '_';
                           return n + "_C" + std::to_string(std::get<1>(info.param));
                         });

// The fingerprint follows the weights, and not the image size.
TEST(StepEngine, FingerprintChangesWithWeights) {
  auto m = random_model("gated-pixelcnn", {1, 4, 4}, 4);
  const uint64_t before = m->step_engine()->fingerprint();
  EXPECT_EQ(random_model("gated-pixelcnn", {1, 9, 3}, 4)->step_engine()->fingerprint(), before);
  {
    torch::NoGradGuard g;
    m->parameters()[3].view(-1)[0].add_(1e-3);
  }
  EXPECT_NE(m->step_engine()->fingerprint(), before);
}

// Each layer keeps the rows its taps can still read, not the image: for a
// 512x512 image the default Gated PixelCNN's caches are a small fraction of
// the full-resolution maps (~600 MB), the same at any height, and they grow
// with the width alone.
TEST(StepEngine, CachesHoldRowsNotImages) {
  torch::manual_seed(1);
  auto m = std::dynamic_pointer_cast<AutoregressiveModel>(
      make_model("gated-pixelcnn", {}, ImageShape{1, 28, 28}, 256));
  auto e = m->step_engine();
  const GatedPixelCNNOptions o;
  const double full = 2.0 * (o.layers + 1) * 512 * 512 * o.hidden * sizeof(float);
  e->begin(1, 512, 512);
  const size_t at_512 = e->cache_bytes();
  // The figure docs/RESULTS.md and DESIGN.md quote.
  std::printf("cache for one 512x512 image: %.1f MB (full-size maps: %.0f MB)\n", at_512 / 1e6,
              full / 1e6);
  EXPECT_LT(at_512, 0.01 * full) << at_512 << " bytes";
  e->begin(1, 2048, 512);
  EXPECT_EQ(e->cache_bytes(), at_512);
  e->begin(1, 512, 1024);
  EXPECT_GT(e->cache_bytes(), at_512);
  // The rings still give the full network's conditionals on a tall image
  // (rows wrap around them many times).
  auto small = random_model("pixelcnn", {1, 4, 4}, 8);
  torch::manual_seed(2);
  auto x = torch::randint(0, 8, {2, 1, 23, 3}).to(torch::kUInt8);
  torch::NoGradGuard g;
  EXPECT_LT((engine_logits(*small->step_engine(), x) - small->logits(x)).abs().max().item<double>(),
            2e-4);
}

// Sampling: values in range, reproducible from the seed whatever the thread
// count, and temperature -> 0 approaches the argmax.
TEST(StepEngine, SamplingIsSeededAndThreadIndependent) {
  auto m = random_model("gated-pixelcnn", {1, 5, 5}, 8);
  auto e = m->step_engine();
  auto a = draw_images(*e, 6, 5, 5, 1.0, 42, 1);
  EXPECT_EQ(draw_images(*e, 6, 5, 5, 1.0, 42, 3), a);
  EXPECT_LT(*std::max_element(a.begin(), a.end()), 8);
  EXPECT_NE(draw_images(*e, 6, 5, 5, 1.0, 43, 1), a);
  // At temperature 0 every image is the greedy (argmax) decode, so all agree.
  auto g = draw_images(*e, 4, 5, 5, 0.0, 7, 2);
  EXPECT_TRUE(std::equal(g.begin(), g.begin() + 25, g.begin() + 75));
  // The model's sample() goes through the engine, from torch's seed.
  torch::manual_seed(3);
  auto s1 = m->sample(3);
  torch::manual_seed(3);
  EXPECT_TRUE(torch::equal(m->sample(3), s1));
  EXPECT_EQ(s1.sizes(), (std::vector<int64_t>{3, 1, 5, 5}));
}

namespace {

// VLAE with its protected parts opened for the test.
struct VlaeProbe : Vlae {
  using Vlae::decoder_context;
  using Vlae::decoder_engine;
  using Vlae::pixel_params;
  using Vlae::Vlae;
};

}  // namespace

// VLAE's decoder as a step engine given z's context map: the same
// conditionals as its torch network, for 1 and 3 channels.
TEST(StepEngine, VlaeDecoderMatchesTheTorchNetwork) {
  for (int64_t C : {1, 3}) {
    torch::manual_seed(4);
    auto o = nlohmann::json{{"latent", 3}, {"hidden", 4}, {"pixel_hidden", 4}, {"pixel_layers", 2}}
                 .get<VlaeOptions>();
    VlaeProbe m(o, {C, 8, 8}, 16);
    torch::NoGradGuard g;
    for (auto& p : m.parameters()) p.mul_(2.0);
    auto z = torch::randn({3, o.latent});
    auto x = torch::randint(0, 16, {3, C, 8, 8}).to(torch::kUInt8);
    auto full = m.pixel_params(m.decoder_context(z), x).view({3, 16, C, 8, 8});
    auto steps = m.decoder_engine(m.decoder_context(z));
    ASSERT_TRUE(steps.engine != nullptr);
    ASSERT_EQ(steps.context.size(3), steps.engine->context_features());
    auto cached = engine_logits(*steps.engine, x, steps.context.data_ptr<float>());
    ASSERT_GT(full.std().item<double>(), 0.5);
    EXPECT_LT((cached - full).abs().max().item<double>(), 2e-4) << "C = " << C;
    // Sampling given z runs through the same engine.
    auto s = m.decode_sample(z, 1.0);
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, C, 8, 8}));
    EXPECT_LT(s.max().item<int>(), 16);
  }
}

// The step kernel computes bias + sum_k in[k] w[k] in the order k = 0, 1, ...:
// bit-identical to the plain loop at every vector width this CPU runs, for
// row and column counts off every blocking (blocks of 6, 4, 2 and 1 rows;
// ragged column blocks, which read past a row's last column into the next
// one's weights while that stays inside w, and pad the last rows' columns).
TEST(StepKernels, DenseFollowsItsSummationOrder) {
  std::mt19937 rng(1);
  std::normal_distribution<float> N;
  const auto widths = steps::widths();
  EXPECT_EQ(widths.front(), steps::Width::baseline);
  EXPECT_EQ(steps::width(), widths.back());
  for (auto [rows, in, out] :
       {std::tuple{7, 13, 37}, std::tuple{4, 64, 256}, std::tuple{1, 3, 5}, std::tuple{2, 5, 3},
        std::tuple{5, 1, 17}, std::tuple{3, 9, 33}, std::tuple{13, 40, 100}, std::tuple{11, 2, 95},
        std::tuple{1, 200, 31}}) {
    steps::Dense d;
    d.in = in;
    d.out = out;
    for (int k = 0; k < in * out; ++k) d.w.push_back(N(rng));
    for (int m = 0; m < out; ++m) d.b.push_back(N(rng));
    std::vector<float> x(rows * in), ref(rows * out);
    for (auto& v : x) v = N(rng);
    for (int r = 0; r < rows; ++r)
      for (int m = 0; m < out; ++m) {
        float acc = d.b[m];
        for (int k = 0; k < in; ++k) {
          float p = x[r * in + k] * d.w[k * out + m];
          acc = acc + p;
        }
        ref[r * out + m] = acc;
      }
    for (auto w : widths) {
      // Written into a wider output (stride out + 3) whose gaps must stay untouched.
      const int stride = out + 3;
      std::vector<float> y(rows * stride, -7.0f);
      steps::dense_at(w, d, x.data(), in, rows, y.data(), stride);
      for (int r = 0; r < rows; ++r) {
        EXPECT_EQ(std::memcmp(y.data() + r * stride, ref.data() + r * out, sizeof(float) * out), 0)
            << steps::name(w) << " " << rows << "x" << in << "x" << out << " row " << r;
        for (int g = out; g < stride; ++g) EXPECT_EQ(y[r * stride + g], -7.0f) << steps::name(w);
      }
    }
    std::vector<float> y(rows * out);
    steps::dense(d, x.data(), in, rows, y.data(), out);
    EXPECT_EQ(std::memcmp(y.data(), ref.data(), sizeof(float) * y.size()), 0);
  }
}

// gather_taps reads a cache through its layout: the same maps stored
// [n][ring][W][ch] and by column first ([ring][W][n][ch]) give the same rows,
// with zeros for taps outside the image and the ring's slot y % ring.
TEST(StepKernels, GatherTapsFollowsTheLayout) {
  const int64_t n = 3, ring = 2, H = 5, W = 4, ch = 2;
  std::vector<float> image_first(n * ring * W * ch), column_first(image_first.size());
  for (int64_t b = 0; b < n; ++b)
    for (int64_t r = 0; r < ring; ++r)
      for (int64_t x = 0; x < W; ++x)
        for (int64_t k = 0; k < ch; ++k) {
          const float v = static_cast<float>(1000 * b + 100 * r + 10 * x + k + 1);
          image_first[((b * ring + r) * W + x) * ch + k] = v;
          column_first[((r * W + x) * n + b) * ch + k] = v;
        }
  const std::vector<steps::Tap> taps = {{-1, -1}, {-1, 0}, {-1, 2}, {0, -2}, {0, 0}, {1, 0}};
  const int64_t stride = static_cast<int64_t>(taps.size()) * ch + 1;  // rows with a gap
  for (auto [i, j] : {std::pair{3, 1}, std::pair{0, 0}, std::pair{4, 3}}) {
    std::vector<float> a(n * stride, -7.0f), b(a), want(a);
    steps::gather_taps(image_first.data(), n, ring, H, W, ch, i, j, taps, a.data(), stride);
    steps::gather_taps(column_first.data(), n, steps::MapLayout{ch, W * n * ch, n * ch, ring}, H, W,
                       ch, i, j, taps, b.data(), stride);
    for (int64_t im = 0; im < n; ++im)
      for (size_t t = 0; t < taps.size(); ++t) {
        const int64_t y = i + taps[t].dy, x = j + taps[t].dx;
        for (int64_t k = 0; k < ch; ++k)
          want[im * stride + t * ch + k] =
              y < 0 || y >= H || x < 0 || x >= W
                  ? 0.0f
                  : static_cast<float>(1000 * im + 100 * (y % ring) + 10 * x + k + 1);
      }
    EXPECT_EQ(a, want) << i << "," << j;
    EXPECT_EQ(b, want) << i << "," << j;
  }
}

// The discretized logistic's bin masses, vectorized at every width (with its
// shortcut for chunks of bins far in a tail), give the bits of the scalar
// definition, for broad and sharp components, means inside and outside
// [-1, 1], and level counts off the vector widths.
TEST(StepKernels, LogisticMassesMatchTheScalarDefinition) {
  for (int64_t levels : {2, 3, 17, 256, 1000}) {
    std::vector<float> mass(levels);
    for (float inv_scale : {0.5f, 3.0f, 30.0f, 300.0f, 3000.0f, 1e5f})
      for (float mean = -1.3f; mean <= 1.3f; mean += 0.0617f)
        for (auto w : steps::widths()) {
          steps::logistic_masses_at(w, mean, inv_scale, levels, mass.data());
          for (int64_t k = 0; k < levels; ++k) {
            const float want = steps::logistic_bin_mass(mean, inv_scale, k, levels);
            ASSERT_EQ(std::memcmp(&mass[k], &want, sizeof want), 0)
                << steps::name(w) << " levels " << levels << " mean " << mean << " 1/s "
                << inv_scale << " k " << k << ": " << mass[k] << " vs " << want;
          }
        }
  }
  // Far in the tails the sigmoid is the clamped exponential's (a subnormal,
  // which the kernels give without computing it).
  for (float x : {-88.0f, -100.0f, -1e30f})
    EXPECT_EQ(steps::det_sigmoid(x), 1.0f / (1.0f + steps::det_exp(88.0f))) << x;
  EXPECT_GT(steps::det_sigmoid(-88.0f), 0.0f);
  EXPECT_LT(steps::det_sigmoid(-88.0f), 1.18e-38f);
  EXPECT_EQ(steps::det_sigmoid(-87.9f), 1.0f / (1.0f + steps::det_exp(87.9f)));
}

// The frequency rule of dist/integer_cdf.h's MixtureEdges rests on this:
// det_sigmoid is not monotone (its exp's range reduction makes it step back
// now and then), but over every float it never falls more than 2^-24 below a
// value it took at a smaller input. Inputs in (-2^-26, 2^-26) give exactly
// 0.5 (exp's polynomial is 1 there), and inputs beyond +-100 the clamped
// ends, so the scan covers every other float in ascending order.
TEST(StepKernels, SigmoidFallsByAtMostOneUnitInTheLastPlace) {
  const float tiny = std::ldexp(1.0f, -26);
  for (float x : {0.0f, -0.0f, 1e-45f, -1e-45f, 1e-30f, -1e-30f, std::nextafter(tiny, 0.0f),
                  -std::nextafter(tiny, 0.0f)})
    ASSERT_EQ(steps::det_sigmoid(x), 0.5f) << x;
  EXPECT_EQ(steps::det_sigmoid(-1e30f), steps::det_sigmoid(-100.0f));
  EXPECT_EQ(steps::det_sigmoid(1e30f), steps::det_sigmoid(100.0f));
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, sizeof u);
    return u;
  };
  constexpr int64_t kChunk = 1 << 16;
  std::vector<float> x(kChunk), s(kChunk);
  float highest = 0.0f;
  double worst = 0;
  int64_t falls = 0, scanned = 0;
  // Walks the float bit patterns from `from` towards `to` (ascending values
  // when the step matches the sign), keeping the highest sigmoid so far.
  auto scan = [&](uint32_t from, uint32_t to, int step) {
    for (uint64_t u = from; u != static_cast<uint64_t>(to) + step;) {
      int64_t n = 0;
      for (; n < kChunk && u != static_cast<uint64_t>(to) + step; ++n, u += step) {
        const auto v = static_cast<uint32_t>(u);
        std::memcpy(&x[n], &v, sizeof v);
      }
      steps::sigmoid(x.data(), n, s.data());
      for (int64_t k = 0; k < n; ++k) {
        if (s[k] < highest) {
          ++falls;
          worst = std::max(worst, static_cast<double>(highest) - s[k]);
        }
        highest = std::max(highest, s[k]);
      }
      scanned += n;
    }
  };
  scan(bits(-100.0f), bits(-tiny), -1);  // negative values: the pattern falls as they rise
  // Then the inputs that give 0.5, and the positive ones.
  worst = std::max(worst, static_cast<double>(highest) - 0.5);
  highest = std::max(highest, 0.5f);
  scan(bits(tiny), bits(100.0f), 1);
  std::printf("det_sigmoid over %lld floats: %lld steps back, the largest %.3g\n",
              static_cast<long long>(scanned), static_cast<long long>(falls), worst);
  EXPECT_LE(worst, std::ldexp(1.0, -24));
  EXPECT_EQ(highest, steps::det_sigmoid(100.0f));
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

// The vectorized kernels, at every width this CPU runs, give the bits of the
// scalar functions, which are built for the baseline ISA.
TEST(StepKernels, VectorAndScalarFormsAgreeBitForBit) {
  std::vector<float> x;
  for (float v = -100.0f; v <= 100.0f; v += 0.0731f) x.push_back(v);
  std::vector<float> e(x.size()), g(x.size() / 2), sg(x.size());
  const int64_t half = static_cast<int64_t>(x.size() / 2);
  for (auto w : steps::widths()) {
    steps::exp_shifted_at(w, x.data(), static_cast<int64_t>(x.size()), 0.5f, e.data());
    steps::gate_at(w, x.data(), half, g.data());
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(e[i], steps::det_exp(x[i] - 0.5f)) << steps::name(w) << " " << x[i];
    for (int64_t i = 0; i < half; ++i) {
      const float t = steps::det_tanh(x[i]), s = steps::det_sigmoid(x[half + i]);
      ASSERT_EQ(g[i], t * s) << steps::name(w) << " " << x[i];
    }
  }
  // gate_rows: gate() on each row, through strides, nothing written between rows.
  const int64_t rows = 5, n = 21, in_stride = 2 * n + 3, out_stride = n + 2;
  std::vector<float> r_out(rows * out_stride, -7.0f), one(n);
  steps::gate_rows(x.data(), rows, n, in_stride, r_out.data(), out_stride);
  for (int64_t r = 0; r < rows; ++r) {
    steps::gate(x.data() + r * in_stride, n, one.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(r_out[r * out_stride + i], one[i]) << r << " " << i;
    for (int64_t i = n; i < out_stride; ++i) ASSERT_EQ(r_out[r * out_stride + i], -7.0f);
  }
  // The widest width's sigmoid, as the engines call it.
  steps::sigmoid(x.data(), static_cast<int64_t>(x.size()), sg.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(sg[i], steps::det_sigmoid(x[i])) << x[i];
  // The CDF writers' frequencies: the plain rule, its sum and its maximum at
  // every width, for lengths around the vectors' and masses that are tiny,
  // exact halves, at the top of the range, NaN or infinite.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t len : {1, 7, 17, 256, 1001}) {
    std::vector<float> mass(len);
    for (int64_t k = 0; k < len; ++k)
      mass[k] = k % 11 == 3 ? 1e-30f : k % 13 == 5 ? 0.5f : std::fabs(std::sin(0.37f * k));
    if (len > 7) {
      mass[1] = nan;
      mass[2] = inf;
      mass[6] = 1.0f;
    }
    for (double scale : {1000.0, 2147483647.0, 3e9}) {
      std::vector<uint32_t> want(len);
      uint32_t want_sum = 0, want_top = 0;
      for (int64_t k = 0; k < len; ++k) {
        const double p = static_cast<double>(mass[k]) * scale;
        want[k] = 1 + (p >= 0 && p < 2147483648.0 ? static_cast<uint32_t>(std::floor(p)) : 0u);
        want_sum += want[k];
        want_top = std::max(want_top, want[k]);
      }
      for (auto w : steps::widths()) {
        std::vector<uint32_t> f(len, 0);
        uint32_t top = 0;
        ASSERT_EQ(steps::frequencies_at(w, mass.data(), len, scale, f.data(), &top), want_sum)
            << steps::name(w) << " " << len << " " << scale;
        ASSERT_EQ(top, want_top) << steps::name(w);
        ASSERT_EQ(f, want) << steps::name(w) << " " << len << " " << scale;
      }
    }
  }
}
