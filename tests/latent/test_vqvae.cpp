// VQ-VAE and VQGAN: the straight-through gradient, the codebook's two update rules,
// restarts, its codes as a dataset, resume, and the pair of a codes model and
// a prior over its codes as one model.
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "../train/train_util.h"
#include "tame/codec/codes_coder.h"
#include "tame/codec/model_codec.h"
#include "tame/eval/fid.h"
#include "tame/models/latent/code_prior.h"
#include "tame/models/latent/vqgan.h"
#include "tame/models/latent/vqvae.h"
#include "tame/registry.h"

using namespace tame;
using namespace tame::testing;

namespace {

std::shared_ptr<VqVae> small_vqvae(nlohmann::json hp = nlohmann::json::object()) {
  nlohmann::json base = {{"codes", 8}, {"code_dim", 3}, {"hidden", 4}, {"res_blocks", 1}};
  base.update(hp);
  auto m = make_model("vqvae", resolve_hparams("vqvae", base), {1, 8, 8}, 256);
  return std::dynamic_pointer_cast<VqVae>(m);
}

// An 8x8 run of model `model` over tmp/data (written here, 8x8).
RunConfig run8(const TempDir& tmp, const std::string& model, const nlohmann::json& hp) {
  write_idx_dataset(tmp / "data", 32, 8, 8, 8);
  auto cfg = run_config(tmp / "data", model, hp, 3);
  cfg.shape = {1, 8, 8};
  return cfg;
}

}  // namespace

// The decoder's gradient reaches the encoder's output unchanged: d/dz_e of any
// function of z_q equals its gradient at z_q, and z_q holds the entries.
TEST(VqVae, StraightThroughPassesTheDecodersGradientUnchanged) {
  torch::manual_seed(0);
  auto m = small_vqvae();
  auto z_e = torch::randn({10, 3}, torch::requires_grad());
  auto q = m->quantize(z_e);
  EXPECT_TRUE(torch::allclose(q.z_q.detach(), m->codebook().detach().index_select(0, q.index)));
  auto g = torch::randn({10, 3});
  (q.z_q * g).sum().backward();
  EXPECT_TRUE(torch::equal(z_e.grad(), g));
  // The entries are the nearest ones.
  auto d = torch::cdist(z_e.detach(), m->codebook().detach());
  EXPECT_TRUE(torch::equal(q.index, d.argmin(1)));
}

// The codebook term moves the chosen entries towards their encodings (and no
// other entry), and it alone reaches the codebook; the commitment term moves
// the encodings, not the codebook.
TEST(VqVae, CodebookLossMovesEntriesTowardsTheirEncodings) {
  torch::manual_seed(1);
  auto m = small_vqvae({{"ema", false}});
  auto z_e = torch::randn({16, 3}) * 0.5;
  auto before = m->codebook().detach().clone();
  auto q = m->quantize(z_e);
  auto dist_before = q.codebook.sum().item<double>();
  q.codebook.sum().backward();
  torch::optim::SGD sgd({m->codebook()}, torch::optim::SGDOptions(0.05));
  sgd.step();
  auto after = m->codebook().detach();
  auto chosen = torch::zeros({8}, torch::kBool).index_fill_(0, q.index, true);
  for (int64_t k = 0; k < 8; ++k) {
    if (!chosen[k].item<bool>()) {
      EXPECT_TRUE(torch::equal(after[k], before[k])) << k;
    }
  }
  auto moved = (z_e - after.index_select(0, q.index)).pow(2).sum().item<double>();
  EXPECT_LT(moved, dist_before);
  m->codebook().mutable_grad() = torch::Tensor();
  auto z = z_e.clone().requires_grad_();
  m->quantize(z).commitment.sum().backward();
  EXPECT_FALSE(m->codebook().grad().defined());
  EXPECT_GT(z.grad().abs().sum().item<double>(), 0.0);
}

// One moving-average step on a hand-made batch: two entries, three encodings.
TEST(VqVae, MovingAverageUpdateMatchesItsFormula) {
  auto m = small_vqvae({{"codes", 2}, {"code_dim", 1}, {"gamma", 0.9}});
  auto z = torch::tensor({1.0f, 3.0f, -2.0f}).view({3, 1});
  auto index = torch::tensor({0, 0, 1}, torch::kLong);
  auto e0 = m->codebook().detach().clone();  // ema_sum starts at the entries, counts at 1
  m->ema_update(z, index);
  const double g = 0.9, eps = 1e-5;
  const double n0 = g * 1 + (1 - g) * 2, n1 = g * 1 + (1 - g) * 1, n = n0 + n1;
  const double m0 = g * e0[0][0].item<double>() + (1 - g) * 4.0;
  const double m1 = g * e0[1][0].item<double>() + (1 - g) * -2.0;
  const double s0 = (n0 + eps) / (n + 2 * eps) * n, s1 = (n1 + eps) / (n + 2 * eps) * n;
  EXPECT_NEAR(m->codebook()[0][0].item<double>(), m0 / s0, 1e-6);
  EXPECT_NEAR(m->codebook()[1][0].item<double>(), m1 / s1, 1e-6);
}

// Entries no encoding chose are restarted at encodings of the batch, and the
// next batch uses them.
TEST(VqVae, RestartedEntriesAreUsedOnTheNextBatch) {
  torch::manual_seed(2);
  auto m = small_vqvae({{"codes", 64}, {"restart", 1}});
  m->train();
  auto x = synthetic_images(8, 8, 8, 5);
  // Before any step: the +-1/K start; most entries are far from every encoding.
  auto z_e = m->encode_rows(x).detach();
  auto unused_before = 64 - std::get<0>(torch::_unique(m->quantize(z_e).index)).size(0);
  EXPECT_GT(unused_before, 32);
  m->loss(x);  // step 1: the data-dependent start sets every entry
  m->loss(x);  // step 2: entries unused by step 2's batch are restarted
  auto restarted = m->step_metrics()["restarted"].get<int64_t>();
  EXPECT_GT(restarted, 0);
  const auto used =
      std::get<0>(torch::_unique(m->quantize(m->encode_rows(x).detach()).index)).size(0);
  EXPECT_GT(used, 64 - unused_before);
  // Without restarts, none.
  auto plain = small_vqvae({{"codes", 64}, {"restart", 0}});
  plain->train();
  plain->loss(x);
  EXPECT_EQ(plain->step_metrics()["restarted"].get<int64_t>(), 0);
}

// The bound with the uniform prior: recon + L log K, deterministic, so the
// k-sample bound is the same number; decoding a code map gives the model's
// reconstructions.
TEST(VqVae, UniformPriorBoundAndCodesDecodeToReconstructions) {
  torch::manual_seed(3);
  auto m = small_vqvae();
  m->eval();
  auto x = synthetic_images(4, 8, 8, 6);
  torch::NoGradGuard g;
  auto nll = m->nll(x);
  auto codes = m->encode_codes(x);
  EXPECT_EQ(codes.sizes(), (std::vector<int64_t>{4, 1, 2, 2}));
  EXPECT_TRUE(torch::allclose(nll, m->codes_nll(x, codes) + 4 * std::log(8.0)));
  EXPECT_TRUE(torch::allclose(m->nll_iw(x, 3), nll));
  EXPECT_TRUE(torch::equal(m->decode_mean(m->codes_latent(codes)), m->reconstruct(x)));
  auto d = m->diagnostics(x);
  EXPECT_GT(d["codebook_usage"].get<double>(), 0.0);
  EXPECT_LE(d["codebook_usage"].get<double>(), 1.0);
  EXPECT_GE(d["perplexity"].get<double>(), 1.0);
  EXPECT_TRUE(d.contains("psnr_db"));
}

// Alone, the model is a codec at that bound: the codes cost L log2 K bits
// each, the image -log2 p(x | z); files round-trip whatever the threads.
TEST(VqVae, AloneItCodesAtItsUniformPriorBound) {
  torch::manual_seed(4);
  auto m = small_vqvae();
  m->eval();
  auto x = synthetic_images(6, 8, 8, 7);
  auto coder = m->coder();
  ASSERT_TRUE(coder);
  auto xc = x.contiguous();
  const ImageList list = image_list(xc.data_ptr<uint8_t>(), 6, ImageSize{1, 8, 8});
  EncodeStats stats;
  const std::string file = encode_images(*coder, "vqvae", list, 4, 1, &stats);
  EXPECT_EQ(encode_images(*coder, "vqvae", list, 4, 2), file);
  EXPECT_EQ(decode_images(*m->coder(), file, 2).images.values, list.values);
  torch::NoGradGuard g;
  const double bound_bits = m->nll(x).sum().item<double>() / std::log(2.0);
  EXPECT_NEAR(stats.model_bits, bound_bits, 1e-3 * bound_bits);
  EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * bound_bits);
}

// codes:RUN of a trained vqvae: the split's code maps decode to the model's
// own reconstructions; the run resumes exactly (moving averages, usage and
// step counter are in the checkpoint).
TEST(VqVae, CodesRoundTripAndResumeIsExact) {
  TempDir tmp;
  auto cfg =
      run8(tmp, "vqvae",
           {{"codes", 8}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}, {"restart", 3}});
  auto [straight, resumed] = straight_and_resumed(tmp, "", cfg, 5);
  expect_equal_models(cfg, straight, resumed);

  Dataset codes = load_run_data("codes:" + straight, "test");
  EXPECT_EQ(codes.levels, 8);
  EXPECT_EQ(codes.shape(), (ImageShape{1, 2, 2}));
  RunConfig loaded;
  auto model = load_trained_model(straight, &loaded);
  auto* vq = dynamic_cast<VqVae*>(model.get());
  ASSERT_NE(vq, nullptr);
  Dataset source = load_run_data(cfg.data, "test");
  EXPECT_TRUE(torch::equal(vq->decode_mean(vq->codes_latent(codes.images)),
                           vq->reconstruct(source.images)));
}

// codes:RUN encodes a split once: the maps are cached beside the checkpoint
// and read back equal; a cache that is corrupt or was written for another
// checkpoint is encoded afresh (and rewritten), never trusted.
TEST(VqVae, CodesAreCachedUntilTheCheckpointChanges) {
  TempDir tmp;
  auto cfg = run8(tmp, "vqvae", {{"codes", 8}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}});
  cfg.epochs = 1;
  const std::string vq = new_run(tmp, "vq", cfg);
  ASSERT_EQ(train(quiet(vq), false), TrainStatus::kDone);
  const std::string cache = vq + "/codes-test.cache";
  EXPECT_FALSE(file_exists(cache));
  const auto fresh = load_run_data("codes:" + vq, "test").images;
  ASSERT_TRUE(file_exists(cache));
  EXPECT_TRUE(torch::equal(load_run_data("codes:" + vq, "test").images, fresh));
  // What the cached maps are is what encoding gives.
  auto model = load_trained_model(vq, nullptr);
  EXPECT_TRUE(torch::equal(model->encode_codes(load_run_data(cfg.data, "test").images), fresh));

  // A flipped byte in the maps: re-encoded, the same codes, the file rewritten whole.
  std::string bytes = read_file(cache);
  bytes[bytes.size() - 10] ^= 1;
  write_file_atomic(cache, bytes);
  EXPECT_TRUE(torch::equal(load_run_data("codes:" + vq, "test").images, fresh));
  EXPECT_NE(read_file(cache), bytes);

  // Another checkpoint (one more epoch): the old maps are not used.
  const std::string before = read_file(cache);
  auto more = read_run_config(vq);
  more.epochs = 2;
  write_run_config(vq, more);
  ASSERT_EQ(train(quiet(vq), true), TrainStatus::kDone);
  auto retrained = load_trained_model(vq, nullptr);
  const auto now = load_run_data("codes:" + vq, "test").images;
  EXPECT_TRUE(torch::equal(now, retrained->encode_codes(load_run_data(cfg.data, "test").images)));
  EXPECT_NE(read_file(cache), before);
}

// The pair: nll = -log p(x | z) - log p_prior(z), sampling decodes the prior's
// code maps, and a prior of other maps is refused.
TEST(VqVae, CodePriorPairIsOneModel) {
  TempDir tmp;
  auto cfg = run8(tmp, "vqvae", {{"codes", 8}, {"code_dim", 2}, {"hidden", 4}, {"res_blocks", 1}});
  cfg.epochs = 1;
  std::string vq_dir = new_run(tmp, "vq", cfg);
  ASSERT_EQ(train(quiet(vq_dir), false), TrainStatus::kDone);
  auto prior_cfg =
      run_config(tmp / "data", "pixelcnn", {{"hidden", 4}, {"blocks", 1}, {"out_hidden", 8}}, 4);
  prior_cfg.data = "codes:" + vq_dir;
  prior_cfg.shape = {1, 2, 2};
  prior_cfg.levels = 8;
  prior_cfg.epochs = 1;
  std::string prior_dir = new_run(tmp, "prior", prior_cfg);
  ASSERT_EQ(train(quiet(prior_dir), false), TrainStatus::kDone);

  RunConfig pair_cfg;
  auto pair = load_code_pair(vq_dir, {prior_dir}, &pair_cfg);
  EXPECT_EQ(pair_cfg.model, "vqvae+pixelcnn");
  EXPECT_EQ(pair->bound(), Bound::kUpper);
  auto vq = load_trained_model(vq_dir, nullptr);
  auto prior = load_trained_model(prior_dir, nullptr);
  auto x = load_run_data(cfg.data, "test").images;
  torch::NoGradGuard g;
  auto z = vq->encode_codes(x);
  EXPECT_TRUE(torch::allclose(pair->nll(x), vq->codes_nll(x, z) + prior->nll(z)));
  auto s = pair->sample(3);
  EXPECT_EQ(s.sizes(), (std::vector<int64_t>{3, 1, 8, 8}));
  auto d = pair->diagnostics(x);
  EXPECT_NEAR(d["recon_nats"].get<double>() + d["prior_nats"].get<double>(),
              pair->nll(x).mean().item<double>(), 1e-3);

  // The pair is a codec: files of its bound, the same at any thread count.
  auto coder = pair->coder();
  ASSERT_NE(coder, nullptr);
  auto xc = x.contiguous();
  ImageList list = image_list(xc.data_ptr<uint8_t>(), x.size(0), ImageSize{1, 8, 8});
  EncodeStats stats;
  const std::string file = encode_images(*coder, "vqvae+pixelcnn", list, 3, 1, &stats);
  EXPECT_EQ(encode_images(*coder, "vqvae+pixelcnn", list, 3, 3), file);
  EXPECT_EQ(decode_images(*coder, file, 2).images.values, list.values);
  const double bound_bits = pair->nll(x).sum().item<double>() / std::log(2.0);
  EXPECT_NEAR(stats.model_bits, bound_bits, 1e-3 * bound_bits);
  EXPECT_NEAR(stats.ideal_bits, stats.model_bits, 1e-3 * bound_bits);
  EXPECT_EQ(stats.chain_bits, 0.0);
  // The coder's codes are the model's (no near ties in this small model).
  auto* cc = dynamic_cast<CodesCoder*>(coder.get());
  ASSERT_NE(cc, nullptr);
  auto z0 = z[0].flatten().to(torch::kInt32);
  const auto mine = cc->codes_of(list.values.data());
  EXPECT_EQ(std::vector<int32_t>(mine.begin(), mine.end()),
            std::vector<int32_t>(z0.data_ptr<int32_t>(), z0.data_ptr<int32_t>() + z0.numel()));

  // A prior over other codes (or over images) is refused, with one line.
  auto msg = error_of([&] { load_code_pair(prior_dir, {vq_dir}, nullptr); });
  EXPECT_NE(msg.find("is not a prior over the codes of"), std::string::npos) << msg;
  msg = error_of([&] { CodePriorModel(vq, vq); });
  EXPECT_NE(msg.find("the prior models 256-level 1x8x8 maps, but the codes are 8-level 1x2x2"),
            std::string::npos)
      << msg;
}

// VQGAN: one step changes the autoencoder and the discriminator; the
// adaptive weight balances the two gradients at the decoder's last layer; the
// perceptual distance comes from a classifier file and is zero between equal
// images; a run with both optimizers resumes exactly.
TEST(VqGan, StepTrainsBothNetworksUnderTheAdaptiveWeight) {
  TempDir tmp;
  write_idx_dataset(tmp / "data", 64, 16, 8, 8);
  Dataset train = load_dataset("idx:" + (tmp / "data"), "train");
  ClassifierOptions co;
  co.epochs = 1;
  co.batch_size = 16;
  auto cls = train_classifier(train, load_dataset("idx:" + (tmp / "data"), "test"), co);
  save_classifier(tmp / "c.fidc", cls);

  torch::manual_seed(5);
  nlohmann::json hp = {{"codes", 8},
                       {"code_dim", 2},
                       {"hidden", 4},
                       {"res_blocks", 1},
                       {"disc_hidden", 4},
                       {"disc_start", 0},
                       {"perceptual", tmp / "c.fidc"}};
  auto m = std::dynamic_pointer_cast<VqGan>(
      make_model("vqgan", resolve_hparams("vqgan", hp), {1, 8, 8}, 256));
  ASSERT_NE(m, nullptr);
  m->train();
  auto opts = m->make_optimizers(1e-2);
  ASSERT_EQ(opts.size(), 2u);
  EXPECT_EQ(opts[0].name, "autoencoder");
  EXPECT_EQ(opts[1].name, "discriminator");
  auto before = [&] {
    std::map<std::string, torch::Tensor> out;
    for (const auto& p : m->named_parameters()) out[p.key()] = p.value().detach().clone();
    return out;
  }();
  auto x = train.images.slice(0, 0, 16);
  StepContext ctx;
  auto r = m->train_step(x, opts, ctx);
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_GT(r.metrics["perceptual"].get<double>(), 0.0);
  EXPECT_GT(r.metrics["lambda"].get<double>(), 0.0);
  bool encoder = false, discriminator = false;
  for (const auto& p : m->named_parameters()) {
    const bool changed = !torch::equal(p.value(), before[p.key()]);
    if (p.key().rfind("encoder", 0) == 0) encoder |= changed;
    if (p.key().rfind("discriminator", 0) == 0) discriminator |= changed;
  }
  EXPECT_TRUE(encoder);
  EXPECT_TRUE(discriminator);

  // lambda = disc_weight ||grad L_rec|| / (||grad L_G|| + delta): 1 / lambda is
  // affine in a factor c on L_G, so its steps from c = 1 to 2 and to 4 are 1 : 3.
  auto t = m->terms(x);
  auto fake = m->pixel_mean(t.params) / 255.0;
  auto rec = t.objective.mean() / 64.0;
  auto gan = -m->discriminate(2 * fake - 1).mean();
  const double w1 = m->adaptive_weight(rec, gan), w2 = m->adaptive_weight(rec, 2 * gan),
               w4 = m->adaptive_weight(rec, 4 * gan);
  EXPECT_GT(w1, w2);
  EXPECT_GT(w2, w4);
  EXPECT_NEAR(1 / w4 - 1 / w1, 3 * (1 / w2 - 1 / w1), 1e-4 / w1);
  // The perceptual distance: zero for equal images, positive otherwise.
  auto real = x.to(torch::kFloat) / 255.0;
  EXPECT_EQ(m->perceptual_distance(real, real).abs().max().item<double>(), 0.0);
  EXPECT_GT(m->perceptual_distance(real, real.flip(3)).min().item<double>(), 0.0);
  // A missing perceptual file is one clear Error when the optimizers are made.
  hp["perceptual"] = tmp / "missing.fidc";
  auto bad = make_model("vqgan", resolve_hparams("vqgan", hp), {1, 8, 8}, 256);
  EXPECT_NE(error_of([&] { bad->make_optimizers(1e-3); }).find("missing.fidc"), std::string::npos);
}

TEST(VqGan, ResumesExactlyWithBothOptimizers) {
  TempDir tmp;
  auto cfg = run8(tmp, "vqgan",
                  {{"codes", 8},
                   {"code_dim", 2},
                   {"hidden", 4},
                   {"res_blocks", 1},
                   {"disc_hidden", 2},
                   {"disc_start", 2}});
  auto [straight, resumed] = straight_and_resumed(tmp, "", cfg, 5);
  expect_equal_models(cfg, straight, resumed);
  std::string ckpt = read_file(checkpoint_path(resumed));
  EXPECT_NE(ckpt.find("\"optimizers\":[\"autoencoder\",\"discriminator\"]"), std::string::npos);
}
