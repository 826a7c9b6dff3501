// RealNVP — Dinh, Sohl-Dickstein & Bengio 2016, "Density estimation using Real
// NVP".
//
// Implements: the multi-scale architecture. At each scale but the last:
// 3 affine couplings with alternating checkerboard masks, a squeeze, 3 affine
// couplings with alternating channel masks, then half the channels are factored
// out to the standard normal base and the other half goes on to the next scale.
// The last scale is 4 checkerboard couplings. Pixels are dequantized (uniformly
// or variationally) and logit-transformed first.
// Numerical safety: each coupling's log-scale is s = b tanh(raw / b), so the
// scale stays within exp(+-b) (option scale_bound = b; 0 = unbounded, as in the
// paper, which used tanh times a learned scale).
// Differs from the paper: the coupling networks are 3-layer convolutional nets
// (3x3, 1x1, 3x3) without residual blocks or batch normalization.
// Defaults suit 28x28 grayscale (2 scales: 28 -> 14). For 32x32 colour use
// --set scales=3 (32 -> 16 -> 8) and more hidden channels (e.g. hidden=128).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/flows/flow_model.h"

namespace tame {

struct RealNvpOptions : FlowOptions {
  int64_t scales = 2;
  double scale_bound = 2.0;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return help_with({
        {"scales", "multi-scale scales; the image side must be divisible by 2^(scales-1)"},
        {"scale_bound", "|log-scale| < scale_bound in every coupling (0 = unbounded)"},
    });
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(RealNvpOptions, scales, hidden, scale_bound, alpha,
                                                dequantization, deq_couplings, deq_hidden)

class RealNvp : public FlowModel {
 public:
  RealNvp(const RealNvpOptions& options, ImageShape shape, int64_t levels);
  const RealNvpOptions options;
};

}  // namespace tame
