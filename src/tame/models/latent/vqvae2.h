// VQ-VAE-2 — Razavi, van den Oord & Vinyals 2019, "Generating Diverse
// High-Fidelity Images with VQ-VAE-2".
//
// Implements: two levels of codes, each with its own codebook of K entries
// (codebook.h: straight-through gradient, codebook and commitment terms,
// moving averages and restarts as in vqvae.h). The bottom encoder (a stride-2
// 4x4 convolution, a 3x3 and residual blocks) maps x to features at half the
// height and width; the top encoder (another stride-2 4x4, a 3x3, residual
// blocks, a 1x1 to D) maps those to a quarter, quantized to the top codebook
// (7 x 7 for 28 x 28: the global structure). The top decoder (a 3x3, residual
// blocks, nearest 2x upsampling and a 3x3) brings the top codes back to half
// size, where a 1x1 convolution of the bottom encoder's features beside it is
// quantized to the bottom codebook (14 x 14: the local detail). The decoder
// reads both levels: the top codes upsampled (nearest, then a 3x3) beside the
// bottom codes, a 3x3, residual blocks, 2x upsampling, a 3x3 and a 1x1 to the
// pixel likelihood of latent_model.h. The objective is -log p(x | z_q) plus
// each level's codebook (unless moving averages) and beta-weighted
// commitment terms.
//
// Priors, in two stages (code_stages()): "top" over the 1 x H/4 x W/4 top
// codes (codes:RUN:top; the paper's is a PixelCNN with self-attention, here
// the transformer, which is all attention), then "bottom", conditional on the
// top codes: over the 2 x H/2 x W/2 code maps [each top code repeated over its
// 2 x 2 block; the bottom codes] with the first channel given (codes:RUN:bottom
// trains a gated-pixelcnn with given = 1, whose conditioning stack sees the
// whole top map). The pair is code_prior.h's with two priors; its NLL is
// -log p(x | z) - log p_top(z_top) - log p_bottom(z_bottom | z_top).
// Alone, the prior is uniform: nll = -log p(x | z_q) + (L_top + L_bottom) log K.
// Leaves out: the paper's three-level model for 1024 x 1024 images and its
// transposed convolutions (nearest upsampling and 3x3 convolutions instead);
// a codec (the two-level networks have no fixed-order form yet).
#pragma once

#include <optional>

#include "tame/models/latent/codebook.h"
#include "tame/models/latent/vq_latent.h"
#include "tame/models/latent/vqvae.h"

namespace tame {

/// The options of vqvae.h, for each level's codebook alike.
using VqVae2Options = VqVaeOptions;

class VqVae2 : public VqLatentModel {
 public:
  VqVae2(const VqVae2Options& options, ImageShape shape, int64_t levels);
  torch::Tensor loss(const torch::Tensor& x) override;
  /// Code positions of the top (H/4 x W/4) and bottom (H/2 x W/2) maps; the
  /// latent's L is their sum, the top first.
  int64_t top_positions() const { return (shape_.height / 4) * (shape_.width / 4); }
  int64_t bottom_positions() const { return (shape_.height / 2) * (shape_.width / 2); }

  /// Posterior {index [B, L_top + L_bottom] (top first), a float tensor}.
  Posterior encode(const torch::Tensor& x) override;
  /// recon and kl (nats/image), each level's codebook usage over `images` and
  /// perplexity (top_*, bottom_*; codebook_usage: both books together), PSNR.
  nlohmann::json diagnostics(const torch::Tensor& images) override;

  /// The code maps: [B, 2, H/2, W/2], channel 0 the top codes each repeated
  /// over its 2 x 2 block, channel 1 the bottom codes; K levels.
  bool has_codes() const override { return true; }
  torch::Tensor encode_codes(const torch::Tensor& x) override;
  int64_t code_levels() const override { return options.codes; }
  torch::Tensor codes_latent(const torch::Tensor& codes) override;
  /// "top": [B, 1, H/4, W/4]; "bottom": the code maps, the top channel given.
  std::vector<std::string> code_stages() const override { return {"top", "bottom"}; }
  torch::Tensor stage_codes(const torch::Tensor& codes, int64_t stage) const override;
  torch::Tensor stage_given(const torch::Tensor& top, int64_t stage) const override;

  /// The top and bottom codebooks.
  const Codebook& top_codebook() const { return *top_; }
  const Codebook& bottom_codebook() const { return *bottom_; }

  /// One batch's terms, nats per image [B] (as VqVae::Terms, both levels
  /// summed); the top and bottom indices [B, L]. With `update` (training)
  /// also the codebooks' updates and the step counter; without `decode` the
  /// indices alone (the decoder does not run).
  struct Terms {
    torch::Tensor recon, codebook, commitment, objective, params, top_index, bottom_index;
    int64_t restarted = 0;
  };
  Terms terms(const torch::Tensor& x, bool update, bool decode = true);
  const VqVae2Options options;

 protected:
  /// z one-hot [M, L_top + L_bottom, K] (or any weights over the entries).
  torch::Tensor pixel_params(const torch::Tensor& z, const torch::Tensor&) override;

 private:
  /// Rows [B L, D] of a map [B, D, h, w], position-major, and back.
  torch::Tensor rows(const torch::Tensor& map) const;
  torch::Tensor map(const torch::Tensor& rows, int64_t b, int64_t h, int64_t w) const;
  /// The decoder's pixel parameters from the quantized maps.
  torch::Tensor decode(const torch::Tensor& top, const torch::Tensor& bottom);
  torch::nn::Sequential enc_b_{nullptr}, enc_t_{nullptr}, dec_t_{nullptr}, pre_b_{nullptr},
      up_t_{nullptr}, dec_{nullptr};
  std::optional<Codebook> top_, bottom_;  // top_codebook, ..., bottom_codebook, ...
  torch::Tensor step_;                    // training steps taken (a buffer: resumes keep it)
};

}  // namespace tame
