// The interface every model family implements, by capability (see docs/DESIGN.md).
//
// A model is a distribution over discrete images x in {0..K-1}^(C x H x W),
// held as integer tensors [B, C, H, W] (uint8 for K <= 256, int32 above, e.g.
// the code maps of VQ models). Scaling, dequantization and logits are each
// model's own business; nll() is in nats per image and bits/dim is computed by
// bits_per_dim() alone.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/common.h"
#include "tame/nn/autocast.h"

namespace tame {

/// What a model's likelihood is: exact, an upper bound on -log p(x) (ELBO,
/// dequantization), or absent (a GAN: tame eval reports no bits/dim for it).
enum class Bound { kExact, kUpper, kNone };
const char* bound_name(Bound b);  // "exact" | "upper" | "none"

/// One of a model's optimizers: its name in checkpoints and metrics, and the
/// learning rate it was built with, which the loop's schedule scales.
struct NamedOptimizer {
  std::string name;
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  double base_lr = 0;
};
using Optimizers = std::vector<NamedOptimizer>;

/// What the training loop hands one step.
struct StepContext {
  int64_t step = 0;  // optimizer steps taken before this one
  double clip = 0;   // gradient-norm clipping threshold (0 = off)
  /// The forward pass's compute type (`--precision`): kFloat, or kBFloat16 for
  /// autocast; steps run their forward through forward_at_precision().
  torch::ScalarType precision = torch::kFloat;
  /// Called on each parameter set after backward() and before clipping: where a
  /// multi-process run averages gradients over its ranks. Empty: one process.
  std::function<void(const std::vector<torch::Tensor>& params)> reduce_gradients;
  /// Turns this process's loss into the run's (the global batch's): every rank
  /// then sees the same loss and skips a non-finite one together. Empty: one
  /// process. Steps call it through agreed_loss() before checking the loss.
  std::function<double(double)> agree_loss;
};

/// The step's loss as the run sees it (context.agree_loss), in one process
/// `loss` itself.
inline double agreed_loss(double loss, const StepContext& context) {
  return context.agree_loss ? context.agree_loss(loss) : loss;
}

/// f() (a step's forward pass and loss) run at the context's precision on
/// `device` (nn/autocast.h); a bf16 result comes back as fp32. Backward and
/// the optimizer step stay outside.
template <class F>
torch::Tensor forward_at_precision(const StepContext& context, const torch::Device& device, F&& f) {
  AutocastScope scope(context.precision, device);
  return full_precision(f());
}

/// What one step did: its loss (nats per dimension; the loop stops on a
/// non-finite one, and a step that sees one must not update anything), the
/// gradient norm before clipping, and the model's terms worth logging.
struct StepResult {
  double loss = 0;
  double grad_norm = 0;
  nlohmann::json metrics = nlohmann::json::object();
};

/// Every model samples; the rest are capabilities a model may have:
///   a likelihood   bound() != kNone, nll() and (for a stochastic bound) nll_iw();
///   a training step over named optimizers (default: one Adam on loss());
///   discrete codes  (encode_codes(): what `--data codes:RUN` serves a prior);
///   a codec         (coder(): an autoregressive model's step engine, a
///                    latent model's bits-back coder).
class ImageModel : public torch::nn::Module {
 public:
  ImageModel(ImageShape shape, int64_t levels) : shape_(shape), levels_(levels) {}

  /// n samples as integer images [n, C, H, W]; temperature 1 = the model.
  virtual torch::Tensor sample(int64_t n, double temperature = 1.0) = 0;

  // ---- likelihood (a model without one keeps these defaults)
  virtual Bound bound() const { return Bound::kNone; }
  bool has_likelihood() const { return bound() != Bound::kNone; }
  /// -log p(x) (or its upper bound) in nats per image: [B]. The default throws
  /// an Error: the model has no likelihood.
  virtual torch::Tensor nll(const torch::Tensor& x);
  /// k-sample importance-weighted NLL for models with a stochastic bound; exact
  /// models return nll(x).
  virtual torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) { return nll(x); }

  // ---- training
  /// The objective the default step minimizes, nats per image; by default the mean NLL.
  virtual torch::Tensor loss(const torch::Tensor& x) { return nll(x).mean(); }
  /// The model's optimizers, by name, at learning rate lr; by default one Adam
  /// ("adam") over every parameter.
  virtual Optimizers make_optimizers(double lr);
  /// One training step on batch x. The default: zero the gradients, loss(x)
  /// divided by C*H*W, backward, reduce_gradients, clip, step the one optimizer.
  virtual StepResult train_step(const torch::Tensor& x, Optimizers& optimizers,
                                const StepContext& context);
  /// The terms of the last loss() call worth logging (e.g. a VAE's reconstruction
  /// and KL, nats per image); the default step returns them in StepResult.
  virtual nlohmann::json step_metrics() const { return nlohmann::json::object(); }
  /// Diagnostics over a set of images beside bits/dim (e.g. a VAE's KL and
  /// active units); tame eval and the training loop's evaluations report them.
  virtual nlohmann::json diagnostics(const torch::Tensor& images) {
    return nlohmann::json::object();
  }

  // ---- discrete codes (categorical latents, VQ models): what a prior trains on
  /// Whether encode_codes() gives each image a map of discrete codes.
  virtual bool has_codes() const { return false; }
  /// Each image's code map: integer [B, C', H', W'] of image_dtype(code_levels())
  /// with values < code_levels(). The default throws an Error.
  virtual torch::Tensor encode_codes(const torch::Tensor& x);
  virtual int64_t code_levels() const { return 0; }
  /// The stages of the code maps, one prior each, by name: one unnamed stage
  /// by default; VQ-VAE-2's "top" then "bottom". Stage s > 0's prior is
  /// conditional (given_channels()): its maps carry what the stages before it
  /// drew as their first channels. The last stage's maps are the code maps.
  virtual std::vector<std::string> code_stages() const { return {""}; }
  /// What stage s's prior models, from code maps as encode_codes() gives them
  /// (the default: the maps themselves, for the one stage).
  virtual torch::Tensor stage_codes(const torch::Tensor& codes, int64_t stage) const;
  /// Stage s's given channels (s >= 1) from the maps stage s - 1's prior drew.
  /// The default throws an Error.
  virtual torch::Tensor stage_given(const torch::Tensor& previous, int64_t stage) const;
  /// How many channels stage s's maps carry from the stages before it (0 for
  /// s = 0): what its prior's given_channels() must be. Encodes one blank image.
  int64_t stage_given_channels(int64_t stage);
  /// Images drawn from p(x | codes) at temperature T for code maps as
  /// encode_codes() gives them: [n, C, H, W]. The default throws an Error.
  virtual torch::Tensor decode_codes(const torch::Tensor& codes, double temperature);
  /// -log p(x | codes) in nats per image [B]: the decoder's term of the bound
  /// of a prior over the codes (code_prior.h). The default throws an Error.
  virtual torch::Tensor codes_nll(const torch::Tensor& x, const torch::Tensor& codes);
  /// The coder of this model's images that codes each image's codes with
  /// `prior` (a coder of the code maps) and the image given them
  /// (codec/codes_coder.h), or nullptr: the model has no such coder.
  virtual std::unique_ptr<ImageCoder> codes_coder(std::unique_ptr<ImageCoder> prior) {
    return nullptr;
  }

  // ---- conditional models (the later stages' priors of staged code maps)
  /// The first given_channels() channels of this model's images are a
  /// condition, not modelled: nll() is of the other channels given them,
  /// bits/dim counts the others (modelled_dims()), sample() is an Error and
  /// sample_given() draws the others. 0: the model is not conditional.
  virtual int64_t given_channels() const { return 0; }
  /// Images [n, C, H, W] whose first channels are `given` [n, G, H, W] and
  /// whose others are drawn at temperature T. The default throws an Error.
  virtual torch::Tensor sample_given(const torch::Tensor& given, double temperature);
  /// The dimensions bits/dim divides by for one image of batch x: (C - G) H W.
  int64_t modelled_dims(const torch::Tensor& x) const;

  // ---- codec
  /// Whether coder() gives one (a class says so for the registry; a test
  /// checks it against coder()).
  static constexpr bool kCodec = false;
  /// The coder of this model's images over a CPU copy of the current weights
  /// (image_coder.h), or nullptr: the model cannot be used as a codec.
  virtual std::unique_ptr<ImageCoder> coder() { return nullptr; }

  // ---- geometry
  /// The image shape the model was built for; fully convolutional models
  /// (any_size()) also take other heights and widths with the same channels.
  const ImageShape& shape() const { return shape_; }
  virtual bool any_size() const { return false; }
  /// Throws an Error unless x is a batch of images this model takes.
  void check_input(const torch::Tensor& x) const;
  int64_t levels() const { return levels_; }
  torch::Device device() const;

 protected:
  ImageShape shape_;
  int64_t levels_;
};

/// Clips the gradients of params to norm clip (0 = off) after reducing them
/// (context.reduce_gradients); returns the norm before clipping. Custom steps
/// call it for each of their parameter sets.
double finish_gradients(const std::vector<torch::Tensor>& params, const StepContext& context);

}  // namespace tame
