// Cached incremental evaluation of convolutional autoregressive models
// (Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive
// Models"): every layer keeps its past activations, so the conditional of the
// next sub-pixel costs one position's work instead of a pass over the image.
//
// The sampler and the codec drive the same interface in the same order:
//   begin(n); for each sub-pixel in raster order, R -> G -> B within a pixel:
//     logits = conditional(); choose or code one value per image; observe(values)
// The engine computes with the fixed-order kernels of nn/step_kernels.h, so its
// logits are a function of the image alone: the encoder and the decoder of the
// codec see identical bits whatever the thread count or batch. The torch models
// export their weights into an engine (AutoregressiveModel::step_engine());
// the engines themselves are free of LibTorch.
//
// Within a pixel, the step for colour c runs the whole position again with
// colours >= c not yet known (held at 0); the channel masks make the outputs of
// colour c independent of them, so C colours cost C position passes.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "tame/nn/step_kernels.h"

namespace tame {

class StepEngine {
 public:
  StepEngine(int64_t channels, int64_t height, int64_t width, int64_t levels);
  virtual ~StepEngine() = default;
  /// A fresh engine sharing these weights, with its own state: one per thread.
  virtual std::unique_ptr<StepEngine> clone() const = 0;
  /// Hash of the geometry and every weight: which conditionals this engine gives.
  virtual uint64_t fingerprint() const = 0;

  /// Starts n images with every sub-pixel unknown.
  void begin(int64_t n);
  /// Logits [n][levels] of the next sub-pixel given all earlier ones; valid
  /// until the next call.
  const float* conditional();
  /// Fixes the sub-pixel that conditional() described: values[b] for image b.
  void observe(const uint8_t* values);
  /// The images so far, [n][C][H][W] (unknown sub-pixels are 0).
  std::vector<uint8_t> images() const;

  int64_t channels() const { return C_; }
  int64_t height() const { return H_; }
  int64_t width() const { return W_; }
  int64_t levels() const { return K_; }
  int64_t sub_pixels() const { return C_ * H_ * W_; }

 protected:
  /// Allocates the caches for n images.
  virtual void start(int64_t n) = 0;
  /// Writes the logits [n][levels] of sub-pixel c of pixel (i, j); called in order.
  virtual void compute(int64_t i, int64_t j, int64_t c, float* logits) = 0;

  int64_t C_, H_, W_, K_;
  int64_t n_ = 0;
  std::vector<float> x_;  // [n][H][W][C], levels mapped to [-1, 1] as scale_to_unit does

 private:
  std::vector<float> logits_;
  std::vector<uint8_t> values_;  // [n][H][W][C]
  int64_t next_ = 0;             // index of the next sub-pixel, raster order
  bool pending_ = false;
};

/// The plain PixelCNN of pixelcnn.h, step by step.
class PixelCNNEngine : public StepEngine {
 public:
  struct Block {
    steps::Dense reduce;  // 1x1, 2h -> h, after relu
    steps::Conv conv;     // k x k mask B, h -> h, after relu
    steps::Dense expand;  // 1x1, h -> 2h, after relu; added to the block input
  };
  struct Net {
    steps::Conv input;  // mask A, C -> 2h
    std::vector<Block> blocks;
    steps::Dense out1, out2;  // after relu each; out2 gives feature k*C + c
  };
  PixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t height, int64_t width,
                 int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;
  uint64_t fingerprint() const override;

 protected:
  void start(int64_t n) override;
  void compute(int64_t i, int64_t j, int64_t c, float* logits) override;

 private:
  std::shared_ptr<const Net> net_;
  std::vector<std::vector<float>> cache_;  // per block: relu(reduce(relu(h))) [n][H][W][h]
  std::vector<float> rows_, h_, t_, u_, e_, o1_, o2_;
};

/// The Gated PixelCNN of gated_pixelcnn.h, step by step. The vertical stack of
/// a row sees that whole row, so it runs once per row, when the row is known;
/// the horizontal stack runs per position.
class GatedPixelCNNEngine : public StepEngine {
 public:
  struct Layer {
    steps::Conv v;      // vertical, (k/2+1) x k
    steps::Conv h;      // horizontal, 1 x (k/2+1), mask A (first) or B
    steps::Dense v2h;   // 1x1 from the vertical pre-activation of the row above
    steps::Dense hout;  // 1x1 residual branch (absent in the first layer)
    bool first = false;
  };
  struct Net {
    int64_t hidden = 0;
    std::vector<Layer> layers;
    steps::Dense out1, out2;
  };
  GatedPixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t height,
                      int64_t width, int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;
  uint64_t fingerprint() const override;

 protected:
  void start(int64_t n) override;
  void compute(int64_t i, int64_t j, int64_t c, float* logits) override;

 private:
  void vertical_row(int64_t i);  // the vertical stack on row i, and v2h of it for row i + 1

  std::shared_ptr<const Net> net_;
  std::vector<std::vector<float>> v_;  // per layer: gated vertical output [n][H][W][hidden]
  std::vector<std::vector<float>> h_;  // per layer: horizontal output [n][H][W][hidden]
  std::vector<std::vector<float>>
      vh_;  // per layer: v2h(vertical pre-activation of row i-1) [n][W][2 hidden]
  int64_t vertical_done_ = -1;  // vh_ holds the link for row vertical_done_ + 1
  std::vector<float> rows_, pre_, g_, t_, o1_, o2_;
};

}  // namespace tame
