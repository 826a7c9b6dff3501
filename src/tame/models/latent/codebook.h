// A codebook of vector quantization (van den Oord et al. 2017): K entries of
// D dimensions, nearest-entry quantization with the straight-through
// gradient, the moving-average update of the entries and restarts of entries
// no encoding chose. VQ-VAE keeps one, VQ-VAE-2 one per level of codes.
//
// Its tensors are registered on the model that owns it, under the names the
// owner gives (so a model's checkpoint names stay its own):
//   <prefix>codebook (a parameter), <prefix>ema_count, <prefix>ema_sum, <prefix>usage.
#pragma once

#include <torch/torch.h>

#include <string>

namespace tame {

/// The quantization of a batch of encodings.
struct Quantized {
  torch::Tensor z_q;         // z_e + sg[e - z_e]: e forward, the identity backward; [N, D]
  torch::Tensor index;       // nearest entries, long [N]
  torch::Tensor codebook;    // ||sg[z_e] - e||^2 per row [N] (moves the entries)
  torch::Tensor commitment;  // ||z_e - sg[e]||^2 per row [N] (moves the encoder)
};

class Codebook {
 public:
  /// K entries of D dimensions, uniform in +-1/K (the paper's start).
  Codebook(torch::nn::Module& owner, const std::string& prefix, int64_t codes, int64_t dim,
           double gamma);
  /// Nearest-entry quantization of rows z_e [N, D] with the straight-through gradient.
  Quantized quantize(const torch::Tensor& z_e) const;
  /// One moving-average step on rows z_e [N, D] assigned to `index` [N]:
  /// N_k <- g N_k + (1-g) n_k, m_k <- g m_k + (1-g) sum of its rows,
  /// e_k = m_k / N_k with Laplace smoothing of the counts.
  void ema_update(const torch::Tensor& z_e, const torch::Tensor& index);
  /// Counts the entries `index` chose towards the usage since the last restart.
  void count(const torch::Tensor& index);
  /// Entries unused since the last restart set to rows of z_e (drawn without
  /// replacement where there are enough); returns how many; the usage restarts.
  int64_t restart_unused(const torch::Tensor& z_e);
  /// Forgets the usage (before the data-dependent start, which restarts every entry).
  void clear_usage();
  /// Weights over the entries [..., K] times the entries: [..., D].
  torch::Tensor mix(const torch::Tensor& weights) const;
  torch::Tensor entries() const { return entries_; }

 private:
  int64_t codes_;
  double gamma_;
  torch::Tensor entries_, ema_count_, ema_sum_, usage_;
};

/// The share of the K entries chosen at least once and the perplexity (exp of
/// the entropy of the entries' frequencies) of counts [K].
std::pair<double, double> codebook_usage(const torch::Tensor& counts);

}  // namespace tame
