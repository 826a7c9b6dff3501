// VQ-VAE-2: two levels of codes and their bound, a conditional gated PixelCNN
// (the bottom prior: its stacks see only earlier codes, its conditioning the
// whole top map; its cached steps equal the network), and the staged pair
// (top prior, then bottom prior given the top codes) as one model.
#include <gtest/gtest.h>

#include <cmath>

#include "../train/train_util.h"
#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/gated_pixelcnn.h"
#include "tame/models/latent/code_prior.h"
#include "tame/models/latent/vqvae2.h"
#include "tame/registry.h"

using namespace tame;
using namespace tame::testing;

namespace {

std::shared_ptr<VqVae2> small_vqvae2(nlohmann::json hp = nlohmann::json::object()) {
  nlohmann::json base = {{"codes", 8}, {"code_dim", 3}, {"hidden", 4}, {"res_blocks", 1}};
  base.update(hp);
  auto m = make_model("vqvae2", resolve_hparams("vqvae2", base), {1, 8, 8}, 256);
  return std::dynamic_pointer_cast<VqVae2>(m);
}

// A conditional gated PixelCNN over 2-channel maps of K levels, the first given.
std::shared_ptr<GatedPixelCNN> conditional_prior(int64_t K, int64_t H, int64_t W) {
  torch::manual_seed(5);
  auto m = std::dynamic_pointer_cast<GatedPixelCNN>(
      make_model("gated-pixelcnn",
                 resolve_hparams("gated-pixelcnn",
                                 {{"hidden", 4}, {"layers", 2}, {"out_hidden", 8}, {"given", 1}}),
                 {2, H, W}, K));
  torch::NoGradGuard g;
  // The stacks far from uniform, so that a wrong link shows; the conditioning
  // as initialized (larger, it would saturate the gates).
  for (auto& p : m->named_parameters())
    if (p.key().rfind("cond", 0) != 0 && p.key().rfind("embed", 0) != 0) p.value().mul_(2.5);
  return m;
}

torch::Tensor random_maps(int64_t n, int64_t C, int64_t H, int64_t W, int64_t K, uint64_t seed) {
  torch::manual_seed(seed);
  return torch::randint(K, {n, C, H, W}, torch::kLong).to(torch::kUInt8);
}

}  // namespace

// The code maps: the top codes repeated over 2 x 2 blocks beside the bottom
// codes; the stages' maps and givens; the uniform-prior bound recon +
// (L_top + L_bottom) log K; decoding the codes gives the reconstructions.
TEST(VqVae2, TwoLevelsOfCodesAndTheirBound) {
  torch::manual_seed(3);
  auto m = small_vqvae2();
  m->eval();
  auto x = synthetic_images(4, 8, 8, 6);
  torch::NoGradGuard g;
  auto codes = m->encode_codes(x);
  ASSERT_EQ(codes.sizes(), (std::vector<int64_t>{4, 2, 4, 4}));
  auto top = m->stage_codes(codes, 0);
  EXPECT_EQ(top.sizes(), (std::vector<int64_t>{4, 1, 2, 2}));
  EXPECT_TRUE(torch::equal(m->stage_given(top, 1), codes.slice(1, 0, 1)));
  EXPECT_TRUE(torch::equal(m->stage_codes(codes, 1), codes));
  EXPECT_EQ(m->code_stages(), (std::vector<std::string>{"top", "bottom"}));
  EXPECT_TRUE(torch::allclose(m->nll(x), m->codes_nll(x, codes) + (4 + 16) * std::log(8.0)));
  EXPECT_TRUE(torch::equal(m->decode_mean(m->codes_latent(codes)), m->reconstruct(x)));
  // The top codes matter to the decoder: other top codes, other parameters.
  auto other = codes.clone();
  other.slice(1, 0, 1).fill_(0);
  other.slice(1, 0, 1).slice(2, 0, 2).slice(3, 0, 2).fill_(7);
  EXPECT_FALSE(torch::allclose(m->decode_mean(m->codes_latent(other)),
                               m->decode_mean(m->codes_latent(codes))));
  auto d = m->diagnostics(x);
  for (const char* k : {"top_codebook_usage", "bottom_codebook_usage", "codebook_usage"}) {
    EXPECT_GT(d[k].get<double>(), 0.0) << k;
    EXPECT_LE(d[k].get<double>(), 1.0) << k;
  }
  EXPECT_GE(d["top_perplexity"].get<double>(), 1.0);
  EXPECT_TRUE(d.contains("psnr_db"));
}

// Training: the reconstruction's gradient reaches both encoders through the
// straight-through estimator; a training loss moves both codebooks by their
// moving averages and counts a step; the first step starts every entry from
// encodings; evaluation changes nothing.
TEST(VqVae2, BothLevelsLearn) {
  torch::manual_seed(4);
  auto m = small_vqvae2({{"restart", 5}});
  auto x = synthetic_images(6, 8, 8, 2);
  m->train();
  const auto top0 = m->top_codebook().entries().detach().clone();
  const auto bottom0 = m->bottom_codebook().entries().detach().clone();
  auto t = m->terms(x, true);
  EXPECT_EQ(t.restarted, 16);  // 8 + 8 entries set from encodings
  t.recon.sum().backward();
  for (const auto& p : m->named_parameters()) {
    if (p.key().rfind("enc_t.", 0) == 0 || p.key().rfind("enc_b.", 0) == 0) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
  EXPECT_FALSE(torch::equal(m->top_codebook().entries(), top0));
  EXPECT_FALSE(torch::equal(m->bottom_codebook().entries(), bottom0));
  EXPECT_EQ(m->named_buffers()["step"].item<double>(), 1.0);
  m->eval();
  const auto top1 = m->top_codebook().entries().detach().clone();
  torch::NoGradGuard g;
  m->nll(x);
  m->encode_codes(x);
  EXPECT_TRUE(torch::equal(m->top_codebook().entries(), top1));
  EXPECT_EQ(m->named_buffers()["step"].item<double>(), 1.0);
}

// The conditional model: a modelled sub-pixel's logits do not depend on
// itself or on later modelled sub-pixels, but do depend on the given channel
// anywhere (the whole top map, later positions included); its NLL and its
// dimensions count the modelled channel only; it does not sample alone and
// is not a codec.
TEST(ConditionalGatedPixelCNN, SeesTheWholeConditionAndOnlyEarlierCodes) {
  const int64_t K = 8, H = 4, W = 5;
  auto m = conditional_prior(K, H, W);
  m->eval();
  torch::NoGradGuard g;
  auto x = random_maps(2, 2, H, W, K, 1);
  auto base = m->logits(x);
  ASSERT_EQ(base.sizes(), (std::vector<int64_t>{2, K, 1, H, W}));
  // A later modelled code (1, 2) changes nothing at or before it.
  auto y = x.clone();
  y[0][1][1][2] = (y[0][1][1][2].item<int64_t>() + 1) % K;
  auto d = (m->logits(y) - base).abs().sum(1)[0][0];  // [H, W]
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      if (i < 1 || (i == 1 && j <= 2)) EXPECT_EQ(d[i][j].item<float>(), 0.0f) << i << "," << j;
  EXPECT_GT(d[H - 1][W - 1].item<float>(), 0.0f);
  // The given channel at the last position reaches the first.
  auto z = x.clone();
  z[0][0][H - 1][W - 1] = (z[0][0][H - 1][W - 1].item<int64_t>() + 3) % K;
  EXPECT_GT((m->logits(z) - base).abs().sum(1)[0][0][0][0].item<float>(), 0.0f);
  // NLL over the modelled channel; bits/dim over its H W dimensions.
  EXPECT_TRUE(torch::allclose(m->nll(x), categorical_nll(base, x.slice(1, 1))));
  EXPECT_EQ(m->modelled_dims(x), H * W);
  EXPECT_NE(error_of([&] { m->sample(2); }).find("is conditional"), std::string::npos);
  EXPECT_EQ(m->coder(), nullptr);
}

// Its cached steps, given the conditioning as the engine's context, equal the
// network at every sub-pixel, at the training size and another; sample_given
// keeps the given channel and, at T = 0, draws each code as the most likely
// one given the codes before it.
TEST(ConditionalGatedPixelCNN, CachedStepsEqualTheNetworkAndSampleGiven) {
  const int64_t K = 8;
  auto m = conditional_prior(K, 4, 5);
  m->eval();
  for (auto [H, W] : {std::pair<int64_t, int64_t>{4, 5}, {3, 7}}) {
    torch::NoGradGuard g;
    auto x = random_maps(3, 2, H, W, K, 2 + H);
    auto context = m->condition_context(x.slice(1, 0, 1)).contiguous();
    auto engine = m->step_engine();
    ASSERT_EQ(engine->context_features(), 4 * 4 * 3);
    ASSERT_EQ(context.sizes(), (std::vector<int64_t>{3, H, W, 48}));
    const int64_t B = 3;
    auto out = torch::zeros({B, K, 1, H, W});
    auto xa = x.accessor<uint8_t, 4>();
    engine->begin(B, H, W, context.data_ptr<float>());
    std::vector<uint16_t> v(B);
    while (!engine->done()) {
      const SubPixel p = engine->next();
      const float* l = engine->conditional();
      for (int64_t b = 0; b < B; ++b) {
        for (int64_t k = 0; k < K; ++k) out[b][k][0][p.i][p.j] = l[b * K + k];
        v[b] = xa[b][1][p.i][p.j];
      }
      engine->observe(v.data());
    }
    EXPECT_TRUE(torch::allclose(out, m->logits(x), 1e-4, 1e-4)) << H << "x" << W;
  }
  torch::manual_seed(9);
  auto given = random_maps(4, 1, 4, 5, K, 3);
  auto s = m->sample_given(given, 0.0);
  ASSERT_EQ(s.sizes(), (std::vector<int64_t>{4, 2, 4, 5}));
  EXPECT_TRUE(torch::equal(s.slice(1, 0, 1), given));
  torch::NoGradGuard g;
  auto best = m->logits(s).argmax(1).to(torch::kUInt8);  // [4, 1, H, W]
  EXPECT_TRUE(torch::equal(best, s.slice(1, 1)));
  auto warm = m->sample_given(given, 1.0);
  EXPECT_TRUE(torch::equal(warm.slice(1, 0, 1), given));
}

// The staged pair from trained runs: a transformer on codes:RUN:top, a gated
// PixelCNN given the top codes on codes:RUN:bottom; the pair's NLL is the sum
// of the three terms, its samples are images, and a missing, extra or
// misordered prior is one line.
TEST(VqVae2, StagedPriorsAreOnePairModel) {
  TempDir tmp;
  write_idx_dataset(tmp / "data", 32, 8, 8, 8);
  auto cfg = run_config(tmp / "data", "vqvae2",
                        {{"codes", 8}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}}, 3);
  cfg.shape = {1, 8, 8};
  cfg.epochs = 1;
  const std::string vq_dir = new_run(tmp, "vq", cfg);
  ASSERT_EQ(train(quiet(vq_dir), false), TrainStatus::kDone);

  auto msg = error_of([&] { load_run_data("codes:" + vq_dir, "test"); });
  EXPECT_NE(msg.find("has 2 stages of codes (top, bottom)"), std::string::npos) << msg;
  msg = error_of([&] { load_run_data("codes:" + vq_dir + ":middle", "test"); });
  EXPECT_NE(msg.find("no code stage 'middle'"), std::string::npos) << msg;
  Dataset top = load_run_data("codes:" + vq_dir + ":top", "test");
  Dataset bottom = load_run_data("codes:" + vq_dir + ":bottom", "test");
  EXPECT_EQ(top.shape(), (ImageShape{1, 2, 2}));
  EXPECT_EQ(top.given, 0);
  EXPECT_EQ(bottom.shape(), (ImageShape{2, 4, 4}));
  EXPECT_EQ(bottom.given, 1);
  EXPECT_EQ(bottom.levels, 8);

  // A one-epoch prior run over one stage's codes (8 levels).
  auto train_prior = [&](const std::string& name, const std::string& model,
                         const nlohmann::json& hp, const Dataset& codes, uint64_t seed) {
    auto c = run_config(tmp / "data", model, hp, seed);
    c.data = codes.name;
    c.shape = codes.shape();
    c.levels = codes.levels;
    c.epochs = 1;
    const std::string dir = new_run(tmp, name, c);
    EXPECT_EQ(train(quiet(dir), false), TrainStatus::kDone);
    return dir;
  };
  const std::string top_dir = train_prior(
      "top", "transformer", {{"width", 4}, {"layers", 1}, {"heads", 2}, {"mlp", 4}}, top, 4);
  const std::string bottom_dir =
      train_prior("bottom", "gated-pixelcnn",
                  {{"hidden", 4}, {"layers", 1}, {"out_hidden", 4}, {"given", 1}}, bottom, 5);

  RunConfig pair_cfg;
  auto pair = load_code_pair(vq_dir, {top_dir, bottom_dir}, &pair_cfg);
  EXPECT_EQ(pair_cfg.model, "vqvae2+transformer+gated-pixelcnn");
  auto vq = load_trained_model(vq_dir, nullptr);
  auto tp = load_trained_model(top_dir, nullptr);
  auto bp = load_trained_model(bottom_dir, nullptr);
  auto x = load_run_data(cfg.data, "test").images;
  {
    torch::NoGradGuard g;
    auto z = vq->encode_codes(x);
    EXPECT_TRUE(torch::allclose(pair->nll(x),
                                vq->codes_nll(x, z) + tp->nll(vq->stage_codes(z, 0)) + bp->nll(z)));
    auto d = pair->diagnostics(x);
    EXPECT_NEAR(d["prior_nats_top"].get<double>() + d["prior_nats_bottom"].get<double>(),
                d["prior_nats"].get<double>(), 1e-6);
    EXPECT_NEAR(d["recon_nats"].get<double>() + d["prior_nats"].get<double>(),
                pair->nll(x).mean().item<double>(), 1e-3);
  }
  auto s = pair->sample(3);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  EXPECT_EQ(pair->coder(), nullptr);
  // The priors' bits/dim count the codes each models: 4 and 16 per image.
  EXPECT_EQ(tp->modelled_dims(top.images), 4);
  EXPECT_EQ(bp->modelled_dims(bottom.images), 16);

  msg = error_of([&] { load_code_pair(vq_dir, {top_dir}, nullptr); });
  EXPECT_NE(msg.find("give one --prior for each, in order; got 1"), std::string::npos) << msg;
  msg = error_of([&] { load_code_pair(vq_dir, {bottom_dir, top_dir}, nullptr); });
  EXPECT_NE(msg.find("must be over stage top"), std::string::npos) << msg;
  msg = error_of([&] { CodePriorModel(vq, std::vector<std::shared_ptr<ImageModel>>{tp, tp}); });
  EXPECT_NE(msg.find("maps, but the codes are 8-level 2x4x4 maps"), std::string::npos) << msg;
}
