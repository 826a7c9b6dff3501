// Pixel likelihoods and the one bits/dim function.
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

/// -log p(x) per image, in nats, for a Categorical over K levels per sub-pixel.
/// logits: [B, K, C, H, W]; x: integer [B, C, H, W] with values in [0, K).
torch::Tensor categorical_nll(const torch::Tensor& logits, const torch::Tensor& x);

/// -log p(x) per image, in nats, for independent Bernoulli pixels.
/// logits: [B, C, H, W] (log-odds of 1); x: {0, 1} values of the same shape.
torch::Tensor bernoulli_nll(const torch::Tensor& logits, const torch::Tensor& x);

/// -log p(x) per image, in nats, for the discretized logistic (PixelCNN++,
/// Salimans et al. 2017) over K levels: level x covers [c - h, c + h] on the
/// [-1, 1] scale, c = 2x/(K-1) - 1, h = 1/(K-1), with the two edge levels
/// extended to -inf and +inf, so that the K probabilities sum to 1.
/// mean, log_scale, x: [B, C, H, W].
torch::Tensor discretized_logistic_nll(const torch::Tensor& mean, const torch::Tensor& log_scale,
                                       const torch::Tensor& x, int64_t levels);

/// log N(z; 0, I) summed over the last dimension: [..., D] -> [...] (the flows'
/// base and the latent models' prior; flows pass z.flatten(1)).
torch::Tensor standard_normal_log_prob(const torch::Tensor& z);

/// Probabilities of a Categorical over dim 1 at temperature T (logits / T).
torch::Tensor categorical_probs(const torch::Tensor& logits, double temperature = 1.0);

/// Maps uint8 levels [0, K) to floats in [-1, 1]: the network input of every model.
torch::Tensor scale_to_unit(const torch::Tensor& x, int64_t levels);

}  // namespace tame
