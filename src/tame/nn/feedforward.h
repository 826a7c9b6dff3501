// Feed-forward networks on the fixed-order kernels of step_kernels.h, one
// image at a time: the encoders and decoders that bits-back coding
// (codec/bits_back.h) runs on both sides of a file, where every float must
// come out the same in the encoder and the decoder, whatever the process, the
// thread count or the other images. The rules are step_kernels.h's: each
// output is bias + sum_k in[k] w[k] in order k = 0, 1, ..., no fused
// multiply-add, and the nonlinearities are written from + - * / alone.
//
// Maps are channels-last: a height x width x channels map is stored
// [height][width][channels]; a vector is a 1 x 1 x n map. The torch models
// export their layers into a Feedforward (models/latent/latent_model.cpp),
// permuting the weights of the layers that flatten a channels-first map.
// Free of LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "tame/nn/step_kernels.h"

namespace tame::steps {

struct MapShape {
  int64_t height = 1, width = 1, channels = 0;
  int64_t size() const { return height * width * channels; }
};

class Feedforward {
 public:
  explicit Feedforward(MapShape input = {});
  /// A linear layer on the whole map flattened (d.in = the map's size); its
  /// d.out outputs are viewed as `out` (default 1 x 1 x d.out).
  void add_dense(Dense d, MapShape out = {});
  /// A convolution of a k x k kernel with stride and zero padding: d.in =
  /// k k C, row (ky k + kx) C + c holding tap (ky, kx) of input channel c.
  void add_conv(Dense d, int64_t kernel, int64_t stride, int64_t pad);
  /// Nearest-neighbour upsampling by 2 in both directions.
  void add_upsample2();
  void add_relu();
  void add_tanh();
  /// A residual connection: add_save() keeps the current map, and the
  /// add_residual() that closes it adds the kept map to the current one
  /// (the shapes must agree). Pairs nest.
  void add_save();
  void add_residual();

  MapShape input() const { return in_; }
  MapShape output() const { return shapes_.empty() ? in_ : shapes_.back(); }
  /// in: input().size() floats -> out: output().size() floats. Thread-safe.
  void run(const float* in, float* out) const;
  /// Adds the architecture and every weight to a fingerprint.
  void hash(Fingerprint& f) const;

 private:
  enum class Kind { kDense, kConv, kUpsample2, kRelu, kTanh, kSave, kResidual };
  struct Layer {
    Kind kind;
    Dense dense;
    int64_t kernel = 0, stride = 1, pad = 0;
  };
  void add(Layer layer, MapShape out);
  static void conv(const Layer& l, MapShape in, MapShape out, const float* x, float* y,
                   std::vector<float>& rows);

  MapShape in_;
  std::vector<Layer> layers_;
  std::vector<MapShape> shapes_;  // each layer's output
  std::vector<MapShape> open_;    // the maps of saves not yet closed
};

}  // namespace tame::steps
