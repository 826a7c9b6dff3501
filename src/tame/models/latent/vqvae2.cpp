#include "tame/models/latent/vqvae2.h"

#include <cmath>

#include "tame/dist/likelihood.h"
#include "tame/error.h"
#include "tame/nn/vq_blocks.h"

namespace tame {

namespace nn = torch::nn;

namespace {

nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride = 1) {
  const int64_t pad = k == 4 ? 1 : k / 2;
  return nn::Conv2d(nn::Conv2dOptions(in, out, k).stride(stride).padding(pad));
}

void add_res_blocks(nn::Sequential& s, int64_t channels, int64_t blocks) {
  for (int64_t i = 0; i < blocks; ++i) s->push_back(ResBlock(channels));
}

/// Each code repeated over a 2 x 2 block: [n, c, h, w] -> [n, c, 2h, 2w].
torch::Tensor repeat2(const torch::Tensor& t) {
  return t.repeat_interleave(2, 2).repeat_interleave(2, 3);
}

}  // namespace

VqVae2::VqVae2(const VqVae2Options& o, ImageShape shape, int64_t levels)
    : VqLatentModel(shape, levels, pixel_likelihood(o.likelihood, levels),
                    (shape.height / 4) * (shape.width / 4) + (shape.height / 2) * (shape.width / 2),
                    o.codes),
      options(o) {
  check_vq_options(o, "vqvae2", shape);
  const int64_t C = shape.channels, h = o.hidden, D = o.code_dim, R = o.res_blocks;
  enc_b_ = nn::Sequential(conv(C, h, 4, 2), nn::ReLU(), conv(h, h, 3));
  add_res_blocks(enc_b_, h, R);
  enc_b_->push_back(nn::ReLU());
  register_module("enc_b", enc_b_);
  enc_t_ = nn::Sequential(conv(h, h, 4, 2), nn::ReLU(), conv(h, h, 3));
  add_res_blocks(enc_t_, h, R);
  enc_t_->push_back(nn::ReLU());
  enc_t_->push_back(conv(h, D, 1));
  register_module("enc_t", enc_t_);
  dec_t_ = nn::Sequential(conv(D, h, 3));
  add_res_blocks(dec_t_, h, R);
  dec_t_->push_back(nn::ReLU());
  dec_t_->push_back(Upsample2());
  dec_t_->push_back(conv(h, h, 3));
  register_module("dec_t", dec_t_);
  pre_b_ = register_module("pre_b", nn::Sequential(nn::ReLU(), conv(2 * h, D, 1)));
  up_t_ = register_module("up_t", nn::Sequential(Upsample2(), conv(D, D, 3)));
  dec_ = nn::Sequential(conv(2 * D, h, 3));
  add_res_blocks(dec_, h, R);
  dec_->push_back(nn::ReLU());
  dec_->push_back(Upsample2());
  dec_->push_back(conv(h, h, 3));
  dec_->push_back(nn::ReLU());
  dec_->push_back(conv(h, likelihood_.features(C), 1));
  register_module("dec", dec_);
  top_.emplace(*this, "top_", o.codes, D, o.gamma);
  bottom_.emplace(*this, "bottom_", o.codes, D, o.gamma);
  step_ = register_buffer("step", torch::zeros({}, torch::kDouble));
}

torch::Tensor VqVae2::rows(const torch::Tensor& m) const {
  return m.permute({0, 2, 3, 1}).reshape({-1, m.size(1)});
}

torch::Tensor VqVae2::map(const torch::Tensor& r, int64_t b, int64_t h, int64_t w) const {
  return r.view({b, h, w, r.size(1)}).permute({0, 3, 1, 2});
}

torch::Tensor VqVae2::decode(const torch::Tensor& top, const torch::Tensor& bottom) {
  return dec_->forward(torch::cat({up_t_->forward(top), bottom}, 1));
}

VqVae2::Terms VqVae2::terms(const torch::Tensor& x, bool update, bool decode) {
  const int64_t B = x.size(0), H = shape_.height, W = shape_.width;
  const bool start = update && options.restart > 0 && step_.item<double>() == 0;
  Terms t;
  auto hb = enc_b_->forward(scale_to_unit(x, levels_));
  auto zt_e = rows(enc_t_->forward(hb));
  if (start) {  // every entry from encodings: the data-dependent start
    top_->clear_usage();
    t.restarted += top_->restart_unused(zt_e);
  }
  auto qt = top_->quantize(zt_e);
  auto top = map(qt.z_q, B, H / 4, W / 4);
  auto zb_e = rows(pre_b_->forward(torch::cat({hb, dec_t_->forward(top)}, 1)));
  if (start) {
    bottom_->clear_usage();
    t.restarted += bottom_->restart_unused(zb_e);
  }
  auto qb = bottom_->quantize(zb_e);
  t.top_index = qt.index.view({B, -1});
  t.bottom_index = qb.index.view({B, -1});
  if (!decode) return t;
  t.params = this->decode(top, map(qb.z_q, B, H / 2, W / 2));
  t.recon = -pixels(t.params)->log_prob(x);
  t.codebook = qt.codebook.view({B, -1}).sum(1) + qb.codebook.view({B, -1}).sum(1);
  t.commitment = qt.commitment.view({B, -1}).sum(1) + qb.commitment.view({B, -1}).sum(1);
  t.objective = t.recon + options.beta * t.commitment;
  if (!options.ema) t.objective = t.objective + t.codebook;
  if (update) {
    torch::NoGradGuard g;
    if (options.ema) {
      top_->ema_update(zt_e, qt.index);
      bottom_->ema_update(zb_e, qb.index);
    }
    top_->count(qt.index);
    bottom_->count(qb.index);
    step_.add_(1.0);
    const auto step = static_cast<int64_t>(step_.item<double>());
    if (options.restart > 0 && step % options.restart == 0)
      t.restarted += top_->restart_unused(zt_e) + bottom_->restart_unused(zb_e);
  }
  last_terms_ = {{"recon", t.recon.mean().item<double>()},
                 {"codebook", t.codebook.mean().item<double>()},
                 {"commitment", t.commitment.mean().item<double>()},
                 {"restarted", t.restarted}};
  return t;
}

torch::Tensor VqVae2::loss(const torch::Tensor& x) {
  return terms(x, is_training()).objective.mean();
}

torch::Tensor VqVae2::pixel_params(const torch::Tensor& z, const torch::Tensor&) {
  const int64_t m = z.size(0), Lt = top_positions(), H = shape_.height, W = shape_.width;
  auto top = top_->mix(z.slice(1, 0, Lt).reshape({-1, options.codes}));
  auto bottom = bottom_->mix(z.slice(1, Lt).reshape({-1, options.codes}));
  return decode(map(top, m, H / 4, W / 4), map(bottom, m, H / 2, W / 2));
}

Posterior VqVae2::encode(const torch::Tensor& x) {
  auto t = terms(x, false, false);
  return {torch::cat({t.top_index, t.bottom_index}, 1), torch::zeros({x.size(0)}, x.device())};
}

torch::Tensor VqVae2::encode_codes(const torch::Tensor& x) {
  c10::InferenceMode guard;
  auto t = terms(x, false, false);
  const int64_t B = x.size(0), H = shape_.height, W = shape_.width;
  auto top = repeat2(t.top_index.view({B, 1, H / 4, W / 4}));
  auto bottom = t.bottom_index.view({B, 1, H / 2, W / 2});
  return torch::cat({top, bottom}, 1).to(image_dtype(options.codes));
}

torch::Tensor VqVae2::codes_latent(const torch::Tensor& codes) {
  const int64_t H = shape_.height, W = shape_.width;
  TORCH_CHECK(
      codes.dim() == 4 && codes.size(1) == 2 && codes.size(2) == H / 2 && codes.size(3) == W / 2,
      "vqvae2: code maps must be [n, 2, ", H / 2, ", ", W / 2, "]");
  auto c = codes.to(device(), torch::kLong);
  TORCH_CHECK(c.min().item<int64_t>() >= 0 && c.max().item<int64_t>() < options.codes,
              "vqvae2: codes must be below ", options.codes);
  const int64_t n = codes.size(0);
  auto top = stage_codes(c, 0).reshape({n, -1});  // each 2 x 2 block's first code
  auto bottom = c.slice(1, 1, 2).reshape({n, -1});
  return torch::one_hot(torch::cat({top, bottom}, 1), options.codes).to(torch::kFloat);
}

torch::Tensor VqVae2::stage_codes(const torch::Tensor& codes, int64_t stage) const {
  TORCH_CHECK(stage == 0 || stage == 1, "vqvae2 has two stages of codes, got ", stage);
  if (stage == 1) return codes;
  return codes.slice(1, 0, 1).slice(2, 0, codes.size(2), 2).slice(3, 0, codes.size(3), 2);
}

torch::Tensor VqVae2::stage_given(const torch::Tensor& top, int64_t stage) const {
  TORCH_CHECK(stage == 1, "vqvae2: only the bottom stage is given the top codes, got ", stage);
  return repeat2(top);
}

nlohmann::json VqVae2::diagnostics(const torch::Tensor& images) {
  c10::InferenceMode guard;
  double recon = 0, squared = 0;
  auto top_counts = torch::zeros({options.codes}, torch::kDouble);
  auto bottom_counts = top_counts.clone();
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += 256) {
    auto x = images.slice(0, b, std::min(n, b + 256)).to(device());
    auto t = terms(x, false);
    recon += t.recon.sum().item<double>();
    squared += (pixels(t.params)->mean() - x.to(torch::kFloat)).pow(2).sum().item<double>();
    top_counts +=
        torch::bincount(t.top_index.flatten(), {}, options.codes).cpu().to(torch::kDouble);
    bottom_counts +=
        torch::bincount(t.bottom_index.flatten(), {}, options.codes).cpu().to(torch::kDouble);
  }
  const double N = std::max<int64_t>(1, n), peak = static_cast<double>(levels_ - 1);
  const auto [top_usage, top_perplexity] = codebook_usage(top_counts);
  const auto [bottom_usage, bottom_perplexity] = codebook_usage(bottom_counts);
  const double mse = squared / (N * static_cast<double>(shape_.dims()));
  return {{"recon_nats", recon / N},
          {"kl_nats", uniform_prior_nats()},
          {"codebook_usage", (top_usage + bottom_usage) / 2},
          {"top_codebook_usage", top_usage},
          {"top_perplexity", top_perplexity},
          {"bottom_codebook_usage", bottom_usage},
          {"bottom_perplexity", bottom_perplexity},
          {"psnr_db", mse > 0 ? 10 * std::log10(peak * peak / mse) : 99.0}};
}

}  // namespace tame
