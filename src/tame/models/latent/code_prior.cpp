#include "tame/models/latent/code_prior.h"

#include "tame/error.h"

namespace tame {

CodePriorModel::CodePriorModel(std::shared_ptr<ImageModel> codes, std::shared_ptr<ImageModel> prior)
    : CodePriorModel(std::move(codes), std::vector<std::shared_ptr<ImageModel>>{std::move(prior)}) {
}

CodePriorModel::CodePriorModel(std::shared_ptr<ImageModel> codes,
                               std::vector<std::shared_ptr<ImageModel>> priors)
    : ImageModel(codes->shape(), codes->levels()),
      codes_(std::move(codes)),
      priors_(std::move(priors)) {
  if (!codes_->has_codes()) throw Error(codes_->name() + " has no discrete codes");
  const auto stages = codes_->code_stages();
  if (priors_.size() != stages.size())
    throw Error("the codes have " + std::to_string(stages.size()) + " stage(s), and " +
                std::to_string(priors_.size()) + " prior(s) were given");
  torch::NoGradGuard g;
  auto probe =
      torch::zeros({1, shape_.channels, shape_.height, shape_.width},
                   torch::TensorOptions().dtype(image_dtype(levels_)).device(codes_->device()));
  const auto map = codes_->encode_codes(probe);
  for (size_t s = 0; s < priors_.size(); ++s) {
    const auto& prior = priors_[s];
    const std::string stage = stages[s].empty() ? "" : " (stage " + stages[s] + ")";
    if (!prior->has_likelihood()) throw Error("a prior over codes needs a likelihood");
    const auto m = codes_->stage_codes(map, static_cast<int64_t>(s));
    const ImageShape code_shape{m.size(1), m.size(2), m.size(3)};
    if (prior->levels() != codes_->code_levels() || !(prior->shape() == code_shape))
      throw Error("the prior" + stage + " models " + std::to_string(prior->levels()) + "-level " +
                  prior->shape().str() + " maps, but the codes are " +
                  std::to_string(codes_->code_levels()) + "-level " + code_shape.str() + " maps");
    const int64_t given = codes_->stage_given_channels(static_cast<int64_t>(s));
    if (prior->given_channels() != given)
      throw Error("the prior" + stage + " is given " + std::to_string(prior->given_channels()) +
                  " channel(s), but the stage gives " + std::to_string(given));
    register_module(s == 0 ? "prior" : "prior" + std::to_string(s), prior);
  }
  register_module("codes", codes_);
}

std::vector<torch::Tensor> CodePriorModel::prior_terms(const torch::Tensor& z, int64_t k) {
  std::vector<torch::Tensor> out;
  for (size_t s = 0; s < priors_.size(); ++s) {
    auto& p = *priors_[s];
    auto m = codes_->stage_codes(z, static_cast<int64_t>(s)).to(p.device());
    out.push_back((k > 1 ? p.nll_iw(m, k) : p.nll(m)).to(codes_->device()));
  }
  return out;
}

torch::Tensor CodePriorModel::nll(const torch::Tensor& x) {
  auto z = codes_->encode_codes(x);
  auto total = codes_->codes_nll(x, z);
  for (const auto& t : prior_terms(z, 1)) total = total + t;
  return total;
}

torch::Tensor CodePriorModel::nll_iw(const torch::Tensor& x, int64_t k) {
  auto z = codes_->encode_codes(x);
  auto total = codes_->codes_nll(x, z);
  for (const auto& t : prior_terms(z, k)) total = total + t;
  return total;
}

torch::Tensor CodePriorModel::sample(int64_t n, double temperature) {
  c10::InferenceMode guard;
  auto z = priors_.front()->sample(n, temperature);
  for (size_t s = 1; s < priors_.size(); ++s) {
    auto& p = *priors_[s];
    auto given = codes_->stage_given(z, static_cast<int64_t>(s)).to(p.device());
    z = p.sample_given(given, temperature);
  }
  return codes_->decode_codes(z.to(codes_->device()), temperature);
}

nlohmann::json CodePriorModel::diagnostics(const torch::Tensor& images) {
  c10::InferenceMode guard;
  nlohmann::json out = codes_->diagnostics(images);
  const auto stages = codes_->code_stages();
  double recon = 0;
  std::vector<double> prior(priors_.size(), 0.0);
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += 256) {
    auto x = images.slice(0, b, std::min(n, b + 256)).to(codes_->device());
    auto z = codes_->encode_codes(x);
    recon += codes_->codes_nll(x, z).sum().item<double>();
    const auto terms = prior_terms(z, 1);
    for (size_t s = 0; s < terms.size(); ++s) prior[s] += terms[s].sum().item<double>();
  }
  const double N = std::max<int64_t>(1, n);
  out["recon_nats"] = recon / N;
  double total = 0;
  for (size_t s = 0; s < prior.size(); ++s) {
    total += prior[s];
    if (prior.size() > 1) out["prior_nats_" + stages[s]] = prior[s] / N;
  }
  out["prior_nats"] = total / N;
  out.erase("kl_nats");  // the uniform prior's term, which the trained prior replaces
  return out;
}

std::unique_ptr<ImageCoder> CodePriorModel::coder() {
  if (priors_.size() != 1) return nullptr;
  auto prior = priors_.front()->coder();
  return prior ? codes_->codes_coder(std::move(prior)) : nullptr;
}

}  // namespace tame
