// The small image classifier of tame's FID (eval/fid.h) and of vqgan's
// perceptual loss: two 3x3 convolutions with ReLU and 2x2 max-pooling (32 and
// 64 channels), a 128-unit ReLU layer (the features), a linear layer to the
// classes; and its file, with what it was trained on.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tame/common.h"

namespace tame {

/// What the classifier reads: images (integer, or float in level units) of
/// K levels as x / (K - 1), in [0, 1].
inline torch::Tensor classifier_input(const torch::Tensor& x, int64_t levels) {
  return x.to(torch::kFloat) / static_cast<double>(levels - 1);
}

class FidClassifierImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kFeatures = 128;
  FidClassifierImpl(ImageShape shape, int64_t classes);
  /// Class logits [B, classes] of images in [0, 1].
  torch::Tensor forward(const torch::Tensor& x_unit);
  /// The penultimate features [B, kFeatures].
  torch::Tensor features(const torch::Tensor& x_unit);
  /// Every layer's activations: both convolutions' (after ReLU) and the
  /// features, for a perceptual distance.
  std::vector<torch::Tensor> activations(const torch::Tensor& x_unit);
  ImageShape shape() const { return shape_; }

 private:
  ImageShape shape_;
  torch::nn::Conv2d c1_{nullptr}, c2_{nullptr};
  torch::nn::Linear fc_{nullptr}, out_{nullptr};
};
TORCH_MODULE(FidClassifier);

/// A trained classifier and what it was trained on: data (the spec), classes,
/// image_shape, seed, epochs, test_accuracy.
struct TrainedClassifier {
  FidClassifier net{nullptr};
  nlohmann::json meta;
};

/// Classifier files: io/container.h with magic "TAMEFIDC", written atomically.
void save_classifier(const std::string& path, const TrainedClassifier& c);
TrainedClassifier load_classifier(const std::string& path);

}  // namespace tame
