#include "tame/train/weight_average.h"

#include <algorithm>
#include <stdexcept>

namespace tame {

WeightAverage::WeightAverage(torch::nn::Module& module, double decay)
    : module_(module), decay_(decay) {
  if (!(decay >= 0 && decay < 1))
    throw std::invalid_argument("WeightAverage: the decay must be in [0, 1)");
  for (const auto& p : module_.named_parameters()) {
    names_.push_back(p.key());
    params_.push_back(p.value());
  }
  reset();
}

void WeightAverage::reset() {
  torch::NoGradGuard g;
  avg_.clear();
  for (const auto& p : params_) avg_.push_back(p.detach().clone());
}

double WeightAverage::decay_at(int64_t step) const {
  const double t = static_cast<double>(std::max<int64_t>(step, 0));
  return std::min(decay_, (1.0 + t) / (10.0 + t));
}

void WeightAverage::update(int64_t step) {
  torch::NoGradGuard g;
  const double d = decay_at(step);
  for (size_t k = 0; k < params_.size(); ++k) avg_[k].mul_(d).add_(params_[k].detach(), 1.0 - d);
}

void WeightAverage::swap() {
  torch::NoGradGuard g;
  for (size_t k = 0; k < params_.size(); ++k) {
    auto live = params_[k].detach().clone();
    params_[k].copy_(avg_[k]);
    avg_[k].copy_(live);
  }
}

void WeightAverage::copy_to_model() {
  torch::NoGradGuard g;
  for (size_t k = 0; k < params_.size(); ++k) params_[k].copy_(avg_[k]);
}

}  // namespace tame
