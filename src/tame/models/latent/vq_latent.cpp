#include "tame/models/latent/vq_latent.h"

namespace tame {

VqLatentModel::VqLatentModel(ImageShape shape, int64_t levels, PixelLikelihood likelihood,
                             int64_t positions, int64_t codes)
    : LatentModel(shape, levels, likelihood, 1.0, 1), positions_(positions), codes_(codes) {}

torch::Tensor VqLatentModel::posterior_mode(const Posterior& q) {
  return torch::one_hot(q.a, codes_).to(q.b.dtype());  // [B, L, K]
}

torch::Tensor VqLatentModel::draw(const Posterior& q, int64_t n, bool) {
  auto z = posterior_mode(q);
  return z.unsqueeze(0).expand({n, z.size(0), z.size(1), z.size(2)});
}

torch::Tensor VqLatentModel::log_q(const Posterior&, const torch::Tensor& z) {
  return torch::zeros({z.size(0), z.size(1)}, z.options());
}

torch::Tensor VqLatentModel::log_prior(const torch::Tensor& z) {
  return torch::full({z.size(0), z.size(1)}, -uniform_prior_nats(), z.options());
}

torch::Tensor VqLatentModel::kl(const Posterior& q, const torch::Tensor&) {
  return torch::full({q.a.size(0)}, uniform_prior_nats(), q.b.options());
}

torch::Tensor VqLatentModel::prior_draw(int64_t n) {
  auto index = torch::randint(codes_, {n, positions_},
                              torch::TensorOptions().dtype(torch::kLong).device(device()));
  return torch::one_hot(index, codes_).to(torch::kFloat);
}

}  // namespace tame
