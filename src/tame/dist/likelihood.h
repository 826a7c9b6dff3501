// The one bits/dim function, and small helpers the pixel likelihoods
// (pixel_likelihood.h) and the models share.
//
// Every model reports nats per image; bits per dimension is computed here and
// nowhere else: bpd = nll_nats / (C*H*W * ln 2). With uniform logits a
// Categorical(K) pixel costs exactly log2 K bits, so 8.000 for 8-bit data and
// 1.000 for binarized data.
#pragma once

#include <torch/torch.h>

namespace tame {

/// Bits per dimension of a per-image NLL in nats (double or tensor).
double bits_per_dim(double nll_nats, int64_t dims);
torch::Tensor bits_per_dim(const torch::Tensor& nll_nats, int64_t dims);

/// -log p(x) per image, in nats, for a Categorical over K levels per sub-pixel:
/// -Categorical(logits).log_prob(x) (pixel_likelihood.h), the form the
/// autoregressive models call. logits: [B, K, C, H, W]; x: integer [B, C, H, W]
/// with values in [0, K).
torch::Tensor categorical_nll(const torch::Tensor& logits, const torch::Tensor& x);

/// log N(z; 0, I) summed over the last dimension: [..., D] -> [...] (the flows'
/// base and the latent models' prior; flows pass z.flatten(1)).
torch::Tensor standard_normal_log_prob(const torch::Tensor& z);

/// Probabilities of a Categorical over dim 1 at temperature T (logits / T).
torch::Tensor categorical_probs(const torch::Tensor& logits, double temperature = 1.0);

/// Maps uint8 levels [0, K) to floats in [-1, 1]: the network input of every model.
torch::Tensor scale_to_unit(const torch::Tensor& x, int64_t levels);

}  // namespace tame
