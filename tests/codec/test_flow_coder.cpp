// Local bits-back coding of the flows (codec/flow_coder.h): the coder's
// programs compute the torch flows' maps and log-determinants, files
// round-trip byte for byte whatever the thread count or block split (nice,
// realnvp, glow; uniform and variational dequantization; gray, RGB and binary
// images; slopes far from 1, whose values leave their tables' windows), a file
// costs the one-draw bound plus the chain's start, and foreign or damaged data
// is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "../test_util.h"
#include "tame/codec/flow_coder.h"
#include "tame/codec/model_codec.h"
#include "tame/error.h"
#include "tame/models/flows/flow_model.h"
#include "tame/registry.h"

using namespace tame;

namespace {

struct Case {
  std::string model;
  nlohmann::json hp;
  ImageShape shape;
  int64_t levels;
};

std::vector<Case> cases() {
  return {
      {"nice", {{"couplings", 2}, {"hidden", 4}}, {1, 8, 8}, 256},
      {"realnvp", {{"scales", 2}, {"hidden", 4}}, {1, 8, 8}, 2},
      {"realnvp",
       {{"scales", 2}, {"hidden", 4}, {"dequantization", "variational"}, {"deq_couplings", 2}},
       {1, 8, 8},
       256},
      {"glow", {{"levels", 2}, {"steps", 2}, {"hidden", 4}}, {1, 8, 8}, 256},
      {"glow",
       {{"levels", 1},
        {"steps", 2},
        {"hidden", 4},
        {"dequantization", "variational"},
        {"deq_couplings", 1},
        {"deq_hidden", 4}},
       {3, 4, 4},
       256},
  };
}

// A flow whose zero-initialized layers (every coupling's last, the priors',
// the dequantizer's) are drawn at random, and whose ActNorms are initialized
// on a batch: no step is the identity.
std::shared_ptr<FlowModel> flow(const Case& c, uint64_t seed) {
  torch::manual_seed(seed);
  auto m = std::dynamic_pointer_cast<FlowModel>(
      make_model(c.model, resolve_hparams(c.model, c.hp), c.shape, c.levels));
  torch::NoGradGuard g;
  m->nll(torch::randint(0, c.levels, {16, c.shape.channels, c.shape.height, c.shape.width}));
  for (auto& p : m->parameters())
    if (p.abs().max().item<double>() == 0) p.normal_(0, 0.3);
  return m;
}

ImageList as_list(const torch::Tensor& x) {
  auto c = x.to(torch::kUInt8).contiguous();
  return image_list(c.data_ptr<uint8_t>(), c.size(0), {c.size(1), c.size(2), c.size(3)});
}

std::vector<double> to_doubles(const torch::Tensor& t) {
  auto c = t.to(torch::kDouble).contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

}  // namespace

// The program's steps compute what the torch transform computes: z = f(y) and
// log|det|, for every flow; and the dequantizer's program inverts its torch
// map u = g(eps; x), with the opposite log-determinant.
TEST(FlowCoder, ProgramsComputeTheTorchFlows) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.model + " " + c.hp.dump());
    auto m = flow(c, 1);
    const FlowNets nets = m->programs();
    torch::NoGradGuard g;
    const auto x =
        torch::randint(0, c.levels, {3, c.shape.channels, c.shape.height, c.shape.width});
    const auto y = (x.to(torch::kFloat) + torch::rand(x.sizes())) / static_cast<double>(c.levels);
    auto [z, logdet] = m->transform().forward(y);
    for (int64_t b = 0; b < 3; ++b) {
      double ld = 0;
      const std::vector<double> got = flow_map(nets.flow, to_doubles(y[b]), nullptr, &ld);
      const std::vector<double> want = to_doubles(z[b]);
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
      EXPECT_LT(worst, 2e-3);
      EXPECT_NEAR(ld, logdet[b].item<double>(), 2e-3 * std::fabs(ld) + 1e-2);
    }
    if (!nets.dequantizer) continue;
    const FlowProgram& q = *nets.dequantizer;
    auto eps = torch::randn(x.sizes());
    auto deq = std::dynamic_pointer_cast<flows::VariationalDequantizer>(
        m->named_children()["dequantizer"]);
    ASSERT_TRUE(deq);
    auto [u, du] = deq->transform(eps, x);
    for (int64_t b = 0; b < 3; ++b) {
      const auto xb = x[b].to(torch::kInt32).contiguous();
      std::vector<uint16_t> pixels(xb.data_ptr<int32_t>(), xb.data_ptr<int32_t>() + xb.numel());
      const std::vector<float> unit =
          unit_image(pixels.data(), {c.shape.channels, c.shape.height, c.shape.width}, c.levels);
      std::vector<float> context(q.context->output().size());
      q.context->run(unit.data(), context.data());
      double ld = 0;
      const std::vector<double> got = flow_map(q, to_doubles(u[b]), context.data(), &ld);
      const std::vector<double> want = to_doubles(eps[b]);
      double worst = 0;
      for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::fabs(got[i] - want[i]));
      EXPECT_LT(worst, 5e-3);
      EXPECT_NEAR(ld, -du[b].item<double>(), 2e-3 * std::fabs(ld) + 2e-2);
    }
  }
}

// Files decode to their images byte for byte, and the bytes do not depend on
// the threads or the block split.
TEST(FlowCoder, RoundTripsWhateverTheThreads) {
  for (const Case& c : cases()) {
    SCOPED_TRACE(c.model + " " + c.hp.dump());
    auto m = flow(c, 2);
    auto coder = m->coder();
    ASSERT_TRUE(coder);
    const ImageList list =
        as_list(torch::randint(0, c.levels, {9, c.shape.channels, c.shape.height, c.shape.width}));
    EncodeStats stats;
    const std::string one = encode_images(*coder, c.model, list, 4, 1, &stats);
    EXPECT_EQ(encode_images(*coder, c.model, list, 4, 3), one);
    EXPECT_EQ(decode_images(*coder, one, 2).images.values, list.values);
    EXPECT_EQ(decode_images(*m->coder(), one, 1).images.values, list.values);
    EXPECT_GT(stats.chain_bits, 0);
  }
}

// Slopes of e^-9 and e^9: windows of a million cells, values far outside the
// prior's window (coded by the escape), cells narrower than the noise.
TEST(FlowCoder, ExtremeSlopesStillRoundTrip) {
  auto scale = std::make_shared<flows::DiagonalScale>(1, 4, 4);
  {
    torch::NoGradGuard g;
    scale->log_scale.copy_(torch::linspace(-9, 9, 16).view({1, 4, 4}));
  }
  FlowModel m({1, 4, 4}, 256,
              std::make_shared<flows::Composite>(
                  std::vector<flows::TransformPtr>{std::make_shared<flows::Logit>(0.05), scale}));
  auto coder = m.coder();
  const ImageList list = as_list(torch::randint(0, 256, {5, 1, 4, 4}));
  const std::string file = encode_images(*coder, "flow", list, 0, 1);
  EXPECT_EQ(decode_images(*coder, file, 1).images.values, list.values);
}

// On a trained flow, a file costs the one-draw bound plus the chain's start:
// the payload's ideal bits are within four standard errors of the bound's
// mean over draws (plus 0.5 %: the noise of the local steps), the coder's
// account of the density along its path agrees with its ideal bits to 0.5 %,
// and the payload is the ideal bits, the start and the rANS head.
TEST(FlowCoder, FileCostsTheBoundPlusTheChainStart) {
  const auto train = tame::testing::synthetic_images(512, 8, 8, 5);
  for (const Case& c : {cases()[0], cases()[2], cases()[3]}) {
    SCOPED_TRACE(c.model + " " + c.hp.dump());
    torch::manual_seed(3);
    auto m = std::dynamic_pointer_cast<FlowModel>(
        make_model(c.model, resolve_hparams(c.model, c.hp), c.shape, c.levels));
    const auto data = c.levels == 2 ? (train > 127).to(torch::kUInt8) : train;
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
    for (int64_t step = 0; step < 150; ++step) {
      auto batch = data.index_select(0, torch::randint(0, data.size(0), {32}));
      opt.zero_grad();
      m->loss(batch).backward();
      opt.step();
    }
    m->eval();
    auto x = tame::testing::synthetic_images(200, 8, 8, 11);
    if (c.levels == 2) x = (x > 127).to(torch::kUInt8);
    double bound_bits = 0, variance = 0;
    {
      torch::NoGradGuard g;
      std::vector<torch::Tensor> draws;
      for (int r = 0; r < 40; ++r) draws.push_back(m->nll(x) / std::log(2.0));
      auto d = torch::stack(draws);
      bound_bits = d.mean(0).sum().item<double>();
      variance = d.var(0).sum().item<double>();
    }
    EncodeStats stats;
    const std::string file = encode_images(*m->coder(), c.model, as_list(x), 200, 1, &stats);
    const double payload = 8.0 * parse_header(file).block_bytes[0];
    std::printf(
        "%s: bound %.1f bits (one-draw sd %.1f), ideal %.1f, model %.1f, payload %.0f (chain "
        "start %.0f)\n",
        c.model.c_str(), bound_bits, std::sqrt(variance), stats.ideal_bits, stats.model_bits,
        payload, stats.chain_bits);
    EXPECT_NEAR(stats.ideal_bits, bound_bits, 4 * std::sqrt(variance) + 0.005 * bound_bits);
    EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 0.005 * stats.model_bits);
    EXPECT_NEAR(payload, stats.ideal_bits + stats.chain_bits + 64, 64);
    EXPECT_EQ(decode_images(*m->coder(), file, 2).images.values, as_list(x).values);
  }
}

// A message from another model's weights, or cut short, does not decode, and
// the container refuses another model's file and another image size.
TEST(FlowCoder, ForeignOrDamagedMessagesAreRefused) {
  const Case c = cases()[3];
  auto a = flow(c, 1)->coder(), b = flow(c, 2)->coder();
  const ImageList list = as_list(torch::randint(0, 256, {6, 1, 8, 8}));
  ImageBlock block{{1, 8, 8}, 6, list.values};
  RansMessage m;
  a->push_images(m, block, nullptr, nullptr);
  RansMessage other = m;
  EXPECT_THROW(
      {
        auto back = b->pop_images(other, 6, {1, 8, 8}, nullptr);
        if (!rans_empty(other) || back.values != list.values) throw Error("differs");
      },
      Error);
  RansMessage cut = m;
  cut.tail.resize(cut.tail.size() / 2);
  EXPECT_THROW(a->pop_images(cut, 6, {1, 8, 8}, nullptr), Error);
  RansMessage good = m;
  EXPECT_EQ(a->pop_images(good, 6, {1, 8, 8}, nullptr).values, list.values);
  EXPECT_TRUE(rans_empty(good));

  const std::string file = encode_images(*a, "glow", list, 0, 1);
  EXPECT_NE(
      tame::testing::error_of([&] { decode_images(*b, file, 1); }).find("written by another model"),
      std::string::npos);
  const ImageList small = as_list(torch::zeros({1, 1, 4, 8}, torch::kUInt8));
  EXPECT_NE(tame::testing::error_of([&] {
              encode_images(*a, "glow", small, 0, 1);
            }).find("codes 1x8x8 images only"),
            std::string::npos);
}
