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

}  // namespace tame
