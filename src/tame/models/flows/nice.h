// NICE — Dinh, Krueger & Bengio 2014, "NICE: Non-linear Independent Components
// Estimation".
//
// Implements: additive couplings (log-det 0) that alternate which half of the
// dimensions they change, followed by a learned diagonal scale, on logit-
// transformed, uniformly dequantized pixels, with a standard normal prior.
// Differs from the paper: the halves are a checkerboard over each image and
// the coupling functions are small convolutional networks instead of MLPs on
// the flattened image; the prior is Gaussian (the paper also used a logistic).
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/flows/flow_model.h"

namespace tame {

struct NiceOptions : FlowOptions {
  int64_t couplings = 4;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return help_with({
        {"couplings", "additive couplings; each changes the half the previous one kept"},
    });
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(NiceOptions, couplings, hidden, alpha,
                                                dequantization, deq_couplings, deq_hidden)

class Nice : public FlowModel {
 public:
  Nice(const NiceOptions& options, ImageShape shape, int64_t levels);
  const NiceOptions options;
};

}  // namespace tame
