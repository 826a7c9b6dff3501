#include "tame/models/autoregressive/step_engine.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace tame {

using steps::dense;
using steps::gather_taps;

StepEngine::StepEngine(int64_t channels, int64_t height, int64_t width, int64_t levels)
    : C_(channels), H_(height), W_(width), K_(levels) {
  if (C_ < 1 || H_ < 1 || W_ < 1 || K_ < 2 || K_ > 256)
    throw std::invalid_argument("StepEngine: bad geometry");
}

void StepEngine::begin(int64_t n) {
  if (n < 1) throw std::invalid_argument("StepEngine::begin: n must be positive");
  n_ = n;
  x_.assign(n * H_ * W_ * C_, 0.0f);
  values_.assign(n * H_ * W_ * C_, 0);
  logits_.assign(n * K_, 0.0f);
  next_ = 0;
  pending_ = false;
  start(n);
}

const float* StepEngine::conditional() {
  if (n_ == 0 || pending_ || next_ >= sub_pixels())
    throw std::logic_error("StepEngine::conditional called out of order");
  const int64_t pixel = next_ / C_, c = next_ % C_;
  compute(pixel / W_, pixel % W_, c, logits_.data());
  pending_ = true;
  return logits_.data();
}

void StepEngine::observe(const uint8_t* values) {
  if (!pending_) throw std::logic_error("StepEngine::observe without conditional");
  const float scale = 2.0f / static_cast<float>(K_ - 1);
  const int64_t per_image = H_ * W_ * C_;
  for (int64_t b = 0; b < n_; ++b) {
    if (values[b] >= K_) throw std::logic_error("StepEngine::observe: value out of range");
    values_[b * per_image + next_] = values[b];
    x_[b * per_image + next_] = static_cast<float>(values[b]) * scale - 1.0f;
  }
  ++next_;
  pending_ = false;
}

std::vector<uint8_t> StepEngine::images() const {
  std::vector<uint8_t> out(values_.size());
  const int64_t HW = H_ * W_;
  for (int64_t b = 0; b < n_; ++b)
    for (int64_t p = 0; p < HW; ++p)
      for (int64_t c = 0; c < C_; ++c) out[(b * C_ + c) * HW + p] = values_[(b * HW + p) * C_ + c];
  return out;
}

namespace {

void relu_copy(const float* in, int64_t n, float* out) {
  for (int64_t k = 0; k < n; ++k) out[k] = in[k] > 0.0f ? in[k] : 0.0f;
}

// logits[b][k] = features[b][k * C + c]: the output feature of level k, colour c.
void pick_colour(const float* features, int64_t n, int64_t levels, int64_t colours, int64_t c,
                 float* logits) {
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < levels; ++k)
      logits[b * levels + k] = features[(b * levels + k) * colours + c];
}

void grow(std::vector<float>& v, int64_t size) {
  if (static_cast<int64_t>(v.size()) < size) v.resize(size);
}

}  // namespace

// ---------------------------------------------------------------- PixelCNN

PixelCNNEngine::PixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t height,
                               int64_t width, int64_t levels)
    : StepEngine(channels, height, width, levels), net_(std::move(net)) {}

std::unique_ptr<StepEngine> PixelCNNEngine::clone() const {
  return std::make_unique<PixelCNNEngine>(net_, C_, H_, W_, K_);
}

uint64_t PixelCNNEngine::fingerprint() const {
  steps::Fingerprint f;
  f.add(int64_t{1});  // engine kind
  for (int64_t v : {C_, H_, W_, K_}) f.add(v);
  f.add(net_->input);
  for (const auto& b : net_->blocks) {
    f.add(b.reduce);
    f.add(b.conv);
    f.add(b.expand);
  }
  f.add(net_->out1);
  f.add(net_->out2);
  return f.value();
}

void PixelCNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t h2 = N.input.dense.out;
  cache_.assign(N.blocks.size(), {});
  int64_t max_in = N.input.dense.in, hid = h2;
  for (size_t b = 0; b < N.blocks.size(); ++b) {
    hid = N.blocks[b].reduce.out;
    cache_[b].assign(n * H_ * W_ * hid, 0.0f);
    max_in = std::max(max_in, N.blocks[b].conv.dense.in);
  }
  grow(rows_, n * max_in);
  grow(h_, n * h2);
  grow(t_, n * h2);
  grow(u_, n * hid);
  grow(e_, n * h2);
  grow(o1_, n * N.out1.out);
  grow(o2_, n * N.out2.out);
}

void PixelCNNEngine::compute(int64_t i, int64_t j, int64_t c, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, h2 = N.input.dense.out;
  gather_taps(x_.data(), n, H_, W_, C_, i, j, N.input.taps, rows_.data(), N.input.dense.in);
  dense(N.input.dense, rows_.data(), N.input.dense.in, n, h_.data(), h2);
  for (size_t bi = 0; bi < N.blocks.size(); ++bi) {
    const Block& B = N.blocks[bi];
    const int64_t hid = B.reduce.out;
    relu_copy(h_.data(), n * h2, t_.data());
    dense(B.reduce, t_.data(), h2, n, u_.data(), hid);
    steps::relu_inplace(u_.data(), n * hid);
    float* cache = cache_[bi].data();
    for (int64_t b = 0; b < n; ++b)
      std::memcpy(cache + ((b * H_ + i) * W_ + j) * hid, u_.data() + b * hid, sizeof(float) * hid);
    gather_taps(cache, n, H_, W_, hid, i, j, B.conv.taps, rows_.data(), B.conv.dense.in);
    dense(B.conv.dense, rows_.data(), B.conv.dense.in, n, u_.data(), hid);
    steps::relu_inplace(u_.data(), n * hid);
    dense(B.expand, u_.data(), hid, n, e_.data(), h2);
    for (int64_t k = 0; k < n * h2; ++k) h_[k] = h_[k] + e_[k];
  }
  relu_copy(h_.data(), n * h2, t_.data());
  dense(N.out1, t_.data(), h2, n, o1_.data(), N.out1.out);
  steps::relu_inplace(o1_.data(), n * N.out1.out);
  dense(N.out2, o1_.data(), N.out1.out, n, o2_.data(), N.out2.out);
  pick_colour(o2_.data(), n, K_, C_, c, logits);
}

// ---------------------------------------------------------- Gated PixelCNN

GatedPixelCNNEngine::GatedPixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels,
                                         int64_t height, int64_t width, int64_t levels)
    : StepEngine(channels, height, width, levels), net_(std::move(net)) {}

std::unique_ptr<StepEngine> GatedPixelCNNEngine::clone() const {
  return std::make_unique<GatedPixelCNNEngine>(net_, C_, H_, W_, K_);
}

uint64_t GatedPixelCNNEngine::fingerprint() const {
  steps::Fingerprint f;
  f.add(int64_t{2});  // engine kind
  for (int64_t v : {C_, H_, W_, K_, net_->hidden}) f.add(v);
  for (const auto& l : net_->layers) {
    f.add(l.v);
    f.add(l.h);
    f.add(l.v2h);
    if (!l.first) f.add(l.hout);
  }
  f.add(net_->out1);
  f.add(net_->out2);
  return f.value();
}

void GatedPixelCNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t hid = N.hidden, twoN = 2 * hid, L = static_cast<int64_t>(N.layers.size());
  v_.assign(L, std::vector<float>(n * H_ * W_ * hid, 0.0f));
  h_.assign(L, std::vector<float>(n * H_ * W_ * hid, 0.0f));
  vh_.assign(L, std::vector<float>(n * W_ * twoN, 0.0f));
  vertical_done_ = -2;
  int64_t max_rows = 0;
  for (const auto& l : N.layers) max_rows = std::max({max_rows, W_ * l.v.dense.in, l.h.dense.in});
  grow(rows_, n * max_rows);
  grow(pre_, n * W_ * twoN);
  grow(g_, n * hid);
  grow(t_, n * std::max(hid, N.out1.in));
  grow(o1_, n * N.out1.out);
  grow(o2_, n * N.out2.out);
}

void GatedPixelCNNEngine::vertical_row(int64_t r) {
  const Net& N = *net_;
  const int64_t n = n_, hid = N.hidden, twoN = 2 * hid;
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const Layer& L = N.layers[l];
    if (r < 0) {
      // Row 0's link reads the zero row that shift_down puts on top.
      std::fill(pre_.begin(), pre_.begin() + n * W_ * twoN, 0.0f);
      dense(L.v2h, pre_.data(), twoN, n * W_, vh_[l].data(), twoN);
      continue;
    }
    const float* in = l == 0 ? x_.data() : v_[l - 1].data();
    const int64_t in_ch = l == 0 ? C_ : hid, vin = L.v.dense.in;
    // Rows of the batch: (image b, column jj) at b * W + jj.
    for (int64_t jj = 0; jj < W_; ++jj)
      gather_taps(in, n, H_, W_, in_ch, r, jj, L.v.taps, rows_.data() + jj * vin, W_ * vin);
    dense(L.v.dense, rows_.data(), vin, n * W_, pre_.data(), twoN);
    dense(L.v2h, pre_.data(), twoN, n * W_, vh_[l].data(), twoN);
    float* v = v_[l].data();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t jj = 0; jj < W_; ++jj)
        steps::gate(pre_.data() + (b * W_ + jj) * twoN, hid, v + ((b * H_ + r) * W_ + jj) * hid);
  }
}

void GatedPixelCNNEngine::compute(int64_t i, int64_t j, int64_t c, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, hid = N.hidden, twoN = 2 * hid;
  if (vertical_done_ != i - 1) {
    vertical_row(i - 1);
    vertical_done_ = i - 1;
  }
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const Layer& L = N.layers[l];
    const float* in = l == 0 ? x_.data() : h_[l - 1].data();
    const int64_t in_ch = l == 0 ? C_ : hid, hin = L.h.dense.in;
    gather_taps(in, n, H_, W_, in_ch, i, j, L.h.taps, rows_.data(), hin);
    dense(L.h.dense, rows_.data(), hin, n, pre_.data(), twoN);
    const float* link = vh_[l].data();
    for (int64_t b = 0; b < n; ++b) {
      float* p = pre_.data() + b * twoN;
      const float* q = link + (b * W_ + j) * twoN;
      for (int64_t m = 0; m < twoN; ++m) p[m] = p[m] + q[m];
      steps::gate(p, hid, g_.data() + b * hid);
    }
    float* out = h_[l].data();
    if (L.first) {
      for (int64_t b = 0; b < n; ++b)
        std::memcpy(out + ((b * H_ + i) * W_ + j) * hid, g_.data() + b * hid, sizeof(float) * hid);
    } else {
      dense(L.hout, g_.data(), hid, n, t_.data(), hid);
      const float* prev = h_[l - 1].data();
      for (int64_t b = 0; b < n; ++b) {
        const int64_t at = ((b * H_ + i) * W_ + j) * hid;
        for (int64_t m = 0; m < hid; ++m) out[at + m] = prev[at + m] + t_[b * hid + m];
      }
    }
  }
  const float* top = h_.back().data();
  for (int64_t b = 0; b < n; ++b)
    relu_copy(top + ((b * H_ + i) * W_ + j) * hid, hid, t_.data() + b * hid);
  dense(N.out1, t_.data(), hid, n, o1_.data(), N.out1.out);
  steps::relu_inplace(o1_.data(), n * N.out1.out);
  dense(N.out2, o1_.data(), N.out1.out, n, o2_.data(), N.out2.out);
  pick_colour(o2_.data(), n, K_, C_, c, logits);
}

}  // namespace tame
