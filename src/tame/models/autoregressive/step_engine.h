// The step engine: cached incremental evaluation of convolutional
// autoregressive networks (Ramachandran et al. 2017, "Fast Generation for
// Convolutional Autoregressive Models"), one sub-pixel at a time, for the
// sampler, the codec and VLAE's decoder alike.
//
// Every user drives it in the same way, and the engine owns the order:
//   begin(n, height, width, context);
//   while (!done()) { p = next(); write the CDFs (cdfs()) or read the
//                     parameters (conditional()); choose or code one value
//                     per image; observe(values); }
// The order is raster order, R -> G -> B within a pixel, for both engines
// here; a caller never computes positions itself, it asks next().
//
// Determinism: the engine computes with the fixed-order kernels of
// nn/step_kernels.h, and each conditional writes its integer CDF with the
// deterministic functions of dist/integer_cdf.h, so the encoder and the decoder
// of the codec see identical tables whatever the thread count or batch. The
// engine's head decides which CDF writer a conditional uses (categorical
// here; MADE's ensemble and PixelCNN++'s discretized logistic mixture are
// other heads, not other codecs). The torch models export their weights into an engine
// (AutoregressiveModel::step_engine()); the engines are free of LibTorch.
//
// Caches: the engines here are fully convolutional, so one engine serves
// images of any height and width >= 1 (the dense engines of
// dense_autoregressive.h keep the whole image instead and take one size). A layer's output is read
// by the next layer's taps only on the few rows those taps reach, so each layer keeps a ring of
// that many rows (row r in slot r mod rows), not the whole image:
// cache_bytes() is independent of the height and grows with the width.
// Other resolutions: the PixelCNN++ engine (pixelcnn_pp_engine.h) keeps a
// ring per layer at the layer's own resolution, strided and upsampling
// layers included, and computes each position when it is first read; the
// step order stays the engine's, so the codec and the sampler don't change.
//
// Within a pixel, the step for colour c runs the position again with colours
// >= c not yet known (held at 0); the channel masks make the outputs of colour
// c independent of them. The head (engine_parts::ColourHead) and the Gated
// PixelCNN's horizontal stack compute only colour c's features at its step and
// keep the earlier colours' from theirs, bit for bit what the full pass gives,
// so there C colours cost one pass. The plain PixelCNN's blocks are split
// in the same way; PixelRNN's layers still run the whole position once per
// colour.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/models/autoregressive/engine_parts.h"
#include "tame/nn/step_kernels.h"

namespace tame {

/// One sub-pixel: colour c of pixel (i, j).
struct SubPixel {
  int64_t c = 0, i = 0, j = 0;
};

/// One coded value: its interval [start, start + freq) in a table summing to
/// 2^precision.
struct Symbol {
  uint32_t start = 0, freq = 0;
  uint16_t value = 0;
};

/// A step engine is also the coder of its model's images (image_coder.h):
/// push_images and pop_images step a fresh clone through a block, every
/// sub-pixel's table in the engine's order (model_codec.cpp).
class StepEngine : public ImageCoder {
 public:
  /// An engine for images of `channels` colours with values < levels (2..2^16).
  StepEngine(int64_t channels, int64_t levels);
  virtual ~StepEngine() = default;
  /// A fresh engine sharing these weights, with its own state: one per thread.
  virtual std::unique_ptr<StepEngine> clone() const = 0;
  /// Hash of the engine's identity (kind, channels, levels, geometry) and
  /// every weight: which conditionals this engine gives, at any image size.
  uint64_t fingerprint() const override;
  /// The fingerprint the first container version stored, which also hashed
  /// the image size: (kind_v1, C, H, W, K, geometry, weights) for the engines
  /// that had one, else a hash of (fingerprint(), H, W).
  uint64_t fingerprint_v1(int64_t height, int64_t width) const override;
  /// The coder: blocks of up to kMaxBlock images (model_codec.h), 64 by default.
  int64_t max_block() const override;
  int64_t default_block(int64_t images) const override { return 64; }
  void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                   const UnitsDone& done) const override;
  ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                        const UnitsDone& done) const override;
  /// Features per pixel of the context map begin() takes (0: none).
  virtual int64_t context_features() const { return 0; }

  /// Starts n images of height x width with every sub-pixel unknown. context:
  /// nullptr, or float [n][height][width][context_features()], which the
  /// layers read (and the caller keeps alive until the last step).
  void begin(int64_t n, int64_t height, int64_t width, const float* context = nullptr);
  /// Whether every sub-pixel has been observed.
  bool done() const { return next_ >= C_ * H_ * W_; }
  /// The sub-pixel the next conditional is for.
  SubPixel next() const;
  /// The head's parameters [n][params()] of the next sub-pixel given all
  /// earlier ones (categorical logits here); valid until observe().
  const float* conditional();
  /// The integer CDFs [n][levels + 1] of the next sub-pixel at temperature T
  /// (1 = the model). When values is not null, returns the sum over the images
  /// of -log2 p(values[b]) under the float conditional (for reporting).
  double cdfs(uint32_t precision, uint32_t* cdf, const uint16_t* values = nullptr,
              double temperature = 1.0);
  /// Image b's symbol of the next sub-pixel at temperature T, in the tables
  /// cdfs() writes: for value >= 0, that value's (adding -log2 p(value) under
  /// the float conditional to *bits when bits is not null); else the one whose
  /// interval holds slot < 2^precision. The codec and the sampler code through
  /// it, so an engine may find a symbol without writing its whole table.
  Symbol symbol(int64_t b, uint32_t precision, int64_t value, uint32_t slot,
                double temperature = 1.0, double* bits = nullptr);
  /// Fixes the sub-pixel next() named: values[b] < levels for image b.
  void observe(const uint16_t* values);
  /// The images so far, [n][C][H][W] (unknown sub-pixels are 0).
  const std::vector<uint16_t>& images() const { return values_; }
  /// Bytes held by the caches for the current block (the input rows and
  /// every layer's rings), not counting the images themselves.
  size_t cache_bytes() const;

  int64_t channels() const override { return C_; }
  int64_t levels() const override { return K_; }
  int64_t height() const { return H_; }
  int64_t width() const { return W_; }
  int64_t params() const { return P_; }

 protected:
  /// What the fingerprints hash before the weights: a kind number of the
  /// engine's own, its kind in container version 1 (0: none), and the
  /// geometry beyond channels and levels that its weights do not fix.
  struct Identity {
    int64_t kind = 0, kind_v1 = 0;
    std::vector<int64_t> geometry;
  };
  virtual Identity identity() const = 0;
  /// Adds every weight to the fingerprint.
  virtual void hash(steps::Fingerprint& f) const = 0;
  /// Rows of the input ring this engine's taps need (rows <= the current one).
  virtual int64_t input_rows() const = 0;
  /// Allocates the layer caches for n images of H_ x W_.
  virtual void start(int64_t n) = 0;
  /// Writes the head's parameters [n][P_] of sub-pixel p; called in order.
  virtual void compute(SubPixel p, float* params) = 0;
  /// Bytes of the layer caches.
  virtual size_t layer_bytes() const = 0;
  /// The head's CDF writer for image b's parameters of sub-pixel p (the
  /// earlier sub-pixels are in images()); returns -log2 p(value) when value
  /// >= 0. Default: categorical over P_ = levels logits.
  virtual double write_cdf(int64_t b, SubPixel p, const float* params, uint32_t precision,
                           double temperature, uint32_t* cdf, int64_t value) const;

  /// symbol()'s finder. Default: write_cdf's whole table, then the value's
  /// interval or a binary search for the slot.
  virtual Symbol code_symbol(int64_t b, SubPixel p, const float* params, uint32_t precision,
                             double temperature, int64_t value, uint32_t slot, double* bits) const;

  /// Image b's context at pixel (i, j): context_features() floats.
  const float* context(int64_t b, int64_t i, int64_t j) const {
    return context_ + ((b * H_ + i) * W_ + j) * context_features();
  }

  int64_t C_, K_, P_;
  int64_t H_ = 0, W_ = 0, n_ = 0, R_ = 0;
  std::vector<float> x_;  // input ring [n][R_][W][C], levels mapped to [-1, 1]

 private:
  const float* context_ = nullptr;
  std::vector<float> params_;
  std::vector<uint16_t> values_;  // [n][C][H][W]
  int64_t next_ = 0;              // index of the next sub-pixel, raster order
  bool computed_ = false;
  mutable std::vector<uint32_t> table_;  // code_symbol()'s table
};

/// Draws n images of height x width through the engine's CDFs (precision
/// kSamplePrecision) at temperature T (T = 0: each sub-pixel's most likely
/// value), on up to `threads` threads. Image b draws its slots from its own
/// splitmix64 stream, seeded from (seed, b), so the images don't depend on
/// the thread count. context: as for begin(), for all n images. Returns
/// [n][C][H][W].
constexpr uint32_t kSamplePrecision = 24;
std::vector<uint16_t> draw_images(const StepEngine& engine, int64_t n, int64_t height,
                                  int64_t width, double temperature, uint64_t seed, int threads,
                                  const float* context = nullptr);

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
  PixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;

 protected:
  Identity identity() const override;
  void hash(steps::Fingerprint& f) const override;
  int64_t input_rows() const override;
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  size_t layer_bytes() const override;

 private:
  // The layers restricted to colour c's outputs (as ColourHead does for the
  // head): the step for colour c computes only those, and the features of
  // the earlier colours at the pixel are kept from their steps.
  struct ColourBlock {
    steps::Dense reduce, conv, expand;  // columns_of each: colour c's h and 2h outputs
  };

  std::shared_ptr<const Net> net_;
  engine_parts::ColourHead head_;
  std::vector<std::vector<int64_t>> narrow_, wide_;  // per colour: its columns of h and of 2h
  std::vector<steps::Dense> input_;                  // per colour: the input layer's columns
  std::vector<std::vector<ColourBlock>> split_;      // [block][colour]
  std::vector<int64_t> rows_of_;                     // per block: ring rows of its cache
  std::vector<std::vector<float>> cache_;  // per block: relu(reduce(relu(h))) [n][rows][W][h]
  std::vector<std::vector<float>> in_;   // per block, and the head: its input at the pixel [n][2h]
  std::vector<std::vector<float>> mid_;  // per block: relu(conv) at the pixel [n][h]
  std::vector<float> rows_, t_, u_;
};

/// The Gated PixelCNN of gated_pixelcnn.h, step by step. The vertical stack of
/// a row sees that whole row, so it runs once per row, when the row is known
/// (at the first step of the row below); the horizontal stack runs per
/// position.
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
    /// A conditional model's engine: each layer adds its slice of the context
    /// map to its pre-activations, [vertical 2n][horizontal 2n] per layer.
    bool conditioned = false;
  };
  GatedPixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;
  /// 4 n per layer when conditioned, else 0.
  int64_t context_features() const override;

 protected:
  Identity identity() const override;
  void hash(steps::Fingerprint& f) const override;
  int64_t input_rows() const override;
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  size_t layer_bytes() const override;

 private:
  void vertical_row(int64_t r);  // the vertical stack on row r, and v2h of it for row r + 1
  void horizontal(int64_t i, int64_t j, int64_t c);

  // A layer's horizontal stack restricted to colour c's outputs (as
  // ColourHead does for the head): the step for colour c computes only
  // those, so C colours cost one pass of the stack, not C.
  struct ColourLayer {
    steps::Dense h, hout;           // columns_of(layer.h, pre), columns_of(layer.hout, out)
    std::vector<int64_t> pre, out;  // colour c's pre-activations (2n) and outputs (n)
  };

  std::shared_ptr<const Net> net_;
  engine_parts::ColourHead head_;
  std::vector<std::vector<ColourLayer>> split_;  // [layer][colour]
  std::vector<int64_t> v_rows_;                  // per layer: ring rows of its vertical output
  std::vector<std::vector<float>> v_;   // per layer: gated vertical output [n][rows][W][hidden]
  std::vector<std::vector<float>> h_;   // per layer: horizontal output, one row [W][n][hidden]
  std::vector<std::vector<float>> g_;   // per layer: the gate's output at the pixel [n][hidden]
  std::vector<std::vector<float>> vh_;  // per layer: v2h of row i-1's vertical pre-act. [W][n][2n]
  int64_t vertical_done_ = -1;          // vh_ holds the link for row vertical_done_ + 1
  std::vector<float> rows_, pre_, t_;
};

/// The PixelCNN decoder of VLAE (latent/vlae.h), step by step: a mask-A input
/// convolution and mask-B 3x3 layers with a residual, each adding its slice of
/// the per-pixel context (z's features and their per-layer projections, which
/// the model computes once per z), then a 1x1 head. Context features:
/// F (input) + F per layer, F = the layers' width.
class ConditionedPixelCNNEngine : public StepEngine {
 public:
  struct Net {
    steps::Conv input;                // mask A, C -> F; then + context[0:F], relu
    std::vector<steps::Conv> layers;  // mask B 3x3, F -> F: h = relu(h + conv(h) + context)
    steps::Dense out1, out2;          // out2(relu(out1(h))), feature k*C + c
  };
  ConditionedPixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;
  int64_t context_features() const override;

 protected:
  Identity identity() const override;
  void hash(steps::Fingerprint& f) const override;
  int64_t input_rows() const override;
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  size_t layer_bytes() const override;

 private:
  std::shared_ptr<const Net> net_;
  engine_parts::ColourHead head_;
  std::vector<int64_t> rows_of_;           // per layer: ring rows of its input
  std::vector<std::vector<float>> cache_;  // per layer: its input h [n][rows][W][F]
  std::vector<float> rows_, h_, t_;
};

}  // namespace tame
