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

/// Mean NLL of `images` (uint8 [N, C, H, W]) under `model`, in batches of
/// `batch_size` (32 keeps a 28x28 model's 256-way logits, 25 MB, under glibc's
/// 32 MB mmap threshold; larger batches pay page faults on every allocation). With iw_samples > 1
/// a model with a stochastic bound reports its k-sample importance-weighted
/// bound; exact models ignore it (and report 1). A model without a likelihood
/// gets bound kNone and no numbers.
EvalResult evaluate(ImageModel& model, const torch::Tensor& images, int64_t batch_size = 32,
                    int64_t iw_samples = 1,
                    const std::function<void(int64_t done, int64_t total)>& on_batch = {});

}  // namespace tame
