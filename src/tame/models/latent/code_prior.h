// A model with discrete codes and a prior trained over its code maps, as one
// model of images: the two-stage models (VQ-VAE and its descendants) whose
// prior is a second run, `tame train --data codes:RUN`.
//
// The codes model's posterior is deterministic, z(x) = encode_codes(x), so
//   nll(x) = -log p(x | z(x)) - log p_prior(z(x))  >=  -log p(x)
// is an upper bound on the pair's -log p(x) (p(x) >= p(x, z) for any z);
// sampling draws z from the prior and x from p(x | z). A prior with a bound of
// its own (a VAE over codes) keeps the pair an upper bound. With a codes model
// that has a codes_coder() and a prior that is a codec, the pair is a codec
// whose files cost that bound (codec/codes_coder.h).
//
// Codes in stages (VQ-VAE-2's top, then bottom; ImageModel::code_stages):
// one prior per stage, each later one conditional on what the stages before
// it fixed, so p_prior(z) = prod_s p_s(z_s | z_<s) and
//   nll(x) = -log p(x | z) - sum_s log p_s(stage_codes(z, s));
// sampling draws stage 0, then each later stage given stage_given() of the
// one before. Such a pair has no coder yet (its conditional priors' contexts
// are torch networks').
#pragma once

#include <memory>
#include <vector>

#include "tame/models/image_model.h"

namespace tame {

class CodePriorModel : public ImageModel {
 public:
  /// Throws an Error unless `prior` takes the code maps of `codes`: their
  /// shape and code_levels().
  CodePriorModel(std::shared_ptr<ImageModel> codes, std::shared_ptr<ImageModel> prior);
  /// One prior per stage of the codes, in order: each must take its stage's
  /// maps (shape, levels) and, after the first, be conditional on exactly
  /// the channels the earlier stages fix.
  CodePriorModel(std::shared_ptr<ImageModel> codes,
                 std::vector<std::shared_ptr<ImageModel>> priors);
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  Bound bound() const override { return Bound::kUpper; }
  torch::Tensor nll(const torch::Tensor& x) override;
  /// The priors' k-sample bounds where they have one; the codes are deterministic.
  torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) override;
  /// The codes model's diagnostics, and the terms of the bound: recon_nats
  /// (-log p(x | z)) and prior_nats (-log p(z)), per image; with stages also
  /// each stage's prior_nats_<stage>.
  nlohmann::json diagnostics(const torch::Tensor& images) override;
  /// The codes model's codes_coder() over the prior's coder (nullptr unless
  /// both have one and the codes have one stage): files of the pair's bound,
  /// -log2 p(x | z) - log2 p(z) bits.
  std::unique_ptr<ImageCoder> coder() override;

  ImageModel& codes_model() { return *codes_; }
  ImageModel& prior(size_t stage = 0) { return *priors_.at(stage); }

 private:
  /// -log p_s(z_s | z_<s) per image, each stage's, for code maps z.
  std::vector<torch::Tensor> prior_terms(const torch::Tensor& z, int64_t k);
  std::shared_ptr<ImageModel> codes_;
  std::vector<std::shared_ptr<ImageModel>> priors_;
};

}  // namespace tame
