// The autoregressive family: models over sub-pixels in raster order, R before
// G before B within a pixel, that export their weights into a step engine
// (step_engine.h), through which they sample and code images.
#pragma once

#include <memory>

#include "tame/models/autoregressive/step_engine.h"
#include "tame/models/image_model.h"

namespace tame {

/// Autoregressive models over sub-pixels in raster order, R before G before B
/// within a pixel, with a Categorical(K) conditional for each sub-pixel.
class AutoregressiveModel : public ImageModel {
 public:
  using ImageModel::ImageModel;
  /// Logits of every sub-pixel's conditional: [B, K, C, H, W]. Output (c, i, j)
  /// depends only on sub-pixels that precede it. By default the network on x
  /// scaled to [-1, 1]; an ensemble returns its mixture's log-probabilities.
  virtual torch::Tensor logits(const torch::Tensor& x);
  /// The network on inputs already scaled to [-1, 1] (float [B, C, H, W]);
  /// tests take gradients through it.
  virtual torch::Tensor forward_unit(const torch::Tensor& x_unit) = 0;

  /// -log p of the modelled channels (all but the given ones) under logits(x).
  torch::Tensor nll(const torch::Tensor& x) override;
  Bound bound() const override { return Bound::kExact; }
  /// The step engine over a CPU copy of the current weights; for a
  /// conditional model it models the C - G modelled channels and takes
  /// condition_context() as its context map.
  virtual std::unique_ptr<StepEngine> step_engine() = 0;
  /// The codec steps the engine through each block.
  static constexpr bool kCodec = true;
  /// The engine; nullptr for a conditional model (its context is a torch
  /// network's output, not a fixed-order one the decoder could repeat exactly).
  std::unique_ptr<ImageCoder> coder() override {
    return given_channels() > 0 ? nullptr : step_engine();
  }
  /// A conditional model's context map for its step engine from the given
  /// channels [n, G, H, W]: float [n, H, W, context_features()] on the CPU.
  /// The default throws an Error.
  virtual torch::Tensor condition_context(const torch::Tensor& given);
  /// Draws the modelled channels through the engine with condition_context(given).
  torch::Tensor sample_given(const torch::Tensor& given, double temperature) override;
  /// Convolutional autoregressive networks take images of any height and
  /// width (the codec then stores each image's size); a dense one (FVSBN,
  /// NADE, MADE) overrides this with false.
  bool any_size() const override { return true; }
  /// Draws through step_engine()'s CDFs (T = 0: each sub-pixel's most likely
  /// value given the ones drawn before it). Image b draws from its own random
  /// stream, seeded from torch's generator and b, so the samples don't depend
  /// on the thread count. A conditional model's sample() is an Error (it
  /// draws given a condition: sample_given()).
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
};

/// Draws n images of height x width from an engine (draw_images), on the
/// intra-op threads: uint8 [n, C, H, W] on the CPU (int32 above 256 levels).
torch::Tensor sample_engine(const StepEngine& engine, int64_t n, int64_t height, int64_t width,
                            double temperature, uint64_t seed, const float* context = nullptr);

}  // namespace tame
