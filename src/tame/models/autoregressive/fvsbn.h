// FVSBN — Frey 1998, "Graphical Models for Machine Learning and Digital
// Communication" (the fully visible sigmoid belief network); see also
// Larochelle & Murray 2011, Section 2.
//
// Implements: for binary images, p(x_d = 1 | x_<d) = sigmoid(b_d + sum_{j<d}
// W_dj x_j), a logistic regression per sub-pixel on all earlier ones; for K > 2
// levels, a K-way softmax per sub-pixel whose logits are linear in x_<d:
// b_d + U_d (V_d x_<d), with V_d of rank r (rank=0: the full multinomial
// regression, D^2 K / 2 weights). Inputs are scaled to [-1, 1].
// Leaves out: other orderings than tame's sub-pixel order.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/dense_autoregressive.h"

namespace tame {

struct FvsbnOptions {
  int64_t rank = 16;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"rank", "K > 2 only: rank of each conditional's linear map (0 = full rank)"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(FvsbnOptions, rank)

/// An FVSBN's conditionals step by step: its engine's, and MADE's direct
/// connections'. Dimension d reads the first d sub-pixels through its own map
/// (in = d), then for a low-rank model the rank -> K map of that dimension.
struct FvsbnSteps {
  std::vector<steps::Dense> prefix;  // per d: x_<d -> width
  std::vector<steps::Dense> up;      // per d: rank -> K (low rank only)
  /// Width of the scratch that logits() needs per image.
  int64_t width() const { return prefix[0].out; }
  /// Dimension d's logits [n][outputs] of n images whose flat inputs are x
  /// [n][D]; h is [n][width()] of scratch.
  void logits(int64_t d, const float* x, int64_t D, int64_t n, float* h, float* out,
              int64_t outputs) const;
  void hash(steps::Fingerprint& f) const;
};

class Fvsbn : public DenseAutoregressiveModel {
 public:
  Fvsbn(const FvsbnOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor flat_logits(const torch::Tensor& x) override;
  std::unique_ptr<StepEngine> step_engine() override;
  /// The trained weights as step maps.
  FvsbnSteps steps() const;
  const FvsbnOptions options;

 private:
  /// Width of the linear map of x_<d: the logits (full) or the rank.
  int64_t width() const { return rank_ > 0 ? rank_ : outputs_; }
  int64_t rank_;                    // 0: full
  torch::Tensor W_, b_, U_, mask_;  // W_ [D*width, D], b_ [D, outputs], U_ [D, K, rank]
};

}  // namespace tame
