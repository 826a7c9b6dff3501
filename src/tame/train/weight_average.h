// An exponential moving average of a model's parameters (Polyak averaging, as
// PixelCNN++ evaluates with): after every optimizer step, avg = d avg + (1 - d)
// w. `tame train --ema D` keeps one; the loop evaluates with the averages
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
  /// avg = decay avg + (1 - decay) w, for every parameter w.
  void update();
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
