// Bits-back coding of the VAE, the two-layer VAE and VLAE (codec/bits_back.h): the fixed-order
// networks equal the torch ones, the bucket tables are exact, files round-trip byte for byte
// whatever the thread count or block split, a file costs the one-draw ELBO plus the chain's start,
// and damaged or foreign data is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "tame/codec/bits_back.h"
#include "tame/codec/model_codec.h"
#include "tame/dist/likelihood.h"
#include "tame/error.h"
#include "tame/models/latent/vae.h"
#include "tame/registry.h"

using namespace tame;

namespace {

constexpr int64_t kBuckets = int64_t{1} << kLatentBits;

std::shared_ptr<LatentModel> vae(const nlohmann::json& hp, ImageShape shape, int64_t levels,
                                 uint64_t seed = 1, const std::string& model = "vae") {
  torch::manual_seed(seed);
  return std::dynamic_pointer_cast<LatentModel>(
      make_model(model, resolve_hparams(model, hp), shape, levels));
}

// The same two-layer VAE with z1 moved to a * z1 + b: q(z1|x) and p(z1|z2)
// give that variable's densities, and the networks that read z1 undo the map,
// so the ELBO is unchanged (unless a log-variance meets its clamp). A trained
// model's z1 has no N(0, 1) scale; this one has none by construction.
void z1_moved(LatentModel& m, double a, double b) {
  torch::NoGradGuard g;
  auto p = m.named_parameters();
  const int64_t L1 = p["up.l1.weight"].size(1);
  for (const std::string net : {"encoder", "down"}) {  // their outputs: mu, then log-variance
    p[net + ".out.weight"].slice(0, 0, L1).mul_(a);
    p[net + ".out.bias"].slice(0, 0, L1).mul_(a).add_(b);
    p[net + ".out.bias"].slice(0, L1, 2 * L1).add_(2 * std::log(a));
  }
  for (const std::string net : {"up", "decoder"}) {  // they read z1: W z1 + c = (W / a) z' + c'
    auto w = p[net + ".l1.weight"];
    w.div_(a);
    p[net + ".l1.bias"].sub_(w.sum(1) * b);
  }
}

// A VAE (or VLAE, or Gumbel-softmax VAE) trained a little on structured
// binary 8x8 images, so that its posteriors are narrow and its KL is far from 0.
std::shared_ptr<LatentModel> trained_vae(const std::string& arch, const torch::Tensor& data) {
  auto m = arch == "vlae"
               ? vae({{"latent", 4}, {"hidden", 8}, {"pixel_hidden", 4}}, {1, 8, 8}, 2, 3, "vlae")
           : arch == "gumbel"
               ? vae({{"groups", 4}, {"classes", 5}, {"hidden", 8}, {"tau_min", 1.0}}, {1, 8, 8}, 2,
                     3, "gumbel-vae")
           : arch.rfind("vae2", 0) == 0
               ? vae({{"latent1", 4}, {"latent2", 2}, {"hidden1", 32}, {"hidden2", 8}}, {1, 8, 8},
                     2, 3, "vae2")
               : vae({{"arch", arch}, {"latent", 4}, {"hidden", arch == "mlp" ? 32 : 8}}, {1, 8, 8},
                     2, 3);
  torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
  for (int64_t step = 0; step < 300; ++step) {
    auto batch = data.index_select(0, torch::randint(0, data.size(0), {64}));
    opt.zero_grad();
    m->loss(batch).backward();
    opt.step();
  }
  m->eval();
  if (arch == "vae2-wide") z1_moved(*m, 10.0, 5.0);
  return m;
}

torch::Tensor binary_digits(int64_t n, uint64_t seed) {
  return (tame::testing::synthetic_images(n, 8, 8, seed) > 127).to(torch::kUInt8);
}

ImageList as_list(const torch::Tensor& x) {
  auto c = x.to(torch::kUInt8).contiguous();
  return image_list(c.data_ptr<uint8_t>(), c.size(0), {c.size(1), c.size(2), c.size(3)});
}

// Channels-last copy of [B, C, H, W] (what a Feedforward reads and writes).
torch::Tensor hwc(const torch::Tensor& t) { return t.permute({0, 2, 3, 1}).contiguous(); }

}  // namespace

TEST(BitsBack, NormalCdfIsAccurateEverywhere) {
  for (double x = -9.0; x <= 9.0; x += 0.0137) {
    const double want = 0.5 * std::erfc(-x / std::sqrt(2.0));
    const double tail = std::min(want, 1.0 - want);  // relative to the smaller tail
    EXPECT_LT(std::fabs(det_normal_cdf(x) - want), 2e-7 * tail + 3e-16)
        << x;  // doubles near 1 are 1.1e-16 apart
  }
  EXPECT_NEAR(det_normal_cdf(0.0), 0.5, 1e-7);
}

TEST(BitsBack, BucketsHaveEqualMassAndHoldTheirMedians) {
  const auto& b = normal_buckets();
  ASSERT_EQ(static_cast<int64_t>(b.edges.size()), kBuckets + 1);
  ASSERT_EQ(static_cast<int64_t>(b.medians.size()), kBuckets);
  for (int64_t i = 1; i < kBuckets; ++i) {
    EXPECT_LT(b.edges[i - 1], b.edges[i]);
    EXPECT_NEAR(det_normal_cdf(b.edges[i]), static_cast<double>(i) / kBuckets, 1e-12);
  }
  for (int64_t i = 0; i < kBuckets; ++i) {
    EXPECT_GT(b.medians[i], b.edges[i]);
    EXPECT_LT(b.medians[i], b.edges[i + 1]);
  }
  EXPECT_FLOAT_EQ(b.medians[kBuckets / 2] + b.medians[kBuckets / 2 - 1], 0.0f);  // symmetric
}

// Every bucket keeps frequency >= 1 and the table sums to 2^precision exactly,
// for posteriors far inside, far outside and much wider than the prior; a
// narrow posterior puts nearly all its mass on the buckets around its mean.
TEST(BitsBack, PosteriorTablesAreExactForExtremeParameters) {
  const uint32_t total = uint32_t{1} << kPosteriorPrecision;
  std::vector<uint32_t> cdf(kBuckets + 1);
  for (auto [mu, sigma] : std::vector<std::pair<float, float>>{{0.0f, 1.0f},
                                                               {0.3f, 0.05f},
                                                               {5.0f, 1e-3f},
                                                               {-30.0f, 1e-4f},
                                                               {0.0f, 50.0f},
                                                               {1e4f, 1.0f},
                                                               {-2.5f, 2.5e-3f}}) {
    SCOPED_TRACE(std::to_string(mu) + " " + std::to_string(sigma));
    BucketCdf(mu, sigma, kPosteriorPrecision).write(cdf.data());
    EXPECT_EQ(cdf[0], 0u);
    EXPECT_EQ(cdf[kBuckets], total);
    for (int64_t i = 0; i < kBuckets; ++i) ASSERT_GT(cdf[i + 1], cdf[i]) << i;
  }
  BucketCdf(0.3f, 0.05f, kPosteriorPrecision).write(cdf.data());
  const auto& e = normal_buckets().edges;
  double inside = 0;
  for (int64_t i = 0; i < kBuckets; ++i)
    if (e[i] >= 0.3 - 3 * 0.05 && e[i + 1] <= 0.3 + 3 * 0.05) inside += cdf[i + 1] - cdf[i];
  EXPECT_GT(inside / total, 0.99);
}

// The fixed-order forms compute what the torch networks compute, for both
// architectures, both directions, and channels-first weights permuted to
// channels-last maps (3 channels and a 8x12 image, so a wrong permutation shows).
TEST(BitsBack, FixedOrderNetworksMatchTorch) {
  torch::NoGradGuard g;
  torch::manual_seed(2);
  const ImageShape shape{3, 8, 12};
  for (std::string arch : {"conv", "mlp"}) {
    SCOPED_TRACE(arch);
    auto enc = make_encoder(arch, shape, 6, 10);
    auto dec = make_decoder(arch, 5, 6, 7, shape);
    auto x = torch::rand({2, 3, 8, 12}) * 2 - 1;
    auto z = torch::randn({2, 5});
    auto fe = feedforward_of(enc, {8, 12, 3}, {1, 1, 10});
    auto fd = feedforward_of(dec, {1, 1, 5}, {8, 12, 7});
    auto want_e = enc.forward(x), want_d = hwc(dec.forward(z));
    auto xin = hwc(x);
    for (int64_t b = 0; b < 2; ++b) {
      std::vector<float> out_e(10), out_d(8 * 12 * 7);
      fe.run(xin[b].data_ptr<float>(), out_e.data());
      fd.run(z[b].contiguous().data_ptr<float>(), out_d.data());
      auto got_e = torch::from_blob(out_e.data(), {10}).clone();
      auto got_d = torch::from_blob(out_d.data(), {8, 12, 7}).clone();
      EXPECT_LT((got_e - want_e[b]).abs().max().item<double>(), 1e-4);
      EXPECT_LT((got_d - want_d[b]).abs().max().item<double>(), 1e-4);
    }
  }
}

// Files decode to their images byte for byte, and the bytes do not depend on
// the threads or on the coder's own block choice, for the three pixel
// likelihoods (Bernoulli, categorical and discretized logistic) and VLAE's
// autoregressive decoder.
TEST(BitsBack, RoundTripsWhateverTheThreads) {
  struct Case {
    nlohmann::json hp;
    ImageShape shape;
    int64_t levels;
    std::string model = "vae";
  };
  for (const Case& c : std::vector<Case>{
           {{{"arch", "mlp"}, {"latent", 3}, {"hidden", 8}}, {1, 8, 8}, 2},
           {{{"latent", 4}, {"hidden", 4}, {"likelihood", "categorical"}}, {3, 4, 8}, 5},
           {{{"arch", "mlp"}, {"latent", 2}, {"hidden", 8}, {"likelihood", "logistic"}},
            {1, 6, 5},
            256},
           // categorical latents (3 classes: a prior table that is not a power of 2)
           {{{"groups", 3}, {"classes", 3}, {"hidden", 4}}, {1, 8, 4}, 4, "gumbel-vae"},
           // an autoregressive decoder: x through the step engine, RGB
           {{{"latent", 3}, {"hidden", 4}, {"pixel_hidden", 2}, {"pixel_layers", 2}},
            {3, 4, 8},
            7,
            "vlae"},
           // two stochastic layers, binary and 8-bit logistic pixels
           {{{"latent1", 3}, {"latent2", 2}, {"hidden1", 8}, {"hidden2", 4}}, {1, 8, 8}, 2, "vae2"},
           {{{"latent1", 2},
             {"latent2", 3},
             {"hidden1", 8},
             {"hidden2", 4},
             {"likelihood", "logistic"}},
            {3, 5, 4},
            256,
            "vae2"}}) {
    SCOPED_TRACE(c.model + " " + c.hp.dump());
    auto m = vae(c.hp, c.shape, c.levels, 1, c.model);
    auto coder = m->coder();
    auto x = torch::randint(0, c.levels, {23, c.shape.channels, c.shape.height, c.shape.width});
    const ImageList list = as_list(x);
    EncodeStats stats;
    const std::string one = encode_images(*coder, "vae", list, 5, 1, &stats);
    EXPECT_EQ(encode_images(*coder, "vae", list, 5, 3), one);
    EXPECT_EQ(decode_images(*coder, one, 2).images.values, list.values);
    EncodeOptions o;  // block 0: the coder's choice, 8 chains
    o.threads = 2;
    const std::string chained = encode_images(*coder, "vae", list, o, &stats);
    EXPECT_EQ(parse_header(chained).block, 3);
    o.threads = 1;
    EXPECT_EQ(encode_images(*coder, "vae", list, o), chained);
    EXPECT_EQ(decode_images(*coder, chained, 1).images.values, list.values);
    EXPECT_GT(stats.chain_bits, 0);
  }
}

// On a trained model, a file costs what the model's one-draw ELBO says plus
// the chain's start: the payload's ideal bits (one draw of z per image) are
// within four standard errors of that draw of the ELBO (its mean and spread
// from 40 draws) plus 0.5 % for the latents' buckets; the payload is those
// bits, the chain's start and the rANS head; and the coder's float account of
// the bits agrees with the ideal one.
TEST(BitsBack, FileCostsTheElboPlusTheChainStart) {
  auto train = binary_digits(512, 5);
  // vae2-wide: z1 ten units wide and five out, coded on the grid of its prior's marginal
  for (std::string arch : {"mlp", "conv", "vlae", "gumbel", "vae2", "vae2-wide"}) {
    SCOPED_TRACE(arch);
    auto m = trained_vae(arch, train);
    auto x = binary_digits(1000, 11);
    double elbo_bits = 0, variance = 0;
    {
      torch::NoGradGuard g;
      std::vector<torch::Tensor> draws;
      for (int r = 0; r < 40; ++r) draws.push_back(m->nll(x) / std::log(2.0));
      auto d = torch::stack(draws);  // [40, images], bits
      elbo_bits = d.mean(0).sum().item<double>();
      variance = d.var(0).sum().item<double>();  // of one draw per image, summed over images
    }
    const double kl = m->diagnostics(x)["kl_nats"].get<double>();
    EXPECT_GT(kl, 0.3);  // nats per image: the posteriors carry information (vlae: 0.67)
    EncodeStats stats;
    const std::string file = encode_images(*m->coder(), "vae", as_list(x), 1000, 1, &stats);
    const CodecHeader h = parse_header(file);
    const double payload = 8.0 * h.block_bytes[0];
    std::printf(
        "%s: ELBO %.1f bits (one-draw sd %.1f), ideal %.1f, model %.1f, payload %.0f "
        "(chain start %.0f), KL %.2f nats\n",
        arch.c_str(), elbo_bits, std::sqrt(variance), stats.ideal_bits, stats.model_bits, payload,
        stats.chain_bits, kl);
    EXPECT_NEAR(stats.ideal_bits, elbo_bits, 4 * std::sqrt(variance) + 0.005 * elbo_bits);
    EXPECT_NEAR(payload, stats.ideal_bits + stats.chain_bits + 64, 64);
    EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * stats.model_bits);
    // 16 (S + 3) bits, S = ceil(latents x their prior's bits / 16) + 4: no restart
    const int64_t prior_bits = arch == "gumbel" ? 3 : kLatentBits,
                  latents = arch.rfind("vae2", 0) == 0 ? 6 : 4;
    EXPECT_EQ(stats.chain_bits, 16.0 * ((latents * prior_bits + 15) / 16 + 4 + 3));
    EXPECT_EQ(decode_images(*m->coder(), file, 2).images.values, as_list(x).values);
  }
}

// A message from another model's weights, or cut short, does not decode: the
// chain does not come back to its start, or the message runs out, and the
// container refuses another model's file by its fingerprint.
TEST(BitsBack, ForeignOrDamagedMessagesAreRefused) {
  const nlohmann::json hp = {{"arch", "mlp"}, {"latent", 3}, {"hidden", 8}};
  auto a = vae(hp, {1, 8, 8}, 2, 1)->coder(), b = vae(hp, {1, 8, 8}, 2, 2)->coder();
  const ImageList list = as_list(binary_digits(20, 3));
  ImageBlock block{{1, 8, 8}, 20, list.values};
  RansMessage m;
  a->push_images(m, block, nullptr, nullptr);
  RansMessage other = m;
  EXPECT_THROW(
      {
        auto back = b->pop_images(other, 20, {1, 8, 8}, nullptr);
        if (!rans_empty(other) || back.values != list.values) throw Error("differs");
      },
      Error);
  RansMessage cut = m;
  cut.tail.resize(cut.tail.size() / 2);
  EXPECT_THROW(a->pop_images(cut, 20, {1, 8, 8}, nullptr), Error);
  RansMessage good = m;
  EXPECT_EQ(a->pop_images(good, 20, {1, 8, 8}, nullptr).values, list.values);
  EXPECT_TRUE(rans_empty(good));

  const std::string file = encode_images(*a, "vae", list, 0, 1);
  EXPECT_NE(
      tame::testing::error_of([&] { decode_images(*b, file, 1); }).find("written by another model"),
      std::string::npos);
  ImageList small = as_list(torch::zeros({1, 1, 4, 8}, torch::kUInt8));
  EXPECT_NE(tame::testing::error_of([&] {
              encode_images(*a, "vae", small, 0, 1);
            }).find("this model codes 1x8x8 images only"),
            std::string::npos);
}
