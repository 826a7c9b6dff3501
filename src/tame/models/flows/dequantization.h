// Variational dequantization (Flow++, Ho et al. 2019). A flow's density is over
// continuous y = (x + u) / K; uniform dequantization draws u from the unit cube,
// which leaves the model to spread its mass flat over every bin. Here u is
// drawn from q(u|x), itself a flow conditioned on x and trained with the model:
//   eps ~ N(0, I),  z = couplings(eps; h(x)),  u = sigmoid(z),
//   log q(u|x) = log N(eps) - log|det du/deps|.
// The bound E_q[log p(y) - log q(u|x)] - D log K is then tighter by the KL from
// q to the model's own within-bin posterior.
//
// The network: a context h(x) (two 3x3 convolutions), an elementwise affine
// (mu(h), sigma(h)) and `couplings` affine couplings on alternating checkerboard
// halves whose conditioners see the kept half and h. Every last layer starts at
// zero, so a new q is the logistic-normal sigmoid(N(0, 1)) per sub-pixel.
#pragma once

#include <torch/torch.h>

#include <string>

#include "tame/common.h"
#include "tame/models/flows/transforms.h"

namespace tame::flows {

class VariationalDequantizer : public torch::nn::Module {
 public:
  VariationalDequantizer(ImageShape shape, int64_t levels, int64_t couplings, int64_t hidden,
                         double scale_bound);
  /// u ~ q(u|x) in (0, 1) and log q(u|x) [B] (nats), for integer x [B, C, H, W].
  std::pair<torch::Tensor, torch::Tensor> sample(const torch::Tensor& x);
  /// The map eps -> u given x, with log|det du/deps| [B]; sample() applies it to
  /// standard normal eps.
  Result transform(const torch::Tensor& eps, const torch::Tensor& x);
  /// The inverse map u -> eps given x as a coder's program (codec/flow_coder.h):
  /// the logit, the couplings last to first and the affine, inverted, with the
  /// context h(x) as the program's context network.
  FlowProgram program(ImageShape shape) const;

 private:
  int64_t levels_;
  double bound_;
  torch::nn::Sequential context_{nullptr};
  torch::nn::Conv2d affine_{nullptr};
  std::vector<Conditioner> couplings_;
  std::vector<torch::Tensor> masks_;
};

/// "uniform" -> nullptr, "variational" -> a VariationalDequantizer; anything
/// else is an error naming the choices.
std::shared_ptr<VariationalDequantizer> make_dequantizer(const std::string& kind, ImageShape shape,
                                                         int64_t levels, int64_t couplings,
                                                         int64_t hidden);

}  // namespace tame::flows
