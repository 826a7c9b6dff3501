// The autoregressive family: models over sub-pixels in raster order, R before
// G before B within a pixel, that export their weights into a cached step
// engine (step_engine.h) for sampling and for the codec.
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
  /// depends only on sub-pixels that precede it.
  torch::Tensor logits(const torch::Tensor& x);
  /// The network on inputs already scaled to [-1, 1] (float [B, C, H, W]);
  /// tests take gradients through it.
  virtual torch::Tensor forward_unit(const torch::Tensor& x_unit) = 0;

  torch::Tensor nll(const torch::Tensor& x) override;
  Bound bound() const override { return Bound::kExact; }
  /// The cached step engine (step_engine.h) over a CPU copy of the current
  /// weights, or nullptr for a model without one.
  virtual std::unique_ptr<StepEngine> step_engine() { return nullptr; }
  /// Sampling through step_engine() when the model has one, else naive. Image b
  /// draws from its own random stream, seeded from torch's generator and b, so
  /// the samples don't depend on the thread count.
  torch::Tensor sample(int64_t n, double temperature = 1.0) override;
  /// Naive sampling: one network pass per sub-pixel, over the rows generated so
  /// far (outputs on row i depend only on rows <= i).
  torch::Tensor sample_naive(int64_t n, double temperature = 1.0);
};

/// Draws n images from an engine, splitting them over the intra-op threads.
/// Image b uses the random stream (seed, b). Returns uint8 [n, C, H, W] on the CPU.
torch::Tensor sample_engine(const StepEngine& engine, int64_t n, double temperature, uint64_t seed);

}  // namespace tame
