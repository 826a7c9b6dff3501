// The latent-variable family (DESIGN.md): p(x) = sum_z p(z) p(x|z), trained and
// scored through its evidence lower bound. A LatentModel supplies the encoder
// q(z|x), the prior p(z) and the decoder p(x|z); this base turns them into
//   nll(x)       = -ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z))   (one draw of z)
//   nll_iw(x, k) = -log (1/k) sum_i p(x, z_i) / q(z_i|x)            (Burda et al. 2015)
//   loss(x)      = recon + beta KL   (k = 1)  or  the k-sample bound (k > 1)
// all in nats per image, upper bounds on -log p(x). nll_iw draws its k samples
// in chunks of at most kDecodeBudget decoded images, so that k = 5,000 fits
// in memory on 28x28 images.
//
// Pixels: the decoder's output parameterizes one of dist/'s pixel
// likelihoods, Bernoulli for binarized data (K = 2), Categorical(K) or the
// discretized logistic for K-level data, chosen by the option `likelihood`
// ("auto" = Bernoulli for K = 2, Categorical otherwise; pixel_likelihood()).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/dist/pixel_likelihood.h"
#include "tame/models/autoregressive/step_engine.h"
#include "tame/models/image_model.h"
#include "tame/nn/feedforward.h"

namespace tame {

/// The `likelihood` option of the latent models, as `tame models` prints it.
inline constexpr const char* kPixelLikelihoodHelp =
    "pixel likelihood p(x|z): auto (bernoulli for K = 2, else categorical) | bernoulli | "
    "categorical | logistic";

/// Two stride-2 4x4 convolutions (C -> h -> 2h) and a linear layer to `out`.
class ConvEncoderImpl : public torch::nn::Module {
 public:
  ConvEncoderImpl(ImageShape shape, int64_t hidden, int64_t out);
  torch::Tensor forward(const torch::Tensor& x_unit);
  steps::Feedforward feedforward(steps::MapShape in) const;

 private:
  torch::nn::Conv2d c1_{nullptr}, c2_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ConvEncoder);

/// The mirror image: a linear layer from `in` to 2h x H/4 x W/4, two rounds of
/// nearest-neighbour 2x upsampling and a 3x3 convolution (2h -> h -> h), and a
/// 1x1 convolution to out_channels x H x W. (Transposed convolutions to 256
/// logits per pixel ran ~10x slower on the CPU.)
class ConvDecoderImpl : public torch::nn::Module {
 public:
  ConvDecoderImpl(int64_t in, int64_t hidden, int64_t out_channels, ImageShape shape);
  torch::Tensor forward(const torch::Tensor& z);
  steps::Feedforward feedforward() const;

 private:
  ImageShape shape_;
  int64_t hidden_;
  torch::nn::Linear fc_{nullptr};
  torch::nn::Conv2d d1_{nullptr}, d2_{nullptr}, out_{nullptr};
};
TORCH_MODULE(ConvDecoder);

/// The fully connected networks of Burda et al. 2015 (and of most
/// binarized-MNIST results), both ways: the input flattened to [B, in], two
/// tanh layers of `hidden` units, a linear layer to prod(out_shape) viewed as
/// [B, out_shape...]. Encoder: in = C H W, out_shape = {out}; decoder:
/// in = latent units, out_shape = {out_channels, H, W}.
class MlpImpl : public torch::nn::Module {
 public:
  MlpImpl(int64_t in, int64_t hidden, std::vector<int64_t> out_shape);
  torch::Tensor forward(const torch::Tensor& x);
  steps::Feedforward feedforward(steps::MapShape in, steps::MapShape out) const;

 private:
  std::vector<int64_t> out_shape_;
  torch::nn::Linear l1_{nullptr}, l2_{nullptr}, out_{nullptr};
};
TORCH_MODULE(Mlp);

/// The network as a Feedforward on the fixed-order kernels (nn/feedforward.h),
/// for bits-back coding: `in` and `out` are the channels-last maps it takes
/// and gives (the image [H][W][C] or a vector; [H][W][features] for a
/// decoder), with the weights of its flattening layers permuted to match.
/// Works for the three networks below.
steps::Feedforward feedforward_of(const torch::nn::AnyModule& net, steps::MapShape in,
                                  steps::MapShape out);

/// The encoder x_unit [B, C, H, W] -> [B, out] and decoder z [M, in] ->
/// [M, out_channels, H, W] of an architecture: "conv" or "mlp" (the error names
/// the choices). `hidden` is the conv pair's first channel count or the MLP's width.
torch::nn::AnyModule make_encoder(const std::string& arch, ImageShape shape, int64_t hidden,
                                  int64_t out);
torch::nn::AnyModule make_decoder(const std::string& arch, int64_t in, int64_t hidden,
                                  int64_t out_channels, ImageShape shape);

/// The parameters of q(z|x) for one batch (their meaning is the model's own).
struct Posterior {
  torch::Tensor a, b;
};

class LatentModel : public ImageModel {
 public:
  static constexpr int64_t kDecodeBudget = 512;  // decoded images per chunk in nll_iw

  LatentModel(ImageShape shape, int64_t levels, PixelLikelihood likelihood, double beta, int64_t k);
  torch::Tensor nll(const torch::Tensor& x) override;
  torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) override;
  torch::Tensor loss(const torch::Tensor& x) override;
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  Bound bound() const override { return Bound::kUpper; }
  nlohmann::json step_metrics() const override { return last_terms_; }
  /// recon, kl (nats/image, one draw) and active units over `images`.
  nlohmann::json diagnostics(const torch::Tensor& images) override;

  /// Each image encoded, its posterior's most likely z decoded, and the mean of
  /// p(x|z) returned: float [B, C, H, W] in level units [0, K-1].
  torch::Tensor reconstruct(const torch::Tensor& x);
  /// E[x | z] for latent codes z [n, latent...]: float in level units [0, K-1];
  /// for an autoregressive decoder, whose mean has no closed form, one draw.
  torch::Tensor decode_mean(const torch::Tensor& z);
  virtual int64_t latent_dims() const = 0;

  /// Discrete codes (models with has_codes()): a code map's latent z, as
  /// draw() gives it; decode_codes and codes_nll decode it.
  virtual torch::Tensor codes_latent(const torch::Tensor& codes);
  torch::Tensor decode_codes(const torch::Tensor& codes, double temperature) override;
  torch::Tensor codes_nll(const torch::Tensor& x, const torch::Tensor& codes) override;

  // The model's own parts, on inputs x (uint8 [B, C, H, W]):
  virtual Posterior encode(const torch::Tensor& x) = 0;
  /// n draws per image: [n, B, latent...]; reparameterized = with a path to q's
  /// parameters (training) or plain draws (bounds).
  virtual torch::Tensor draw(const Posterior& q, int64_t n, bool reparameterized) = 0;
  virtual torch::Tensor log_q(const Posterior& q, const torch::Tensor& z) = 0;  // [n, B]
  virtual torch::Tensor log_prior(const torch::Tensor& z) = 0;                  // [n, B]
  /// KL(q(z|x) || p(z)) per image, [B], for draws z [n, B, latent...] of q:
  /// by default the draws' estimate mean_n [log q(z_n|x) - log p(z_n)] (what
  /// hierarchical latents have); a model with a closed form overrides it and
  /// leaves z unused.
  virtual torch::Tensor kl(const Posterior& q, const torch::Tensor& z);
  virtual torch::Tensor prior_draw(int64_t n) = 0;               // [n, latent...]
  virtual torch::Tensor posterior_mode(const Posterior& q) = 0;  // [B, latent...]
  /// A [B, L'] summary of q whose variance over the data counts active units.
  virtual torch::Tensor posterior_mean(const Posterior& q) = 0;

  /// -log p(x|z) [M] for z [M, latent...] and x [M, C, H, W].
  torch::Tensor decode_nll(const torch::Tensor& z, const torch::Tensor& x);
  /// x ~ p(x|z) at temperature T (T = 0: most likely pixels), uint8. An
  /// autoregressive decoder draws sub-pixel by sub-pixel in raster order.
  torch::Tensor decode_sample(const torch::Tensor& z, double temperature);

 protected:
  /// What the decoder computes from z alone, once per z (default: z itself).
  /// An autoregressive decoder's context is a per-pixel map [M, F, H, W].
  virtual torch::Tensor decoder_context(const torch::Tensor& z) { return z; }
  /// An autoregressive decoder as a step engine over a CPU copy of its
  /// weights, with the per-pixel context map its layers add (float
  /// [M, H, W, engine->context_features()] on the CPU), computed once from
  /// decoder_context(z); decode_sample draws through it.
  struct DecoderEngine {
    std::unique_ptr<StepEngine> engine;
    torch::Tensor context;
  };
  virtual DecoderEngine decoder_engine(const torch::Tensor& context) { return {}; }
  /// The decoder network's pixel parameters [M, likelihood_.features(C), H, W] from
  /// decoder_context(z). An autoregressive decoder reads x (uint8 [M, C, H, W]),
  /// and the parameters at each sub-pixel depend only on the sub-pixels before
  /// it; other decoders ignore x.
  virtual torch::Tensor pixel_params(const torch::Tensor& context, const torch::Tensor& x) = 0;
  virtual bool autoregressive_decoder() const { return false; }
  /// The distribution of pixels that parameters p [M, likelihood_.features(C), H', W'] define.
  std::unique_ptr<PixelDistribution> pixels(const torch::Tensor& p) const;
  /// Draws pixels from parameters p at temperature T (0 = most likely).
  torch::Tensor draw_pixels(const torch::Tensor& p, double temperature);
  /// The k-draw bound's log-weights for one chunk: [n, B].
  torch::Tensor log_weights(const Posterior& q, const torch::Tensor& x, int64_t n);

  PixelLikelihood likelihood_;
  double beta_;
  int64_t k_;
  nlohmann::json last_terms_ = nlohmann::json::object();
};

}  // namespace tame
