// Invertible transforms for normalizing flows (the nflows pattern, DESIGN.md):
// forward(x) -> {y, log|det dy/dx|} and inverse(y) -> {x, log|det dx/dy|},
// log-determinants per example, [B]. A Composite applies its parts in order and
// sums their log-determinants; an Inverse swaps the two directions.
//
// Implemented here, each with its paper:
//   AdditiveCoupling  NICE (Dinh et al. 2014): y_b = x_b + t(x_a), log-det 0
//   DiagonalScale     NICE's learned scale: y = x * exp(s), s per dimension
//   AffineCoupling    RealNVP (Dinh et al. 2016): y_b = x_b * exp(s(x_a)) + t(x_a),
//                     with s = bound * tanh(raw / bound): a scale kept inside
//                     exp(+-bound) (option scale_bound; 0 leaves it unbounded)
//   Squeeze           RealNVP: [C, H, W] -> [4C, H/2, W/2], log-det 0
//   ActNorm           Glow (Kingma & Dhariwal 2018): y = (x + b) * exp(logs) per
//                     channel, initialized from the first batch it sees to zero
//                     mean and unit variance per channel
//   InvConv1x1        Glow's invertible 1x1 convolution in LU form:
//                     W = P L (U + diag(sign * exp(log_s))), log-det H W sum(log_s)
//   Split             RealNVP's multi-scale factoring-out: the first half of the
//                     channels goes on through an inner transform, the second
//                     half leaves the flow here. With a learned prior (Glow) the
//                     leaving half is standardized, eps = (x2 - mu(x1)) / sigma(x1),
//                     which is the density N(x2; mu(x1), sigma(x1)^2) written as
//                     an affine transform under the standard normal base; sampling
//                     at temperature T draws eps ~ N(0, T^2), Glow's rule
//   Logit             pre-processing y = logit(a + (1 - 2a) x) on [0, 1), with its
//                     own log-det, so that every term of the bound is visible
// The couplings split by a fixed binary mask: checkerboard or channel halves
// (mask_parity swaps the halves, which is how successive couplings mix).
//
// Each transform also writes itself as steps of a flow program
// (add_steps(), codec/flow_coder.h): the form the codec codes by local
// bits-back, on fixed-order kernels.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

#include "tame/codec/flow_coder.h"
#include "tame/common.h"
#include "tame/nn/feedforward.h"

namespace tame::flows {

using Result = std::pair<torch::Tensor, torch::Tensor>;  // {output, logabsdet [B]}

/// Sum over every dimension but the batch: [B, ...] -> [B].
torch::Tensor sum_per_example(const torch::Tensor& t);
/// A log-scale kept inside (-bound, bound): bound * tanh(raw / bound); bound = 0
/// leaves raw as it is. Every coupling, prior and dequantizer scale uses it.
torch::Tensor bounded_log_scale(const torch::Tensor& raw, double bound);

class Transform : public torch::nn::Module {
 public:
  virtual Result forward(const torch::Tensor& x) = 0;
  virtual Result inverse(const torch::Tensor& y) = 0;
  /// Appends this transform, data side to latent side, to a coder's program:
  /// it maps the state's first in.dims() coordinates, of shape `in`; returns
  /// the shape it leaves them in. The default throws an Error (no such form).
  virtual ImageShape add_steps(FlowProgram& p, ImageShape in) const;
};
using TransformPtr = std::shared_ptr<Transform>;

class Composite : public Transform {
 public:
  explicit Composite(std::vector<TransformPtr> parts);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;
  const std::vector<TransformPtr>& parts() const { return parts_; }

 private:
  std::vector<TransformPtr> parts_;
};

class Inverse : public Transform {
 public:
  explicit Inverse(TransformPtr t);
  Result forward(const torch::Tensor& x) override { return t_->inverse(x); }
  Result inverse(const torch::Tensor& y) override { return t_->forward(y); }
  /// Only the inverse of a Squeeze has one (the multi-scale unsqueeze).
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;

 private:
  TransformPtr t_;
};

enum class MaskKind { kCheckerboard, kChannel };

/// The 0/1 mask [C, H, W]: 1 marks the half that conditions (x_a), 0 the half
/// that is transformed (x_b).
torch::Tensor coupling_mask(MaskKind kind, int64_t channels, int64_t height, int64_t width,
                            bool parity);

/// The conditioner of a coupling: 3x3 conv, ReLU, 1x1 conv, ReLU, 3x3 conv to
/// out_channels, the last layer zero-initialized so that a new coupling is the
/// identity.
class ConditionerImpl : public torch::nn::Module {
 public:
  ConditionerImpl(int64_t in_channels, int64_t hidden, int64_t out_channels);
  torch::Tensor forward(const torch::Tensor& x);
  /// The same network on the fixed-order kernels, for maps of `in`.
  steps::Feedforward feedforward(steps::MapShape in) const;

 private:
  torch::nn::Conv2d c1_{nullptr}, c2_{nullptr}, c3_{nullptr};
};
TORCH_MODULE(Conditioner);

class AdditiveCoupling : public Transform {
 public:
  AdditiveCoupling(int64_t channels, int64_t height, int64_t width, MaskKind kind, bool parity,
                   int64_t hidden);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;

 private:
  torch::Tensor mask_;
  Conditioner net_{nullptr};
};

class DiagonalScale : public Transform {
 public:
  DiagonalScale(int64_t channels, int64_t height, int64_t width);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;
  torch::Tensor log_scale;  // [C, H, W]
};

class AffineCoupling : public Transform {
 public:
  AffineCoupling(int64_t channels, int64_t height, int64_t width, MaskKind kind, bool parity,
                 int64_t hidden, double scale_bound);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;

 private:
  std::pair<torch::Tensor, torch::Tensor> scale_shift(const torch::Tensor& xa);
  torch::Tensor mask_;
  Conditioner net_{nullptr};
  double bound_;
};

class Squeeze : public Transform {
 public:
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;
};

class ActNorm : public Transform {
 public:
  explicit ActNorm(int64_t channels);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;
  torch::Tensor bias, log_scale,
      initialized;  // [C], [C], scalar 0/1 (a buffer: checkpoints keep it)
};

class InvConv1x1 : public Transform {
 public:
  explicit InvConv1x1(int64_t channels);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;
  /// The weight P L (U + diag(sign * exp(log_s))), [C, C].
  torch::Tensor weight() const;
  torch::Tensor log_s;

 private:
  torch::Tensor p_, lower_, upper_, sign_, lower_mask_;
};

/// Factors out the second half of the channels: forward(x) = cat(inner(x1),
/// prior(x2 | x1)), the shape kept, so that Splits nest inside Squeeze ...
/// Inverse(Squeeze) to form the multi-scale architecture. learned_prior = false
/// leaves x2 as it is (RealNVP: x2 meets the standard normal base directly).
class Split : public Transform {
 public:
  Split(int64_t channels, TransformPtr inner, bool learned_prior, int64_t hidden,
        double scale_bound);
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;

 private:
  std::pair<torch::Tensor, torch::Tensor> prior(const torch::Tensor& x1);  // {mu, log sigma}
  int64_t keep_;
  TransformPtr inner_;
  Conditioner net_{nullptr};
  double bound_;
};

class Logit : public Transform {
 public:
  explicit Logit(double alpha = 0.05) : alpha_(alpha) {}
  Result forward(const torch::Tensor& x) override;
  Result inverse(const torch::Tensor& y) override;
  ImageShape add_steps(FlowProgram& p, ImageShape in) const override;

 private:
  double alpha_;
};

}  // namespace tame::flows
