// A normalizing flow as an image model: a dequantizer, a transform and a base
// distribution (DESIGN.md). With y = (x + u) / K, u ~ q(u|x) on [0, 1)^D,
//   log P(x) >= E_q[ log p(y) - log q(u|x) ] - D log K,
// and log p(y) = log p_base(f(y)) + log|det df/dy|. nll(x) is the one-draw
// estimate of that bound (an upper bound on -log P(x) in expectation);
// nll_iw(x, k) is the k-draw importance-weighted bound, which tightens with k.
// Dequantization is uniform (q = 1 on the unit cube) or variational (a flow
// q(u|x) trained jointly, dequantization.h).
#pragma once

#include "tame/models/flows/dequantization.h"
#include "tame/models/flows/transforms.h"
#include "tame/models/image_model.h"

namespace tame {

/// The hyper-parameters nice, realnvp and glow share; each one's options
/// struct adds its own.
struct FlowOptions {
  int64_t hidden = 64;
  double alpha = 0.05;
  std::string dequantization = "uniform";
  int64_t deq_couplings = 2;
  int64_t deq_hidden = 32;
  /// `own` (a flow's own keys and what they do) with the shared ones added:
  /// what a flow's help() returns and `tame models` prints.
  static nlohmann::json help_with(nlohmann::json own);
};

enum class FlowBase {
  kNormal,       // standard normal on R^D (the flows' prior)
  kUniformUnit,  // uniform on [0, 1)^D: with the identity transform, exactly log2 K bits/dim
};

class FlowModel : public ImageModel {
 public:
  FlowModel(ImageShape shape, int64_t levels, flows::TransformPtr transform,
            FlowBase base = FlowBase::kNormal,
            std::shared_ptr<flows::VariationalDequantizer> dequantizer = nullptr);
  torch::Tensor nll(const torch::Tensor& x) override;
  torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) override;
  /// z ~ base (normal: N(0, T^2)), x = floor(K f^-1(z)) clipped to the levels.
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  Bound bound() const override { return Bound::kUpper; }
  /// Local bits-back coding of the flow over its dequantization
  /// (codec/flow_coder.h); nullptr for a uniform base.
  static constexpr bool kCodec = true;
  std::unique_ptr<ImageCoder> coder() override;
  /// What the coder runs: the transform and the dequantizer as programs.
  FlowNets programs();

  /// log p(y) - log q(u|x) - D log K for one dequantization draw: [B] (nats).
  torch::Tensor log_weight(const torch::Tensor& x);
  /// The map from dequantized y = (x + u) / K in [0, 1)^D to the base space.
  flows::Transform& transform() { return *transform_; }

 protected:
  flows::TransformPtr transform_;
  FlowBase base_;
  std::shared_ptr<flows::VariationalDequantizer> dequantizer_;
};

/// What nice, realnvp and glow share around their own transform `body`: the
/// logit pre-processing in front (alpha checked to lie in (0, 0.5)), ...
flows::TransformPtr logit_then(const char* model, double alpha, flows::TransformPtr body);
/// ... a check that the image side divides by `side` (squeezes need it) ...
void check_side(const char* model, const std::string& option, int64_t side, ImageShape s);
/// ... and the dequantizer their options name (dequantization, deq_couplings, deq_hidden).
std::shared_ptr<flows::VariationalDequantizer> dequantizer_for(const FlowOptions& o, ImageShape s,
                                                               int64_t levels);

}  // namespace tame
