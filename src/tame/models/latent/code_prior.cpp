#include "tame/models/latent/code_prior.h"

#include "tame/error.h"

namespace tame {

CodePriorModel::CodePriorModel(std::shared_ptr<ImageModel> codes, std::shared_ptr<ImageModel> prior)
    : ImageModel(codes->shape(), codes->levels()),
      codes_(std::move(codes)),
      prior_(std::move(prior)) {
  if (!codes_->has_codes()) throw Error(codes_->name() + " has no discrete codes");
  if (!prior_->has_likelihood()) throw Error("a prior over codes needs a likelihood");
  torch::NoGradGuard g;
  auto probe =
      torch::zeros({1, shape_.channels, shape_.height, shape_.width},
                   torch::TensorOptions().dtype(image_dtype(levels_)).device(codes_->device()));
  const auto map = codes_->encode_codes(probe);
  const ImageShape code_shape{map.size(1), map.size(2), map.size(3)};
  if (prior_->levels() != codes_->code_levels() || !(prior_->shape() == code_shape))
    throw Error("the prior models " + std::to_string(prior_->levels()) + "-level " +
                prior_->shape().str() + " maps, but the codes are " +
                std::to_string(codes_->code_levels()) + "-level " + code_shape.str() + " maps");
  register_module("codes", codes_);
  register_module("prior", prior_);
}

torch::Tensor CodePriorModel::nll(const torch::Tensor& x) {
  auto z = codes_->encode_codes(x);
  return codes_->codes_nll(x, z) + prior_->nll(z.to(prior_->device())).to(codes_->device());
}

torch::Tensor CodePriorModel::nll_iw(const torch::Tensor& x, int64_t k) {
  auto z = codes_->encode_codes(x);
  return codes_->codes_nll(x, z) + prior_->nll_iw(z.to(prior_->device()), k).to(codes_->device());
}

torch::Tensor CodePriorModel::sample(int64_t n, double temperature) {
  c10::InferenceMode guard;
  auto z = prior_->sample(n, temperature);
  return codes_->decode_codes(z.to(codes_->device()), temperature);
}

nlohmann::json CodePriorModel::diagnostics(const torch::Tensor& images) {
  c10::InferenceMode guard;
  nlohmann::json out = codes_->diagnostics(images);
  double recon = 0, prior = 0;
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += 256) {
    auto x = images.slice(0, b, std::min(n, b + 256)).to(codes_->device());
    auto z = codes_->encode_codes(x);
    recon += codes_->codes_nll(x, z).sum().item<double>();
    prior += prior_->nll(z.to(prior_->device())).sum().item<double>();
  }
  const double N = std::max<int64_t>(1, n);
  out["recon_nats"] = recon / N;
  out["prior_nats"] = prior / N;
  out.erase("kl_nats");  // the uniform prior's term, which the trained prior replaces
  return out;
}

std::unique_ptr<ImageCoder> CodePriorModel::coder() {
  auto prior = prior_->coder();
  return prior ? codes_->codes_coder(std::move(prior)) : nullptr;
}

}  // namespace tame
