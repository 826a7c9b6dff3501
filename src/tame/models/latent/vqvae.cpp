#include "tame/models/latent/vqvae.h"

#include <cmath>

#include "tame/codec/codes_coder.h"
#include "tame/dist/likelihood.h"
#include "tame/error.h"
#include "tame/nn/masked_conv.h"
#include "tame/nn/vq_blocks.h"

namespace tame {

namespace nn = torch::nn;

namespace {

void add_conv(steps::Feedforward& f, const nn::Conv2dImpl& c) {
  const auto& o = c.options;
  f.add_conv(to_step_dense(c), o.kernel_size()->at(0), o.stride()->at(0),
             c10::get<torch::ExpandingArray<2>>(o.padding())->at(0));
}

// The encoder's or decoder's layers as a Feedforward from map `in`.
steps::Feedforward sequential_feedforward(const nn::Sequential& seq, steps::MapShape in) {
  steps::Feedforward f(in);
  for (const auto& m : seq->children()) {
    if (auto c = std::dynamic_pointer_cast<nn::Conv2dImpl>(m)) {
      add_conv(f, *c);
    } else if (std::dynamic_pointer_cast<nn::ReLUImpl>(m)) {
      f.add_relu();
    } else if (std::dynamic_pointer_cast<Upsample2Impl>(m)) {
      f.add_upsample2();
    } else if (auto r = std::dynamic_pointer_cast<ResBlockImpl>(m)) {
      f.add_save();
      f.add_relu();
      add_conv(f, *r->c3_);
      f.add_relu();
      add_conv(f, *r->c1_);
      f.add_residual();
    } else {
      throw Error("vqvae: a layer without a fixed-order form");
    }
  }
  return f;
}

}  // namespace

void check_vq_options(const VqVaeOptions& o, const char* model, ImageShape shape) {
  TORCH_CHECK(shape.height % 4 == 0 && shape.width % 4 == 0, model,
              " needs height and width divisible by 4, got ", shape.height, "x", shape.width);
  TORCH_CHECK(o.codes >= 2 && o.codes <= kMaxLevels, model, ": codes must be in [2, ", kMaxLevels,
              "], got ", o.codes);
  TORCH_CHECK(o.code_dim >= 1 && o.hidden >= 1 && o.res_blocks >= 0, model,
              ": code_dim and hidden >= 1, res_blocks >= 0 required");
  TORCH_CHECK(o.beta >= 0 && o.gamma > 0 && o.gamma < 1 && o.restart >= 0, model,
              ": beta >= 0, 0 < gamma < 1 and restart >= 0 required");
}

VqVae::VqVae(const VqVaeOptions& o, ImageShape shape, int64_t levels)
    : VqLatentModel(shape, levels, pixel_likelihood(o.likelihood, levels),
                    (shape.height / 4) * (shape.width / 4), o.codes),
      options(o) {
  check_vq_options(o, "vqvae", shape);
  const int64_t C = shape.channels, h = o.hidden, D = o.code_dim;
  encoder_ = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(C, h, 4).stride(2).padding(1)), nn::ReLU(),
                            nn::Conv2d(nn::Conv2dOptions(h, h, 4).stride(2).padding(1)), nn::ReLU(),
                            nn::Conv2d(nn::Conv2dOptions(h, h, 3).padding(1)));
  for (int64_t i = 0; i < o.res_blocks; ++i) encoder_->push_back(ResBlock(h));
  encoder_->push_back(nn::ReLU());
  encoder_->push_back(nn::Conv2d(nn::Conv2dOptions(h, D, 1)));
  register_module("encoder", encoder_);
  decoder_ = nn::Sequential(nn::Conv2d(nn::Conv2dOptions(D, h, 3).padding(1)));
  for (int64_t i = 0; i < o.res_blocks; ++i) decoder_->push_back(ResBlock(h));
  for (int i = 0; i < 2; ++i) {
    decoder_->push_back(nn::ReLU());
    decoder_->push_back(Upsample2());
    decoder_->push_back(nn::Conv2d(nn::Conv2dOptions(h, h, 3).padding(1)));
  }
  decoder_->push_back(nn::ReLU());
  decoder_->push_back(nn::Conv2d(nn::Conv2dOptions(h, likelihood_.features(C), 1)));
  register_module("decoder", decoder_);
  // The paper's start, uniform in +-1/K; the first training step replaces it
  // by encodings when restarts are on.
  book_.emplace(*this, "", o.codes, D, o.gamma);
  step_ = register_buffer("step", torch::zeros({}, torch::kDouble));
}

torch::Tensor VqVae::encode_rows(const torch::Tensor& x) {
  auto z = encoder_->forward(scale_to_unit(x, levels_));  // [B, D, h, w]
  return z.permute({0, 2, 3, 1}).reshape({-1, options.code_dim});
}

VqVae::Terms VqVae::terms(const torch::Tensor& x) {
  auto z_e = encode_rows(x);
  const int64_t B = x.size(0), L = positions();
  Terms t;
  if (is_training() && options.restart > 0 && step_.item<double>() == 0) {
    book_->clear_usage();
    t.restarted = restart_unused(z_e);  // every entry: the data-dependent start
  }
  auto q = quantize(z_e);
  t.params = decode_rows(q.z_q, B);
  t.recon = -pixels(t.params)->log_prob(x);
  t.codebook = q.codebook.view({B, L}).sum(1);
  t.commitment = q.commitment.view({B, L}).sum(1);
  t.objective = t.recon + options.beta * t.commitment;
  if (!options.ema) t.objective = t.objective + t.codebook;
  if (is_training()) {
    torch::NoGradGuard g;
    if (options.ema) ema_update(z_e, q.index);
    book_->count(q.index);
    step_.add_(1.0);
    const auto step = static_cast<int64_t>(step_.item<double>());
    if (options.restart > 0 && step % options.restart == 0) t.restarted += restart_unused(z_e);
  }
  last_terms_ = {{"recon", t.recon.mean().item<double>()},
                 {"codebook", t.codebook.mean().item<double>()},
                 {"commitment", t.commitment.mean().item<double>()},
                 {"restarted", t.restarted}};
  return t;
}

torch::Tensor VqVae::loss(const torch::Tensor& x) { return terms(x).objective.mean(); }

torch::nn::Conv2dImpl& VqVae::decoder_head() {
  return *decoder_->ptr<nn::Conv2dImpl>(decoder_->size() - 1);
}

torch::Tensor VqVae::decode_rows(const torch::Tensor& z_q, int64_t m) {
  const int64_t h = shape_.height / 4, w = shape_.width / 4;
  auto map = z_q.view({m, h, w, options.code_dim}).permute({0, 3, 1, 2});
  return decoder_->forward(map);
}

torch::Tensor VqVae::pixel_params(const torch::Tensor& z, const torch::Tensor&) {
  const int64_t m = z.size(0);
  return decode_rows(book_->mix(z.reshape({-1, options.codes})), m);
}

Posterior VqVae::encode(const torch::Tensor& x) {
  auto z_e = encode_rows(x);
  auto q = quantize(z_e);
  const int64_t B = x.size(0), L = positions();
  return {q.index.view({B, L}), z_e.view({B, L, options.code_dim})};
}

torch::Tensor VqVae::encode_codes(const torch::Tensor& x) {
  c10::InferenceMode guard;
  auto index = encode(x).a;
  return index.view({x.size(0), 1, shape_.height / 4, shape_.width / 4})
      .to(image_dtype(options.codes));
}

torch::Tensor VqVae::codes_latent(const torch::Tensor& codes) {
  const int64_t L = positions();
  TORCH_CHECK(codes.dim() == 4 && codes.size(1) == 1 && codes.size(2) * codes.size(3) == L,
              "vqvae: code maps must be [n, 1, ", shape_.height / 4, ", ", shape_.width / 4, "]");
  auto index = codes.to(device(), torch::kLong).reshape({codes.size(0), L});
  TORCH_CHECK(index.min().item<int64_t>() >= 0 && index.max().item<int64_t>() < options.codes,
              "vqvae: codes must be below ", options.codes);
  return torch::one_hot(index, options.codes).to(torch::kFloat);
}

std::unique_ptr<ImageCoder> VqVae::codes_coder(std::unique_ptr<ImageCoder> prior) {
  torch::NoGradGuard g;
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width;
  CodeNets nets;
  nets.encoder = sequential_feedforward(encoder_, {H, W, C});
  nets.decoder = sequential_feedforward(decoder_, {H / 4, W / 4, options.code_dim});
  auto e = book_->entries().detach().to(torch::kCPU, torch::kFloat).contiguous();
  nets.codebook.assign(e.data_ptr<float>(), e.data_ptr<float>() + e.numel());
  nets.codes = options.codes;
  nets.dim = options.code_dim;
  nets.pixels = likelihood_.kind;
  return std::make_unique<CodesCoder>(std::move(nets), std::move(prior), ImageSize{C, H, W},
                                      levels_);
}

std::unique_ptr<ImageCoder> VqVae::coder() {
  return codes_coder(std::make_unique<UniformCoder>(1, options.codes));
}

nlohmann::json VqVae::diagnostics(const torch::Tensor& images) {
  c10::InferenceMode guard;
  double recon = 0, squared = 0;
  auto counts = torch::zeros({options.codes}, torch::kDouble);
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += 256) {
    auto x = images.slice(0, b, std::min(n, b + 256)).to(device());
    auto q = encode(x);
    auto p = pixels(pixel_params(posterior_mode(q), x));  // one decoder pass for both
    recon -= p->log_prob(x).sum().item<double>();
    squared += (p->mean() - x.to(torch::kFloat)).pow(2).sum().item<double>();
    counts += torch::bincount(q.a.flatten(), {}, options.codes).cpu().to(torch::kDouble);
  }
  const double N = std::max<int64_t>(1, n), peak = static_cast<double>(levels_ - 1);
  const auto [usage, perplexity] = codebook_usage(counts);
  const double mse = squared / (N * static_cast<double>(shape_.dims()));
  return {{"recon_nats", recon / N},
          {"kl_nats", uniform_prior_nats()},
          {"codebook_usage", usage},
          {"perplexity", perplexity},
          {"psnr_db", mse > 0 ? 10 * std::log10(peak * peak / mse) : 99.0}};
}

}  // namespace tame
