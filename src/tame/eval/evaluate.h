// Bits/dim evaluation over a whole split, batched, under InferenceMode.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "tame/models/image_model.h"

namespace tame {

struct EvalResult {
  int64_t images = 0;
  double nll_nats = 0;  // mean per image
  double bpd = 0;
  Bound bound = Bound::kExact;
  int64_t iw_samples = 1;
};

/// Mean NLL of `images` (uint8 [N, C, H, W]) under `model`. With iw_samples > 1
/// a model with a stochastic bound reports its k-sample importance-weighted
/// bound; exact models ignore it (and report 1).
EvalResult evaluate(ImageModel& model, const torch::Tensor& images, int64_t batch_size = 256,
                    int64_t iw_samples = 1, const std::function<void(int64_t done, int64_t total)>& on_batch = {});

}  // namespace tame
