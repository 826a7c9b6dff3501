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
#pragma once

#include <memory>

#include "tame/models/image_model.h"

namespace tame {

class CodePriorModel : public ImageModel {
 public:
  /// Throws an Error unless `prior` takes the code maps of `codes`: their
  /// shape and code_levels().
  CodePriorModel(std::shared_ptr<ImageModel> codes, std::shared_ptr<ImageModel> prior);
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  Bound bound() const override { return Bound::kUpper; }
  torch::Tensor nll(const torch::Tensor& x) override;
  /// The prior's k-sample bound where it has one; the codes are deterministic.
  torch::Tensor nll_iw(const torch::Tensor& x, int64_t k) override;
  /// The codes model's diagnostics, and the two terms of the bound: recon_nats
  /// (-log p(x | z)) and prior_nats (-log p(z)), per image.
  nlohmann::json diagnostics(const torch::Tensor& images) override;
  /// The codes model's codes_coder() over the prior's coder (nullptr unless
  /// both have one): files of the pair's bound, -log2 p(x | z) - log2 p(z) bits.
  std::unique_ptr<ImageCoder> coder() override;

  ImageModel& codes_model() { return *codes_; }
  ImageModel& prior() { return *prior_; }

 private:
  std::shared_ptr<ImageModel> codes_, prior_;
};

}  // namespace tame
