// NADE — Larochelle & Murray 2011, "The Neural Autoregressive Distribution
// Estimator".
//
// Implements: one hidden layer shared by every conditional, h_d = sigmoid(c +
// W[:, <d] x_<d), computed for all d in O(H D) per image by the running
// pre-activation a_d = a_{d-1} + W[:, d-1] x_{d-1} (a cumulative sum in the
// torch model, a running sum in the step engine); outputs p(x_d = 1 | x_<d) =
// sigmoid(b_d + V_d . h_d) for binary images and a K-way softmax b_d + V_d h_d
// (V_d: K x H) for K > 2 levels. Inputs are scaled to [-1, 1] (for binary
// images an affine change of c from the paper's {0, 1}).
// Leaves out: other orderings, the order-agnostic training of DeepNADE.
// Cost: V has D * K' * H weights (K' = 1 for binary images, K otherwise): for
// 8-bit images choose a small hidden.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/dense_autoregressive.h"

namespace tame {

struct NadeOptions {
  int64_t hidden = 500;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"hidden", "H: units of the shared hidden layer"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NadeOptions, hidden)

class Nade : public DenseAutoregressiveModel {
 public:
  Nade(const NadeOptions& options, ImageShape shape, int64_t levels);
  /// Binary images on the CPU: a fused per-image kernel with its own backward
  /// (nade.cpp); otherwise flat_logits_reference().
  torch::Tensor flat_logits(const torch::Tensor& x) override;
  /// The cumulative-sum form in torch operations, on any device.
  torch::Tensor flat_logits_reference(const torch::Tensor& x);
  std::unique_ptr<StepEngine> step_engine() override;
  const NadeOptions options;

 private:
  torch::Tensor W_, c_, V_, b_;  // W [H, D], c [H], V [D, K', H], b [D, K']
};

}  // namespace tame
