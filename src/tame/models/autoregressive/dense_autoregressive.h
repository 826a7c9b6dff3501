// The dense autoregressive models (FVSBN, NADE, MADE): every conditional reads
// the whole prefix of earlier sub-pixels through per-dimension weights, so the
// model is built for one image shape. What they share lives here: the flat
// sub-pixel order, the head with one logit for binary images and K logits
// otherwise, and the step-engine base that keeps the whole image as its input.
//
// Sub-pixel order: dimension d = (i * W + j) * C + c, raster order with
// R -> G -> B inside a pixel, the order of every autoregressive model in tame.
#pragma once

#include <memory>

#include "tame/models/autoregressive/autoregressive_model.h"

namespace tame {

/// A dense autoregressive model over D = C*H*W sub-pixels of one image shape.
/// For K = 2 each conditional is Bernoulli(sigmoid(l_d)) with one logit l_d
/// (written as the categorical logits (0, l_d)); for K > 2 a K-way softmax.
class DenseAutoregressiveModel : public AutoregressiveModel {
 public:
  DenseAutoregressiveModel(ImageShape shape, int64_t levels);
  /// The network's logits on flat inputs x [B, D] in [-1, 1]: [B, D, outputs()].
  virtual torch::Tensor flat_logits(const torch::Tensor& x) = 0;
  torch::Tensor forward_unit(const torch::Tensor& x_unit) override;
  bool any_size() const override { return false; }
  int64_t dims() const { return D_; }
  /// Logits per conditional: 1 for binary images, K otherwise.
  int64_t outputs() const { return outputs_; }

 protected:
  int64_t D_, outputs_;
};

/// A tensor's values as floats on the CPU, in its row-major order: how the
/// dense models export their weights into their engines.
std::vector<float> to_floats(const torch::Tensor& t);

/// [B, C, H, W] -> [B, D] in sub-pixel order.
torch::Tensor to_subpixels(const torch::Tensor& x);
/// [B, D, K] logits in sub-pixel order -> [B, K, C, H, W].
torch::Tensor from_subpixels(const torch::Tensor& logits, const ImageShape& shape);

/// The step engine of a dense model: the input ring holds the whole image
/// (row r in slot r), so x() is image b's D sub-pixels in [-1, 1] in sub-pixel
/// order (unknown ones 0). A dense engine takes one image size only.
class DenseEngine : public StepEngine {
 public:
  DenseEngine(ImageShape shape, int64_t levels);

 protected:
  /// Kind 200 with the image size; each model's hash() adds a kind of its own
  /// (201 fvsbn, 202 nade, 203 made) before its weights.
  Identity identity() const override { return {200, 0, {shape_.height, shape_.width}}; }
  /// Resets the per-image state for n images.
  virtual void reset(int64_t n) = 0;
  /// Writes the head's parameters [n][params()] of dimension d; called for
  /// d = 0, 1, ... in order, after dimensions < d were observed.
  virtual void compute_dim(int64_t d, float* params) = 0;

  int64_t input_rows() const override { return H_; }
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  /// Image b's sub-pixels in [-1, 1], [D].
  const float* x(int64_t b) const { return x_.data() + b * D_; }
  /// The observed value of dimension d of image b.
  uint16_t value(int64_t b, int64_t d) const;
  /// One image's categorical logits [K] from its network's `outputs` logits
  /// (binary: (0, l)).
  void expand_logits(const float* out, float* logits) const;
  /// expand_logits for each of the n images: [n][outputs] -> [n][K].
  void write_logits(const float* out, float* params) const;

  ImageShape shape_;
  int64_t D_, outputs_;
};

}  // namespace tame
