// Pixel likelihoods as types: the distribution of an integer image given the
// parameters a network emitted for it, one independent distribution per
// sub-pixel (DESIGN.md, "Likelihoods are types in dist/").
//
// Every type answers the same questions about a batch of images over K levels:
//   log_prob(x)     log p(x) per image, in nats, summed over the sub-pixels: [B]
//   log_pmf()       log p(x = k) of every level: [B, K, C, H, W]
//   sample(T)       integer images [B, C, H, W] at temperature T; T = 0: the mode
//   mean()          E[x] in level units [0, K-1], float [B, C, H, W]
// and each says how many network outputs one sub-pixel takes
// (params_per_subpixel).
//
// Parameter layout. A network emits features [B, P C, H, W] for C image
// channels; parameter j of channel c sits at feature j C + c, so the features
// view as [B, P, C, H, W]. Categorical: P = K logits (feature k C + c, as the
// autoregressive models emit them). Discretized logistic: P = 2, the C
// locations then the C log-scales. Bernoulli: P = 1, the log-odds of a 1.
//
// A decoder holds a PixelLikelihood (below), chosen by name, which knows how
// many features to ask of the network and turns them into a distribution.
//
// The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017) plugs
// in as one more PixelDistribution and one more row of pixel_likelihoods():
// its parameters are per pixel, not per sub-pixel (M mixture logits shared by
// the channels, then per channel M locations and M log-scales, and M
// coefficients per earlier channel), which is why a PixelLikelihood reports its
// features for C channels rather than a per-sub-pixel count. Through the
// coefficients, channel c's location depends on the values of the channels
// before it, so the mixture takes those values when it is built (the true image
// to score or code it, the drawn one while sampling channel by channel).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tame/common.h"            // image_dtype
#include "tame/dist/integer_cdf.h"  // PixelKind

namespace tame {

/// A distribution over integer images [B, C, H, W] with values in [0, K).
class PixelDistribution {
 public:
  virtual ~PixelDistribution() = default;
  /// log p(x) per image in nats, [B]; x integer [B, C, H, W] in [0, K).
  virtual torch::Tensor log_prob(const torch::Tensor& x) const = 0;
  /// log p(x = k) for every level k: [B, K, C, H, W].
  virtual torch::Tensor log_pmf() const = 0;
  /// Images drawn at temperature T >= 0 (each type says what T scales); T = 0
  /// gives the most likely level of every sub-pixel. dtype image_dtype(K).
  virtual torch::Tensor sample(double temperature = 1.0) const = 0;
  /// E[x] in level units [0, K-1]: float [B, C, H, W].
  virtual torch::Tensor mean() const = 0;
  /// The coder's exact integer CDF of every sub-pixel, written by the
  /// deterministic functions of integer_cdf.h from the float parameters (on
  /// the CPU): int64 [B, C, H, W, K + 1], 0 = cdf[0] < ... < cdf[K] = 2^precision.
  virtual torch::Tensor integer_cdf(uint32_t precision) const = 0;
  int64_t levels() const { return levels_; }

 protected:
  explicit PixelDistribution(int64_t levels);
  int64_t levels_;
};

/// Independent Bernoulli sub-pixels (K = 2) from their log-odds of a 1,
/// logits [B, C, H, W]. Temperature divides the logits.
class Bernoulli : public PixelDistribution {
 public:
  static int64_t params_per_subpixel(int64_t levels) { return 1; }
  explicit Bernoulli(torch::Tensor logits);
  torch::Tensor log_prob(const torch::Tensor& x) const override;
  torch::Tensor log_pmf() const override;
  torch::Tensor sample(double temperature = 1.0) const override;
  torch::Tensor mean() const override;  // sigmoid(logits)
  torch::Tensor integer_cdf(uint32_t precision) const override;
  const torch::Tensor& logits() const { return logits_; }

 private:
  torch::Tensor logits_;
};

/// A K-way softmax per sub-pixel. Temperature divides the logits.
class Categorical : public PixelDistribution {
 public:
  static int64_t params_per_subpixel(int64_t levels) { return levels; }
  /// logits [B, K, C, H, W].
  explicit Categorical(torch::Tensor logits);
  /// Network features [B, K C, H, W], logit of level k for channel c at k C + c.
  Categorical(const torch::Tensor& features, int64_t channels);
  torch::Tensor log_prob(const torch::Tensor& x) const override;
  torch::Tensor log_pmf() const override;  // log_softmax over the levels
  torch::Tensor sample(double temperature = 1.0) const override;
  torch::Tensor mean() const override;  // sum_k k softmax(logits)_k
  torch::Tensor integer_cdf(uint32_t precision) const override;
  const torch::Tensor& logits() const { return logits_; }

 private:
  torch::Tensor logits_;
};

/// The discretized logistic of PixelCNN++ (Salimans et al. 2017) over K
/// levels: level x covers [c - h, c + h] on the [-1, 1] scale,
/// c = 2x/(K-1) - 1, h = 1/(K-1), the two edge levels extended to -inf and
/// +inf so that the K probabilities sum to 1. Log-scales below kMinLogScale
/// are raised to it (PixelCNN++'s floor). Temperature multiplies the scale.
class DiscretizedLogistic : public PixelDistribution {
 public:
  static constexpr double kMinLogScale = tame::kMinLogScale;
  static int64_t params_per_subpixel(int64_t levels) { return 2; }
  /// location (on the [-1, 1] scale) and log-scale, [B, C, H, W] each.
  DiscretizedLogistic(torch::Tensor location, const torch::Tensor& log_scale, int64_t levels);
  /// Network features [B, 2 C, H, W]: the C locations, then the C log-scales.
  DiscretizedLogistic(const torch::Tensor& features, int64_t channels, int64_t levels);
  torch::Tensor log_prob(const torch::Tensor& x) const override;
  torch::Tensor log_pmf() const override;
  torch::Tensor sample(double temperature = 1.0) const override;
  /// sum_{k=1}^{K-1} P(x >= k): the exact mean of the discretized levels.
  torch::Tensor mean() const override;
  torch::Tensor integer_cdf(uint32_t precision) const override;
  const torch::Tensor& location() const { return location_; }
  const torch::Tensor& log_scale() const { return log_scale_; }

 private:
  torch::Tensor location_, log_scale_;
};

/// The discretized logistic mixture of PixelCNN++ (Salimans et al. 2017): per
/// pixel, M components shared by its C channels. Component m gives channel c
/// the discretized logistic above, of location loc_cm + sum_{j<c}
/// tanh(coef_cjm) x_j (the linear R -> G -> B coupling of the means, x_j on
/// the [-1, 1] scale) and log-scale raised to kMinLogScale; p(x) = sum_m pi_m
/// prod_c P_cm(x_c), pi = softmax(mixture logits). Features [B,
/// mixture_features(C, M), H, W] per pixel in the layout of integer_cdf.h's
/// logistic_mixture_cdf. log_prob(x) is the joint, coupled through x itself;
/// log_pmf(), mean() and integer_cdf() are each channel's conditional given
/// the earlier channels of `values` (the image scored or coded): the
/// components reweighted by how well they explain those channels. sample()
/// draws a component per pixel, then the channels in order, each coupled to
/// the levels drawn before it. Temperature multiplies the scales; T = 0 takes
/// each channel's most likely level given the ones taken before it.
class DiscretizedLogisticMixture : public PixelDistribution {
 public:
  DiscretizedLogisticMixture(const torch::Tensor& features, int64_t channels, int64_t levels,
                             int64_t components, torch::Tensor values);
  torch::Tensor log_prob(const torch::Tensor& x) const override;
  torch::Tensor log_pmf() const override;
  torch::Tensor sample(double temperature = 1.0) const override;
  torch::Tensor mean() const override;
  torch::Tensor integer_cdf(uint32_t precision) const override;
  int64_t components() const { return components_; }

 private:
  // Every component's locations given the values x: [B, M, C, H, W].
  torch::Tensor locations(const torch::Tensor& x) const;
  // log P_cm(x_c) for every component and channel: [B, M, C, H, W].
  torch::Tensor component_log_mass(const torch::Tensor& x) const;
  // log p(x_c = k | x_<c) of channel c given the values x: [B, K, H, W].
  torch::Tensor conditional_log_pmf(const torch::Tensor& x, int64_t c) const;
  // The same from x's locations and component masses (locations(x),
  // component_log_mass(x)), for callers that need every channel of one x.
  torch::Tensor conditional_log_pmf(const torch::Tensor& loc, const torch::Tensor& log_mass,
                                    int64_t c) const;

  torch::Tensor features_, values_;
  torch::Tensor logits_;                  // [B, M, H, W]
  torch::Tensor loc_, log_scale_, coef_;  // [B, M, C, H, W] x 2, [B, M, pairs, H, W] (tanh)
  int64_t channels_, components_;
};

/// A pixel likelihood chosen by name: how many features a network emits for
/// C image channels, and the distribution those features define.
struct PixelLikelihood {
  std::string name;                          // "bernoulli" | "categorical" | "logistic"
  PixelKind kind = PixelKind::kCategorical;  // the same, for torch-free table writers
  int64_t levels = 0;
  std::function<int64_t(int64_t channels)> features;
  /// features [B, features(C), H, W] -> the distribution of [B, C, H, W] images.
  std::function<std::unique_ptr<PixelDistribution>(const torch::Tensor& features, int64_t channels)>
      make;
  std::unique_ptr<PixelDistribution> operator()(const torch::Tensor& f, int64_t channels) const {
    return make(f, channels);
  }
};

/// The names pixel_likelihood() accepts besides "auto", in order.
std::vector<std::string> pixel_likelihood_names();

/// "auto" (Bernoulli for K = 2, Categorical otherwise) or one of
/// pixel_likelihood_names(); an unknown name is an error that lists the
/// choices, and "bernoulli" needs K = 2.
PixelLikelihood pixel_likelihood(const std::string& name, int64_t levels);

}  // namespace tame
