// An exponential moving average of a model's parameters (Polyak averaging, as
// PixelCNN++ evaluates with): after optimizer step t (counted from 0),
// avg = d_t avg + (1 - d_t) w with d_t = min(D, (1 + t) / (10 + t)). The
// warm-up keeps the first evaluations from averaging in the random initial
// weights (with a constant 0.999, 15 % of the average is still the
// initialization after 1,875 steps); from t = (10 D - 1) / (1 - D) on (8,990 for
// D = 0.999), d_t = D.
// `tame train --ema D` keeps one; the loop evaluates with the averages
// swapped in, the checkpoint stores them beside the trained weights
// ("average.<name>"), and load_trained_model() loads the averages as the
// model's weights, so `tame eval`, `sample` and `compress` use them.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

namespace tame {

class WeightAverage {
 public:
  /// Starts every average at the module's current parameters; 0 <= decay < 1.
  WeightAverage(torch::nn::Module& module, double decay);
  /// avg = d avg + (1 - d) w for every parameter w, d = decay_at(step).
  void update(int64_t step);
  /// The decay after optimizer step `step` (from 0): min(decay, (1 + step) / (10 + step)).
  double decay_at(int64_t step) const;
  /// Restarts the averages at the current parameters.
  void reset();
  /// Exchanges the parameters' values with the averages (twice: back again).
  void swap();
  /// Writes the averages into the parameters (a model that only evaluates).
  void copy_to_model();
  /// The averages, in the order of named_parameters(), with their names.
  const std::vector<std::string>& names() const { return names_; }
  std::vector<torch::Tensor>& averages() { return avg_; }
  double decay() const { return decay_; }

  /// Swaps the averages in for a scope, and back at its end.
  class Swapped {
   public:
    explicit Swapped(WeightAverage* a) : a_(a) {
      if (a_) a_->swap();
    }
    ~Swapped() {
      if (a_) a_->swap();
    }
    Swapped(const Swapped&) = delete;
    Swapped& operator=(const Swapped&) = delete;

   private:
    WeightAverage* a_;
  };

 private:
  torch::nn::Module& module_;
  double decay_;
  std::vector<std::string> names_;
  std::vector<torch::Tensor> params_, avg_;
};

}  // namespace tame
