// The one interface every model family implements (see DESIGN.md).
//
// A model is a distribution over discrete images x in {0..K-1}^(C x H x W),
// held as uint8 tensors [B, C, H, W]. Scaling, dequantization and logits are
// each model's own business; nll() is in nats per image and bits/dim is
// computed by bits_per_dim() alone.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include "tame/common.h"
#include "tame/models/autoregressive/incremental.h"

namespace tame {

/// Whether nll() is the exact negative log-likelihood or an upper bound on it.
enum class Bound { kExact, kUpper };
const char* bound_name(Bound b);  // "exact" | "upper"

class ImageModel : public torch::nn::Module {
 public:
  ImageModel(ImageShape shape, int64_t levels) : shape_(shape), levels_(levels) {}
  /// -log p(x) (or its upper bound) in nats per image: [B].
  virtual torch::Tensor nll(const torch::Tensor& x) = 0;
  /// The training objective; by default the mean NLL.
  virtual torch::Tensor loss(const torch::Tensor& x) { return nll(x).mean(); }
  /// n samples as uint8 [n, C, H, W]; temperature scales the logits (1 = the model).
  virtual torch::Tensor sample(int64_t n, double temperature = 1.0) = 0;
  virtual Bound bound() const = 0;
  /// k-sample importance-weighted NLL for models with a stochastic bound; exact
  /// models return nll(x).
  virtual torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) { return nll(x); }
  /// The terms of the last loss() call worth logging (e.g. a VAE's reconstruction
  /// and KL, nats per image); the training loop averages them over its window.
  virtual nlohmann::json step_metrics() const { return nlohmann::json::object(); }
  /// Diagnostics over a set of images beside bits/dim (e.g. a VAE's KL and
  /// active units); tame eval and the training loop's evaluations report them.
  virtual nlohmann::json diagnostics(const torch::Tensor& images) { return nlohmann::json::object(); }

  const ImageShape& shape() const { return shape_; }
  int64_t levels() const { return levels_; }
  torch::Device device() const;

 protected:
  ImageShape shape_;
  int64_t levels_;
};

/// Autoregressive models over sub-pixels in raster order, R before G before B
/// within a pixel, with a Categorical(K) conditional for each sub-pixel.
class AutoregressiveModel : public ImageModel {
 public:
  using ImageModel::ImageModel;
  /// Logits of every sub-pixel's conditional: [B, K, C, H, W]. Output (c, i, j)
  /// depends only on sub-pixels that precede it.
  torch::Tensor logits(const torch::Tensor& x);
  /// The network on inputs already scaled to [-1, 1] (float [B, C, H, W]);
  /// tests take gradients through it.
  virtual torch::Tensor forward_unit(const torch::Tensor& x_unit) = 0;

  torch::Tensor nll(const torch::Tensor& x) override;
  Bound bound() const override { return Bound::kExact; }
  /// The cached step engine (incremental.h) over a CPU copy of the current
  /// weights, or nullptr for a model without one.
  virtual std::unique_ptr<IncrementalModel> incremental() { return nullptr; }
  /// Sampling through incremental() when the model has one, else naive. Image b
  /// draws from its own random stream, seeded from torch's generator and b, so
  /// the samples don't depend on the thread count.
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  /// Naive sampling: one network pass per sub-pixel, over the rows generated so
  /// far (outputs on row i depend only on rows <= i).
  torch::Tensor sample_naive(int64_t n, double temperature = 1.0);
};

/// Draws n images from an engine, splitting them over the intra-op threads.
/// Image b uses the random stream (seed, b). Returns uint8 [n, C, H, W] on the CPU.
torch::Tensor sample_incremental(const IncrementalModel& engine, int64_t n, double temperature, uint64_t seed);

}  // namespace tame
