// VQ-VAE — van den Oord, Vinyals & Kavukcuoglu 2017, "Neural Discrete
// Representation Learning".
//
// Implements: a convolutional encoder to a D-dimensional map at a quarter of
// the image's height and width (7 x 7 for 28 x 28), each position quantized to
// its nearest entry of a codebook of K vectors; a decoder from the quantized
// map to the pixel likelihood of latent_model.h (Categorical(K) or the
// discretized logistic, Bernoulli for binarized data), so -log p(x | z_q) is a
// number in nats. Training minimizes, per image,
//   -log p(x | z_q) + ||sg[z_e] - e||^2 + beta ||z_e - sg[e]||^2
// with the straight-through gradient z_q = z_e + sg[e - z_e] (beta = 0.25).
// Options:
//   ema = true      the codebook follows the encodings by exponential moving
//                   averages (the paper's appendix: N_k <- g N_k + (1-g) n_k,
//                   m_k <- g m_k + (1-g) sum of its encodings, e_k = m_k / N_k
//                   with Laplace smoothing, g = gamma) instead of the loss term;
//   restart = R     every R training steps, entries no encoding chose since
//                   the last restart are set to encodings of the current
//                   batch (drawn without replacement); the first training
//                   step sets every entry so (a data-dependent start). 0: never.
// As a latent-variable model, q(z|x) is one-hot on the nearest entries and
// the prior is uniform, so nll = -log p(x | z_q) + L log K is an upper bound
// (L code positions); a trained prior over the codes (`--data codes:RUN`)
// replaces the uniform one in the pair of code_prior.h.
// Leaves out: the paper's larger residual stacks and its 3-level audio model.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>

#include "tame/models/latent/codebook.h"
#include "tame/models/latent/vq_latent.h"

namespace tame {

struct VqVaeOptions {
  int64_t codes = 256;
  int64_t code_dim = 16;
  int64_t hidden = 64;
  int64_t res_blocks = 2;
  double beta = 0.25;
  bool ema = true;
  double gamma = 0.99;
  int64_t restart = 100;
  std::string likelihood = "auto";
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"codes", "K: entries of the codebook (the code maps' levels)"},
        {"code_dim", "D: dimensions of each entry and of the encoder's output"},
        {"hidden", "channels of the encoder's and decoder's convolutions"},
        {"res_blocks", "residual blocks (3x3 then 1x1 convolution) each way"},
        {"beta", "weight of the commitment term ||z_e - sg[e]||^2"},
        {"ema", "update the codebook by moving averages instead of its loss term"},
        {"gamma", "decay of the moving averages"},
        {"restart",
         "every R steps reset unused entries to encodings of the batch (0 = never; the first "
         "step sets all)"},
        {"likelihood", kPixelLikelihoodHelp},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(VqVaeOptions, codes, code_dim, hidden, res_blocks,
                                                beta, ema, gamma, restart, likelihood)

/// Throws unless the options and the image size suit a VQ model (vqvae,
/// vqvae2, vqgan): height and width divisible by 4, 2 <= K <= 2^16, sizes >= 1.
void check_vq_options(const VqVaeOptions& o, const char* model, ImageShape shape);

class VqVae : public VqLatentModel {
 public:
  VqVae(const VqVaeOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor loss(const torch::Tensor& x) override;

  /// The encoder's output z_e as rows [B L, D], position-major within an image.
  torch::Tensor encode_rows(const torch::Tensor& x);
  /// Nearest-entry quantization of rows z_e [N, D] with the straight-through gradient.
  Quantized quantize(const torch::Tensor& z_e) const { return book_->quantize(z_e); }
  /// One moving-average step of the codebook on rows z_e [N, D] assigned to
  /// `index` [N] (the formula in the header).
  void ema_update(const torch::Tensor& z_e, const torch::Tensor& index) {
    book_->ema_update(z_e, index);
  }
  /// Entries unused since the last restart set to rows of z_e; returns how many.
  int64_t restart_unused(const torch::Tensor& z_e) { return book_->restart_unused(z_e); }
  torch::Tensor codebook() const { return book_->entries(); }

  Posterior encode(const torch::Tensor& x) override;  // {index [B, L], z_e [B, L, D]}
  /// recon and kl (nats/image), the codebook's usage over `images` (the share
  /// of entries chosen at least once) and perplexity (exp of the entropy of
  /// the entries' frequencies), and the reconstructions' PSNR in dB.
  nlohmann::json diagnostics(const torch::Tensor& images) override;

  /// Discrete codes: the nearest entries as a 1 x H/4 x W/4 map of K levels.
  bool has_codes() const override { return true; }
  torch::Tensor encode_codes(const torch::Tensor& x) override;
  int64_t code_levels() const override { return options.codes; }
  torch::Tensor codes_latent(const torch::Tensor& codes) override;
  /// Its encoder, codebook and decoder on the fixed-order kernels, with the
  /// prior's coder (codec/codes_coder.h); the training image size only.
  std::unique_ptr<ImageCoder> codes_coder(std::unique_ptr<ImageCoder> prior) override;
  /// Alone, a codec at the uniform-prior bound: codes_coder() over a
  /// UniformCoder of the code maps (L log2 K bits for the codes).
  static constexpr bool kCodec = true;
  std::unique_ptr<ImageCoder> coder() override;

  const VqVaeOptions options;

  /// One batch's terms, nats per image [B]: -log p(x | z_q), the codebook and
  /// commitment terms, and the objective the loss averages; the decoder's
  /// pixel parameters. In training mode also the codebook's updates (moving
  /// averages, usage, restarts) and the step counter.
  struct Terms {
    torch::Tensor recon, codebook, commitment, objective, params;
    int64_t restarted = 0;
  };
  Terms terms(const torch::Tensor& x);
  /// The mean of p(x | z) for the decoder's parameters, in level units (differentiable).
  torch::Tensor pixel_mean(const torch::Tensor& params) const { return pixels(params)->mean(); }

 protected:
  /// The decoder's last layer (a 1x1 convolution to the pixel parameters).
  torch::nn::Conv2dImpl& decoder_head();
  /// z one-hot [M, L, K] (or relaxed: any weights over the entries).
  torch::Tensor pixel_params(const torch::Tensor& z, const torch::Tensor&) override;

 private:
  /// The decoder's pixel parameters from quantized rows [M L, D].
  torch::Tensor decode_rows(const torch::Tensor& z_q, int64_t m);
  torch::nn::Sequential encoder_{nullptr}, decoder_{nullptr};
  std::optional<Codebook> book_;  // K x D, named codebook, ema_count, ema_sum, usage
  torch::Tensor step_;            // training steps taken (a buffer: resumes keep it)
};

}  // namespace tame
