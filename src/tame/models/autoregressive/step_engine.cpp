#include "tame/models/autoregressive/step_engine.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "tame/dist/integer_cdf.h"
#include "tame/models/autoregressive/engine_parts.h"
#include "tame/parallel.h"
#include "tame/random.h"

namespace tame {

using steps::dense;
using steps::gather_taps;

StepEngine::StepEngine(int64_t channels, int64_t levels) : C_(channels), K_(levels), P_(levels) {
  if (C_ < 1 || K_ < 2 || K_ > 65536) throw std::invalid_argument("StepEngine: bad geometry");
}

void StepEngine::begin(int64_t n, int64_t height, int64_t width, const float* context) {
  if (n < 1 || height < 1 || width < 1)
    throw std::invalid_argument("StepEngine::begin: n, height and width must be positive");
  if (context_features() > 0 && !context)
    throw std::invalid_argument("StepEngine::begin: this engine needs a context map");
  n_ = n;
  H_ = height;
  W_ = width;
  context_ = context;
  R_ = input_rows();
  x_.assign(n * R_ * W_ * C_, 0.0f);
  values_.assign(n * C_ * H_ * W_, 0);
  params_.assign(n * P_, 0.0f);
  next_ = 0;
  computed_ = false;
  start(n);
}

SubPixel StepEngine::next() const {
  const int64_t pixel = next_ / C_;
  return {next_ % C_, pixel / W_, pixel % W_};
}

const float* StepEngine::conditional() {
  if (n_ == 0 || done()) throw std::logic_error("StepEngine::conditional called out of order");
  if (!computed_) {
    compute(next(), params_.data());
    computed_ = true;
  }
  return params_.data();
}

double StepEngine::cdfs(uint32_t precision, uint32_t* cdf, const uint16_t* values,
                        double temperature) {
  const float* p = conditional();
  const SubPixel at = next();
  double bits = 0;
  for (int64_t b = 0; b < n_; ++b)
    bits += write_cdf(b, at, p + b * P_, precision, temperature, cdf + b * (K_ + 1),
                      values ? int64_t{values[b]} : -1);
  return bits;
}

double StepEngine::write_cdf(int64_t, SubPixel, const float* params, uint32_t precision,
                             double temperature, uint32_t* cdf, int64_t value) const {
  return categorical_cdf(params, K_, precision, cdf, value, temperature);
}

Symbol StepEngine::symbol(int64_t b, uint32_t precision, int64_t value, uint32_t slot,
                          double temperature, double* bits) {
  const float* p = conditional();
  return code_symbol(b, next(), p + b * P_, precision, temperature, value, slot, bits);
}

Symbol StepEngine::code_symbol(int64_t b, SubPixel p, const float* params, uint32_t precision,
                               double temperature, int64_t value, uint32_t slot,
                               double* bits) const {
  table_.resize(K_ + 1);
  uint32_t* cdf = table_.data();
  const double cost = write_cdf(b, p, params, precision, temperature, cdf, value);
  if (bits) *bits += cost;
  const auto v =
      static_cast<uint32_t>(value >= 0 ? value : find_symbol(cdf, static_cast<uint32_t>(K_), slot));
  return {cdf[v], cdf[v + 1] - cdf[v], static_cast<uint16_t>(v)};
}

void StepEngine::observe(const uint16_t* values) {
  if (!computed_) throw std::logic_error("StepEngine::observe without conditional");
  const SubPixel p = next();
  const float scale = 2.0f / static_cast<float>(K_ - 1);
  const int64_t HW = H_ * W_, slot = p.i % R_;
  for (int64_t b = 0; b < n_; ++b) {
    if (values[b] >= K_) throw std::logic_error("StepEngine::observe: value out of range");
    values_[(b * C_ + p.c) * HW + p.i * W_ + p.j] = values[b];
    x_[((b * R_ + slot) * W_ + p.j) * C_ + p.c] = static_cast<float>(values[b]) * scale - 1.0f;
  }
  ++next_;
  computed_ = false;
  // A new row reuses the ring slot of an old one: clear it, since the taps of
  // the row's first steps read its unknown sub-pixels as 0.
  if (!done() && next_ % (C_ * W_) == 0) {
    const int64_t r = (next_ / (C_ * W_)) % R_;
    for (int64_t b = 0; b < n_; ++b)
      std::fill_n(x_.begin() + (b * R_ + r) * W_ * C_, W_ * C_, 0.0f);
  }
}

size_t StepEngine::cache_bytes() const { return sizeof(float) * x_.size() + layer_bytes(); }

uint64_t StepEngine::fingerprint() const {
  const Identity id = identity();
  steps::Fingerprint f;
  for (int64_t v : {id.kind, C_, K_}) f.add(v);
  for (int64_t v : id.geometry) f.add(v);
  hash(f);
  return f.value();
}

uint64_t StepEngine::fingerprint_v1(int64_t height, int64_t width) const {
  const Identity id = identity();
  steps::Fingerprint f;
  if (id.kind_v1 == 0) {
    for (uint64_t v : {fingerprint(), static_cast<uint64_t>(height), static_cast<uint64_t>(width)})
      f.add(static_cast<int64_t>(v));
    return f.value();
  }
  for (int64_t v : {id.kind_v1, C_, height, width, K_}) f.add(v);
  for (int64_t v : id.geometry) f.add(v);
  hash(f);
  return f.value();
}

std::vector<uint16_t> draw_images(const StepEngine& engine, int64_t n, int64_t height,
                                  int64_t width, double temperature, uint64_t seed, int threads,
                                  const float* context) {
  if (!(temperature >= 0)) throw std::invalid_argument("draw_images: temperature must be >= 0");
  const int64_t D = engine.channels() * height * width, K = engine.levels();
  const int64_t F = engine.context_features();
  std::vector<uint16_t> out(n * D);
  const int64_t chunks = std::min<int64_t>(n, std::max(1, threads));
  run_parallel(chunks, static_cast<int>(chunks), [&](int64_t ch) {
    const int64_t first = n * ch / chunks, count = n * (ch + 1) / chunks - first;
    if (count == 0) return;
    auto e = engine.clone();
    e->begin(count, height, width, context ? context + first * height * width * F : nullptr);
    std::vector<uint64_t> rng(count);
    for (int64_t b = 0; b < count; ++b)
      rng[b] = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(first + b)));
    std::vector<uint16_t> values(count);
    std::vector<uint32_t> cdf(temperature == 0 ? count * (K + 1) : 0);
    while (!e->done()) {
      if (temperature == 0) {  // the mode needs every frequency
        e->cdfs(kSamplePrecision, cdf.data());
        for (int64_t b = 0; b < count; ++b)
          values[b] = static_cast<uint16_t>(cdf_mode(cdf.data() + b * (K + 1), K));
      } else {
        for (int64_t b = 0; b < count; ++b) {
          const auto slot = static_cast<uint32_t>(splitmix64(rng[b]++) >> (64 - kSamplePrecision));
          values[b] = e->symbol(b, kSamplePrecision, -1, slot, temperature).value;
        }
      }
      e->observe(values.data());
    }
    std::copy(e->images().begin(), e->images().end(), out.begin() + first * D);
  });
  return out;
}

using engine_parts::bytes_of;
using engine_parts::grow;
using engine_parts::put_ring;
using engine_parts::reach;
using engine_parts::relu_copy;

// ---------------------------------------------------------------- PixelCNN

PixelCNNEngine::PixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels)
    : StepEngine(channels, levels),
      net_(std::move(net)),
      head_(net_->out1, net_->out2, channels, levels) {
  const int64_t h2 = net_->input.dense.out;
  const int64_t hid = net_->blocks.empty() ? 0 : net_->blocks[0].reduce.out;
  for (int64_t c = 0; c < channels; ++c) {
    narrow_.push_back(engine_parts::colour_columns(hid, channels, c));
    wide_.push_back(engine_parts::colour_columns(h2, channels, c));
    input_.push_back(engine_parts::columns_of(net_->input.dense, wide_[c]));
  }
  for (const auto& b : net_->blocks) {
    split_.emplace_back();
    for (int64_t c = 0; c < channels; ++c)
      split_.back().push_back({engine_parts::columns_of(b.reduce, narrow_[c]),
                               engine_parts::columns_of(b.conv.dense, narrow_[c]),
                               engine_parts::columns_of(b.expand, wide_[c])});
  }
}

std::unique_ptr<StepEngine> PixelCNNEngine::clone() const {
  return std::make_unique<PixelCNNEngine>(net_, C_, K_);
}

void PixelCNNEngine::hash(steps::Fingerprint& f) const {
  f.add(net_->input);
  for (const auto& b : net_->blocks) {
    f.add(b.reduce);
    f.add(b.conv);
    f.add(b.expand);
  }
  f.add(net_->out1);
  f.add(net_->out2);
}

StepEngine::Identity PixelCNNEngine::identity() const { return {101, 1, {}}; }

int64_t PixelCNNEngine::input_rows() const { return reach(net_->input) + 1; }

size_t PixelCNNEngine::layer_bytes() const { return bytes_of(cache_); }

void PixelCNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t h2 = N.input.dense.out;
  cache_.assign(N.blocks.size(), {});
  mid_.assign(N.blocks.size(), {});
  in_.assign(N.blocks.size() + 1, std::vector<float>(n * h2, 0.0f));
  rows_of_.assign(N.blocks.size(), 1);
  int64_t max_in = N.input.dense.in, hid = 0;
  for (size_t b = 0; b < N.blocks.size(); ++b) {
    hid = N.blocks[b].reduce.out;
    rows_of_[b] = reach(N.blocks[b].conv) + 1;
    cache_[b].assign(n * rows_of_[b] * W_ * hid, 0.0f);
    mid_[b].assign(n * hid, 0.0f);
    max_in = std::max(max_in, N.blocks[b].conv.dense.in);
  }
  grow(rows_, n * max_in);
  grow(t_, n * h2);
  grow(u_, n * std::max(h2, hid));
}

// Colour c's step: every layer computes colour c's outputs at the pixel only.
// Each reads its input at the pixel whole: the earlier colours' features from
// their steps, the later colours' (stale) through weights the masks set to 0.
void PixelCNNEngine::compute(SubPixel p, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, h2 = N.input.dense.out, i = p.i, j = p.j, c = p.c;
  const std::vector<int64_t>&narrow = narrow_[c], &wide = wide_[c];
  const int64_t m1 = static_cast<int64_t>(narrow.size()), m2 = static_cast<int64_t>(wide.size());
  auto put = [n](const float* src, int64_t m, const std::vector<int64_t>& cols, float* dst,
                 int64_t stride) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < m; ++k) dst[b * stride + cols[k]] = src[b * m + k];
  };
  gather_taps(x_.data(), n, R_, H_, W_, C_, i, j, N.input.taps, rows_.data(), N.input.dense.in);
  dense(input_[c], rows_.data(), N.input.dense.in, n, u_.data(), m2);
  put(u_.data(), m2, wide, in_[0].data(), h2);
  for (size_t bi = 0; bi < N.blocks.size(); ++bi) {
    const Block& B = N.blocks[bi];
    const ColourBlock& S = split_[bi][c];
    const int64_t hid = B.reduce.out, rows = rows_of_[bi];
    relu_copy(in_[bi].data(), n * h2, t_.data());
    dense(S.reduce, t_.data(), h2, n, u_.data(), m1);
    steps::relu_inplace(u_.data(), n * m1);
    float* cache = cache_[bi].data();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < m1; ++k)
        cache[((b * rows + i % rows) * W_ + j) * hid + narrow[k]] = u_[b * m1 + k];
    gather_taps(cache, n, rows, H_, W_, hid, i, j, B.conv.taps, rows_.data(), B.conv.dense.in);
    dense(S.conv, rows_.data(), B.conv.dense.in, n, u_.data(), m1);
    steps::relu_inplace(u_.data(), n * m1);
    put(u_.data(), m1, narrow, mid_[bi].data(), hid);
    dense(S.expand, mid_[bi].data(), hid, n, u_.data(), m2);
    const float* from = in_[bi].data();
    float* to = in_[bi + 1].data();
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < m2; ++k) {
        const int64_t at = b * h2 + wide[k];
        to[at] = from[at] + u_[b * m2 + k];
      }
  }
  head_.logits(in_.back().data(), n, c, logits);
}

// ---------------------------------------------------------- Gated PixelCNN

GatedPixelCNNEngine::GatedPixelCNNEngine(std::shared_ptr<const Net> net, int64_t channels,
                                         int64_t levels)
    : StepEngine(channels, levels),
      net_(std::move(net)),
      head_(net_->out1, net_->out2, channels, levels) {
  const int64_t hid = net_->hidden;
  for (const auto& l : net_->layers) {
    split_.emplace_back();
    for (int64_t c = 0; c < channels; ++c) {
      ColourLayer s;
      s.pre = engine_parts::colour_columns(2 * hid, channels, c);
      s.out = engine_parts::colour_columns(hid, channels, c);
      s.h = engine_parts::columns_of(l.h.dense, s.pre);
      if (!l.first) s.hout = engine_parts::columns_of(l.hout, s.out);
      split_.back().push_back(std::move(s));
    }
  }
}

std::unique_ptr<StepEngine> GatedPixelCNNEngine::clone() const {
  return std::make_unique<GatedPixelCNNEngine>(net_, C_, K_);
}

void GatedPixelCNNEngine::hash(steps::Fingerprint& f) const {
  for (const auto& l : net_->layers) {
    f.add(l.v);
    f.add(l.h);
    f.add(l.v2h);
    if (!l.first) f.add(l.hout);
  }
  f.add(net_->out1);
  f.add(net_->out2);
}

StepEngine::Identity GatedPixelCNNEngine::identity() const {
  if (net_->conditioned) return {102, 0, {net_->hidden, 1}};
  return {102, 2, {net_->hidden}};
}

int64_t GatedPixelCNNEngine::context_features() const {
  return net_->conditioned ? 4 * net_->hidden * static_cast<int64_t>(net_->layers.size()) : 0;
}

// The first layer's vertical stack reads rows r - reach .. r of the input for
// row r = i - 1, while row i is being observed.
int64_t GatedPixelCNNEngine::input_rows() const {
  return net_->layers.empty() ? 1 : reach(net_->layers[0].v) + 2;
}

size_t GatedPixelCNNEngine::layer_bytes() const {
  return bytes_of(v_) + bytes_of(h_) + bytes_of(vh_);
}

void GatedPixelCNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t hid = N.hidden, twoN = 2 * hid, L = static_cast<int64_t>(N.layers.size());
  v_rows_.assign(L, 1);
  for (int64_t l = 0; l + 1 < L; ++l) v_rows_[l] = reach(N.layers[l + 1].v) + 1;
  v_.assign(L, {});
  for (int64_t l = 0; l < L; ++l) v_[l].assign(n * v_rows_[l] * W_ * hid, 0.0f);
  h_.assign(L, std::vector<float>(n * W_ * hid, 0.0f));
  g_.assign(L, std::vector<float>(n * hid, 0.0f));
  vh_.assign(L, std::vector<float>(n * W_ * twoN, 0.0f));
  vertical_done_ = -2;
  int64_t max_rows = 0;
  for (const auto& l : N.layers) max_rows = std::max({max_rows, W_ * l.v.dense.in, l.h.dense.in});
  grow(rows_, n * max_rows);
  grow(pre_, n * W_ * twoN);
  grow(t_, n * std::max(hid, N.out1.in));
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
    const int64_t in_ch = l == 0 ? C_ : hid, in_rows = l == 0 ? R_ : v_rows_[l - 1];
    const int64_t vin = L.v.dense.in, rows = v_rows_[l];
    // Rows of the batch: (column jj, image b) at jj * n + b, so that vh_
    // holds the n images' links at a column together, as horizontal() reads them.
    for (int64_t jj = 0; jj < W_; ++jj)
      gather_taps(in, n, in_rows, H_, W_, in_ch, r, jj, L.v.taps, rows_.data() + jj * n * vin, vin);
    dense(L.v.dense, rows_.data(), vin, n * W_, pre_.data(), twoN);
    if (N.conditioned)
      for (int64_t b = 0; b < n; ++b)
        for (int64_t jj = 0; jj < W_; ++jj) {
          float* p = pre_.data() + (jj * n + b) * twoN;
          const float* z = context(b, r, jj) + l * 2 * twoN;
          for (int64_t m = 0; m < twoN; ++m) p[m] = p[m] + z[m];
        }
    dense(L.v2h, pre_.data(), twoN, n * W_, vh_[l].data(), twoN);
    // Image b's row r: W positions, n rows apart in pre_, hid floats apart in the ring.
    float* v = v_[l].data();
    for (int64_t b = 0; b < n; ++b)
      steps::gate_rows(pre_.data() + b * twoN, W_, hid, n * twoN,
                       v + (b * rows + r % rows) * W_ * hid, hid);
  }
}

// The horizontal stack at (i, j), every layer, colour c's outputs: those of
// colours < c are kept from their steps at this pixel. h_ holds one row per layer,
// [W][n][hidden]: the n images' features at a column together, as vh_ holds the links.
// Colour c's columns are c, c + C, c + 2C, ... (engine_parts::colour_columns),
// so the loops below index them by stride; with one colour they are contiguous.
void GatedPixelCNNEngine::horizontal(int64_t i, int64_t j, int64_t c) {
  const Net& N = *net_;
  const int64_t n = n_, hid = N.hidden, twoN = 2 * hid, C = C_;
  // dst[b * dst_stride + c + C k] = src[b * m + k], k < m, for every image b.
  auto put = [n, c, C](const float* src, int64_t m, float* dst, int64_t dst_stride) {
    for (int64_t b = 0; b < n; ++b)
      for (int64_t k = 0; k < m; ++k) dst[b * dst_stride + c + C * k] = src[b * m + k];
  };
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const Layer& L = N.layers[l];
    const ColourLayer& S = split_[l][c];
    const int64_t m2 = S.h.out, m1 = m2 / 2;  // colour c's pre-activations: m1 tanh, m1 gates
    const int64_t hin = L.h.dense.in;
    if (l == 0)
      gather_taps(x_.data(), n, R_, H_, W_, C_, i, j, L.h.taps, rows_.data(), hin);
    else  // the taps of row i in h_[l - 1], [W][n][hid]
      gather_taps(h_[l - 1].data(), n, steps::MapLayout{hid, 0, n * hid, 1}, H_, W_, hid, i, j,
                  L.h.taps, rows_.data(), hin);
    dense(S.h, rows_.data(), hin, n, pre_.data(), m2);
    // + the vertical link: colour c's pre-activation m is column S.pre[m] = c + C m.
    for (int64_t b = 0; b < n; ++b) {
      float* __restrict p = pre_.data() + b * m2;
      const float* __restrict q = vh_[l].data() + (j * n + b) * twoN + c;
      if (C == 1)
        for (int64_t m = 0; m < m2; ++m) p[m] = p[m] + q[m];
      else
        for (int64_t m = 0; m < m2; ++m) p[m] = p[m] + q[C * m];
      if (N.conditioned) {
        const float* z = context(b, i, j) + (2 * l + 1) * twoN;
        for (int64_t m = 0; m < m2; ++m) p[m] = p[m] + z[S.pre[m]];
      }
    }
    // The gate's outputs: the first layer's are its output, the others' feed hout.
    float* out = h_[l].data() + j * n * hid;  // image b's pixel (i, j) at out + b hid
    float* gated = L.first ? out : g_[l].data();
    if (C == 1) {  // colour 0 has every column: gate in place
      steps::gate_rows(pre_.data(), n, m1, m2, gated, hid);
    } else {
      steps::gate_rows(pre_.data(), n, m1, m2, t_.data(), m1);
      put(t_.data(), m1, gated, hid);
    }
    if (!L.first) {
      dense(S.hout, g_[l].data(), hid, n, t_.data(), m1);
      const float* prev = h_[l - 1].data() + j * n * hid;
      for (int64_t b = 0; b < n; ++b) {
        const int64_t at = b * hid + c;
        const float* __restrict u = t_.data() + b * m1;
        float* __restrict o = out + at;
        const float* __restrict q = prev + at;
        if (C == 1)
          for (int64_t m = 0; m < m1; ++m) o[m] = q[m] + u[m];
        else
          for (int64_t m = 0; m < m1; ++m) o[C * m] = q[C * m] + u[m];
      }
    }
  }
}

void GatedPixelCNNEngine::compute(SubPixel p, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, hid = N.hidden;
  if (vertical_done_ != p.i - 1) {
    vertical_row(p.i - 1);
    vertical_done_ = p.i - 1;
  }
  horizontal(p.i, p.j, p.c);
  head_.logits(h_.back().data() + p.j * n * hid, n, p.c, logits);  // [W][n][hid]: n rows
}

// ------------------------------------------------- PixelCNN with a context

ConditionedPixelCNNEngine::ConditionedPixelCNNEngine(std::shared_ptr<const Net> net,
                                                     int64_t channels, int64_t levels)
    : StepEngine(channels, levels),
      net_(std::move(net)),
      head_(net_->out1, net_->out2, channels, levels) {}

std::unique_ptr<StepEngine> ConditionedPixelCNNEngine::clone() const {
  return std::make_unique<ConditionedPixelCNNEngine>(net_, C_, K_);
}

StepEngine::Identity ConditionedPixelCNNEngine::identity() const { return {103, 0, {}}; }

void ConditionedPixelCNNEngine::hash(steps::Fingerprint& f) const {
  f.add(net_->input);
  for (const auto& l : net_->layers) f.add(l);
  f.add(net_->out1);
  f.add(net_->out2);
}

int64_t ConditionedPixelCNNEngine::context_features() const {
  return net_->input.dense.out * (1 + static_cast<int64_t>(net_->layers.size()));
}

int64_t ConditionedPixelCNNEngine::input_rows() const { return reach(net_->input) + 1; }

size_t ConditionedPixelCNNEngine::layer_bytes() const { return bytes_of(cache_); }

void ConditionedPixelCNNEngine::start(int64_t n) {
  const Net& N = *net_;
  const int64_t F = N.input.dense.out, L = static_cast<int64_t>(N.layers.size());
  rows_of_.assign(L, 1);
  cache_.assign(L, {});
  int64_t max_in = N.input.dense.in;
  for (int64_t l = 0; l < L; ++l) {
    rows_of_[l] = reach(N.layers[l]) + 1;
    cache_[l].assign(n * rows_of_[l] * W_ * F, 0.0f);
    max_in = std::max(max_in, N.layers[l].dense.in);
  }
  grow(rows_, n * max_in);
  grow(h_, n * F);
  grow(t_, n * F);
}

void ConditionedPixelCNNEngine::compute(SubPixel p, float* logits) {
  const Net& N = *net_;
  const int64_t n = n_, F = N.input.dense.out, i = p.i, j = p.j;
  gather_taps(x_.data(), n, R_, H_, W_, C_, i, j, N.input.taps, rows_.data(), N.input.dense.in);
  dense(N.input.dense, rows_.data(), N.input.dense.in, n, h_.data(), F);
  // h = relu(input(x) + context[0:F]), as in the torch network.
  for (int64_t b = 0; b < n; ++b) {
    const float* z = context(b, i, j);
    for (int64_t m = 0; m < F; ++m) {
      const float v = h_[b * F + m] + z[m];
      h_[b * F + m] = v > 0.0f ? v : 0.0f;
    }
  }
  for (size_t l = 0; l < N.layers.size(); ++l) {
    const steps::Conv& L = N.layers[l];
    float* cache = cache_[l].data();
    put_ring(cache, n, rows_of_[l], W_, F, i, j, h_.data());
    gather_taps(cache, n, rows_of_[l], H_, W_, F, i, j, L.taps, rows_.data(), L.dense.in);
    dense(L.dense, rows_.data(), L.dense.in, n, t_.data(), F);
    // h = relu(h + conv(h) + context[(l + 1) F : (l + 2) F]).
    for (int64_t b = 0; b < n; ++b) {
      const float* z = context(b, i, j) + (l + 1) * F;
      for (int64_t m = 0; m < F; ++m) {
        const float v = h_[b * F + m] + t_[b * F + m] + z[m];
        h_[b * F + m] = v > 0.0f ? v : 0.0f;
      }
    }
  }
  head_.logits(h_.data(), n, p.c, logits);  // h >= 0
}

}  // namespace tame
