#include "tame/nn/feedforward.h"

#include <algorithm>
#include <string>

#include "tame/error.h"

namespace tame::steps {

Feedforward::Feedforward(MapShape input) : in_(input) {}

void Feedforward::add(Layer layer, MapShape out) {
  layers_.push_back(std::move(layer));
  shapes_.push_back(out);
}

void Feedforward::add_dense(Dense d, MapShape out) {
  if (d.in != output().size())
    throw Error("feedforward: a dense layer of " + std::to_string(d.in) +
                " inputs after a map of " + std::to_string(output().size()));
  if (out.channels == 0) out = {1, 1, d.out};
  if (out.size() != d.out) throw Error("feedforward: dense output shape");
  add({Kind::kDense, std::move(d)}, out);
}

void Feedforward::add_conv(Dense d, int64_t kernel, int64_t stride, int64_t pad) {
  const MapShape s = output();
  if (d.in != kernel * kernel * s.channels || stride < 1 || pad < 0)
    throw Error("feedforward: a convolution that does not fit its input");
  const MapShape out{(s.height + 2 * pad - kernel) / stride + 1,
                     (s.width + 2 * pad - kernel) / stride + 1, d.out};
  add({Kind::kConv, std::move(d), kernel, stride, pad}, out);
}

void Feedforward::add_upsample2() {
  const MapShape s = output();
  add({Kind::kUpsample2, {}}, {2 * s.height, 2 * s.width, s.channels});
}

void Feedforward::add_save() {
  open_.push_back(output());
  add({Kind::kSave, {}}, output());
}

void Feedforward::add_residual() {
  const MapShape s = output();
  if (open_.empty() || open_.back().size() != s.size() || open_.back().channels != s.channels)
    throw Error("feedforward: a residual connection without a saved map of its shape");
  open_.pop_back();
  add({Kind::kResidual, {}}, s);
}

void Feedforward::add_relu() { add({Kind::kRelu, {}}, output()); }
void Feedforward::add_tanh() { add({Kind::kTanh, {}}, output()); }

// Gathers every output position's k x k taps (zeros outside the map) into one
// row, then one dense over all the rows.
void Feedforward::conv(const Layer& l, MapShape in, MapShape out, const float* x, float* y,
                       std::vector<float>& rows) {
  const int64_t C = in.channels, k = l.kernel, row = k * k * C;
  rows.assign(out.height * out.width * row, 0.0f);
  for (int64_t oy = 0; oy < out.height; ++oy)
    for (int64_t ox = 0; ox < out.width; ++ox) {
      float* r = rows.data() + (oy * out.width + ox) * row;
      for (int64_t ky = 0; ky < k; ++ky) {
        const int64_t iy = oy * l.stride + ky - l.pad;
        if (iy < 0 || iy >= in.height) continue;
        for (int64_t kx = 0; kx < k; ++kx) {
          const int64_t ix = ox * l.stride + kx - l.pad;
          if (ix < 0 || ix >= in.width) continue;
          std::copy_n(x + (iy * in.width + ix) * C, C, r + (ky * k + kx) * C);
        }
      }
    }
  dense(l.dense, rows.data(), row, out.height * out.width, y, out.channels);
}

void Feedforward::run(const float* in, float* out) const {
  std::vector<float> a(in, in + in_.size()), b, rows;
  std::vector<std::vector<float>> saved;
  MapShape s = in_;
  for (size_t t = 0; t < layers_.size(); ++t) {
    const Layer& l = layers_[t];
    const MapShape o = shapes_[t];
    switch (l.kind) {
      case Kind::kDense:
        b.resize(o.size());
        dense(l.dense, a.data(), l.dense.in, 1, b.data(), l.dense.out);
        a.swap(b);
        break;
      case Kind::kConv:
        b.resize(o.size());
        conv(l, s, o, a.data(), b.data(), rows);
        a.swap(b);
        break;
      case Kind::kUpsample2:
        b.resize(o.size());
        for (int64_t y = 0; y < o.height; ++y)
          for (int64_t x = 0; x < o.width; ++x)
            std::copy_n(a.data() + ((y / 2) * s.width + x / 2) * s.channels, s.channels,
                        b.data() + (y * o.width + x) * s.channels);
        a.swap(b);
        break;
      case Kind::kRelu:
        relu_inplace(a.data(), static_cast<int64_t>(a.size()));
        break;
      case Kind::kTanh:
        for (float& v : a) v = det_tanh(v);
        break;
      case Kind::kSave:
        saved.push_back(a);
        break;
      case Kind::kResidual:
        for (size_t i = 0; i < a.size(); ++i) a[i] = a[i] + saved.back()[i];
        saved.pop_back();
        break;
    }
    s = o;
  }
  std::copy(a.begin(), a.end(), out);
}

void Feedforward::hash(Fingerprint& f) const {
  for (int64_t v : {in_.height, in_.width, in_.channels}) f.add(v);
  for (size_t t = 0; t < layers_.size(); ++t) {
    const Layer& l = layers_[t];
    for (int64_t v : {static_cast<int64_t>(l.kind), l.kernel, l.stride, l.pad, shapes_[t].height,
                      shapes_[t].width, shapes_[t].channels})
      f.add(v);
    if (l.kind == Kind::kDense || l.kind == Kind::kConv) f.add(l.dense);
  }
}

}  // namespace tame::steps
