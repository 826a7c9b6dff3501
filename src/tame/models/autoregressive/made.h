// MADE — Germain, Gregor, Murray & Larochelle 2015, "MADE: Masked Autoencoder
// for Distribution Estimation".
//
// Implements: an MLP with 1 or 2 ReLU hidden layers whose weights are masked so
// that output d reads inputs < d only: each hidden unit k gets a connectivity
// m(k) drawn uniformly from [min m of the layer below, D - 2] (the inputs'
// m(j) = j), a unit connects to the units below with m <= m(k), and output d
// to the last hidden units with m < d. The connectivities come from `seed`
// (splitmix64 streams, the same on every machine). With masks=M the network
// trains with M connectivity draws cycled step by step (draw = step mod M) and
// evaluates the ensemble, the mixture p(x) = (1/M) sum_m p_m(x): an exact
// likelihood. Binary images: sigmoid outputs; K > 2 levels: K-way softmax
// outputs per sub-pixel. Inputs are scaled to [-1, 1].
// The ordering: every draw keeps tame's sub-pixel order and varies only the
// hidden connectivity, so the mixture is itself autoregressive in that order,
// p(x_d | x_<d) = sum_m w_m p_m(x_d | x_<d) with w_m proportional to
// p_m(x_<d): the step engine and the codec code exactly what tame eval reports.
// Sampling at temperature T tempers each draw's softmax (logits / T) and
// mixes them with the same weights.
// With direct=true (the default) each conditional adds the logits of an FVSBN
// (fvsbn.h) on the same inputs: the direct input-to-output connections of the
// paper's code, strictly lower triangular in the sub-pixel order and shared by
// every draw (for K > 2 levels, of rank 16).
// Leaves out: order-agnostic training (random input orderings), conditioning
// the hidden units on the mask.
// Cost: the output layer has D * K' * hidden weights (K' = 1 for binary images,
// K otherwise), the direct connections D^2 (binary; half of them live) or
// 16 D (D + K) (K > 2); the ensemble's evaluation runs M networks, and the
// direct connections once.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/dense_autoregressive.h"
#include "tame/models/autoregressive/fvsbn.h"

namespace tame {

struct MadeOptions {
  int64_t hidden = 500;
  int64_t layers = 1;
  int64_t masks = 1;
  int64_t seed = 0;
  bool direct = true;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"hidden", "units in each hidden layer"},
        {"layers", "hidden layers: 1 or 2"},
        {"masks", "M: connectivity draws cycled in training, mixed in evaluation"},
        {"seed", "seed of the connectivity draws"},
        {"direct", "add an FVSBN's logits: direct input-to-output connections (rank 16 for K > 2)"},
    };
  }
  /// The values of hyper-parameters added since the first runs, for a run
  /// stored without them: direct connections came later.
  static nlohmann::json earlier() { return {{"direct", false}}; }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(MadeOptions, hidden, layers, masks, seed, direct)

class Made : public DenseAutoregressiveModel {
 public:
  Made(const MadeOptions& options, ImageShape shape, int64_t levels);
  /// The network under connectivity draw `draw()`.
  torch::Tensor flat_logits(const torch::Tensor& x) override;
  /// The ensemble's conditionals log p(x_d = k | x_<d) as logits [B, K, C, H, W]
  /// (for M = 1, the one network's logits).
  torch::Tensor logits(const torch::Tensor& x) override;
  /// Training minimizes the NLL of one draw: draw step mod M.
  torch::Tensor loss(const torch::Tensor& x) override;
  StepResult train_step(const torch::Tensor& x, Optimizers& optimizers,
                        const StepContext& context) override;
  std::unique_ptr<StepEngine> step_engine() override;

  /// Connectivity m(k) of layer l's units under draw `mask`: [hidden].
  const std::vector<int64_t>& connectivity(int64_t mask, int64_t layer) const {
    return degrees_[mask][layer];
  }
  /// Layer l's 0/1 weight mask under draw `mask`: [out, in] (the output layer
  /// l = layers as [D * K', hidden]).
  torch::Tensor weight_mask(int64_t mask, int64_t layer) const;
  void set_draw(int64_t mask) { draw_ = mask; }
  int64_t draw() const { return draw_; }
  const MadeOptions options;

 private:
  std::vector<std::vector<std::vector<int64_t>>> degrees_;  // [mask][layer][unit]
  std::vector<std::vector<torch::Tensor>> masks_;           // [mask][layer] on the device
  torch::nn::ModuleList hidden_;
  torch::nn::Linear out_{nullptr};
  std::shared_ptr<Fvsbn> direct_;  // null without direct connections
  int64_t draw_ = 0;
};

}  // namespace tame
