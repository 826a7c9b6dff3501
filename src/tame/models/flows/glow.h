// Glow — Kingma & Dhariwal 2018, "Glow: Generative Flow with Invertible 1x1
// Convolutions".
//
// Implements: the multi-scale architecture of `levels` levels, each a squeeze
// followed by `steps` flow steps (ActNorm with data-dependent initialization,
// an invertible 1x1 convolution in LU form, an affine coupling on channel
// halves); after every level but the last, half the channels are factored out
// under a learned prior N(mu(z1), sigma(z1)^2) computed from the half that
// stays. Sampling at temperature T draws every base variable from N(0, T^2).
// Pixels are dequantized (uniformly or variationally) and logit-transformed
// first.
// Numerical safety: coupling and prior log-scales are b tanh(raw / b)
// (option scale_bound = b), where the paper used sigmoid(raw + 2).
// Differs from the paper: small coupling networks (hidden=64 rather than 512),
// few steps per level, no learned prior on the top level, no class conditioning.
// Defaults suit 28x28 grayscale (2 levels: 14x14x4, 7x7x8). For 32x32 colour use
// --set levels=3 (16x16x12, 8x8x24, 4x4x48).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/flows/flow_model.h"

namespace tame {

struct GlowOptions : FlowOptions {
  int64_t levels = 2;
  int64_t steps = 4;
  double scale_bound = 2.0;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return help_with({
        {"levels", "multi-scale levels; the image side must be divisible by 2^levels"},
        {"steps", "flow steps per level"},
        {"scale_bound", "|log-scale| < scale_bound in couplings and priors (0 = unbounded)"},
    });
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(GlowOptions, levels, steps, hidden, scale_bound,
                                                alpha, dequantization, deq_couplings, deq_hidden)

class Glow : public FlowModel {
 public:
  Glow(const GlowOptions& options, ImageShape shape, int64_t levels);
  const GlowOptions options;
};

}  // namespace tame
