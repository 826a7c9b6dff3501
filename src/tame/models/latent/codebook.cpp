#include "tame/models/latent/codebook.h"

#include <cmath>

#include "tame/nn/autocast.h"
#include "tame/ranks.h"

namespace tame {

namespace {
constexpr double kLaplace = 1e-5;  // the moving averages' smoothing of the counts
}

Codebook::Codebook(torch::nn::Module& owner, const std::string& prefix, int64_t codes, int64_t dim,
                   double gamma)
    : codes_(codes), gamma_(gamma) {
  const double a = 1.0 / static_cast<double>(codes);
  entries_ = owner.register_parameter(prefix + "codebook", torch::rand({codes, dim}) * (2 * a) - a);
  ema_count_ = owner.register_buffer(prefix + "ema_count", torch::ones({codes}));
  ema_sum_ = owner.register_buffer(prefix + "ema_sum", entries_.detach().clone());
  usage_ = owner.register_buffer(prefix + "usage", torch::zeros({codes}));
}

// The codebook's distances, averages and restarts run in fp32 even inside a
// bf16 step (--precision): rounded distances would pick other codes.
Quantized Codebook::quantize(const torch::Tensor& z_e_in) const {
  AutocastScope exact(torch::kFloat, z_e_in.device());
  const auto z_e = full_precision(z_e_in);
  const auto z = z_e.detach(), e = entries_.detach();
  auto d = z.pow(2).sum(1, true) - 2 * torch::matmul(z, e.t()) + e.pow(2).sum(1).unsqueeze(0);
  Quantized q;
  q.index = d.argmin(1);
  auto chosen = entries_.index_select(0, q.index);
  q.z_q = z_e + (chosen - z_e).detach();
  q.codebook = (z - chosen).pow(2).sum(1);
  q.commitment = (z_e - chosen.detach()).pow(2).sum(1);
  return q;
}

void Codebook::ema_update(const torch::Tensor& z_e_in, const torch::Tensor& index) {
  torch::NoGradGuard g;
  AutocastScope exact(torch::kFloat, z_e_in.device());
  const auto z_e = full_precision(z_e_in);
  auto onehot = torch::one_hot(index, codes_).to(z_e.dtype());  // [N, K]
  auto counts = onehot.sum(0), sums = torch::matmul(onehot.t(), z_e.detach());
  sum_over_ranks_({counts, sums});  // a data-parallel run: the global batch's
  ema_count_.mul_(gamma_).add_(counts, 1 - gamma_);
  ema_sum_.mul_(gamma_).add_(sums, 1 - gamma_);
  const auto n = ema_count_.sum();
  auto smoothed = (ema_count_ + kLaplace) / (n + codes_ * kLaplace) * n;
  entries_.copy_(ema_sum_ / smoothed.unsqueeze(1));
}

void Codebook::count(const torch::Tensor& index) {
  torch::NoGradGuard g;
  auto counts = torch::bincount(index.flatten(), {}, codes_).to(usage_.dtype());
  sum_over_ranks_({counts});
  usage_.add_(counts);
}

void Codebook::clear_usage() {
  torch::NoGradGuard g;
  usage_.zero_();
}

int64_t Codebook::restart_unused(const torch::Tensor& z_e_in) {
  torch::NoGradGuard g;
  const auto z_e = full_precision(z_e_in);
  auto dead = (usage_ == 0).nonzero().squeeze(1);
  const int64_t n = dead.size(0), rows = z_e.size(0);
  if (n > 0 && rows > 0) {
    auto pick =
        n <= rows
            ? torch::randperm(rows, torch::TensorOptions().device(z_e.device())).slice(0, 0, n)
            : torch::randint(rows, {n},
                             torch::TensorOptions().dtype(torch::kLong).device(z_e.device()));
    auto fresh = z_e.detach().index_select(0, pick);
    entries_.index_copy_(0, dead, fresh);
    ema_sum_.index_copy_(0, dead, fresh);
    ema_count_.index_fill_(0, dead, 1.0);
    // Every rank has the same dead entries (the usage is summed), but each
    // restarts them from its own shard: rank 0's restart is the run's.
    copy_from_rank0_({entries_, ema_sum_, ema_count_});
  }
  usage_.zero_();
  return n;
}

torch::Tensor Codebook::mix(const torch::Tensor& weights) const {
  return torch::matmul(weights, entries_);
}

std::pair<double, double> codebook_usage(const torch::Tensor& counts) {
  auto c = counts.to(torch::kCPU, torch::kDouble);
  auto p = c / std::max(1.0, c.sum().item<double>());
  const double entropy = -(p * torch::log(p.clamp_min(1e-300))).sum().item<double>();
  return {(c > 0).sum().item<double>() / static_cast<double>(c.numel()), std::exp(entropy)};
}

}  // namespace tame
