#include "tame/models/autoregressive/made.h"

#include <algorithm>

#include "tame/dist/integer_cdf.h"
#include "tame/dist/likelihood.h"
#include "tame/random.h"

namespace tame {

namespace {

// The M networks of a MADE ensemble step by step. Hidden units are visited in
// the order of their connectivity m (stable), so that "the units with m >= j"
// and "the units with m < d" are ranges. Observing input j adds its weight to
// the layer-1 units that read it; a unit's activation is final once input m(k)
// is known, and then (2 layers) it adds to the layer-2 units that read it;
// output d reads the final units with m < d. Every sum is taken in the order
// of the steps, so the bits are fixed. The mixture weights w_m, proportional
// to p_m(x_<d), are updated by each observed value's probability and
// renormalized, with det_exp only. The direct connections are an FVSBN's
// steps, computed once per dimension for all images and shared by the draws.
class MadeEngine : public DenseEngine {
 public:
  struct Draw {
    std::vector<int64_t> order[2];  // per layer: units sorted by m
    std::vector<int64_t> m[2];      // per layer: m of order[l][t]
  };
  struct Net {
    int64_t hidden = 0, layers = 1;
    std::vector<float> w1t, b1;  // [D][H] (w1t[j][u] = W1[u][j]), [H]
    std::vector<float> w2t, b2;  // [H][H] (w2t[u][v] = W2[v][u]), [H]
    std::vector<float> vt, bv;   // [D][H][K'], [D][K']
    std::vector<Draw> draws;
    std::shared_ptr<const FvsbnSteps> direct;  // null without direct connections
  };
  MadeEngine(std::shared_ptr<const Net> net, ImageShape shape, int64_t levels)
      : DenseEngine(shape, levels), net_(std::move(net)), M_(net_->draws.size()) {
    P_ = M_ * (1 + levels);
  }
  std::unique_ptr<StepEngine> clone() const override {
    return std::make_unique<MadeEngine>(net_, shape_, K_);
  }

 protected:
  void hash(steps::Fingerprint& f) const override;
  void reset(int64_t n) override;
  void compute_dim(int64_t d, float* params) override;
  size_t layer_bytes() const override {
    return sizeof(float) * (a1_.size() + a2_.size() + hl_.size() + w_.size() + comp_.size() +
                            dh_.size() + dout_.size());
  }
  double write_cdf(int64_t, SubPixel, const float* params, uint32_t precision, double temperature,
                   uint32_t* cdf, int64_t value) const override {
    return mixture_cdf(params, params + M_, M_, K_, precision, cdf, value, temperature);
  }

 private:
  void observe_input(int64_t b, int64_t m, int64_t j);
  void output(int64_t b, int64_t m, int64_t d, float* logits);
  void reweigh(int64_t b, int64_t d);

  std::shared_ptr<const Net> net_;
  int64_t M_;
  std::vector<float> a1_, a2_, hl_;  // [n][M][H]: pre-activations, the last layer's outputs
  std::vector<float> w_, comp_;      // [n][M]: weights; [n][M][K]: last logits per draw
  std::vector<float> out_, e_;
  std::vector<float> dh_, dout_;  // the direct connections': scratch, [n][K'] logits
};

int64_t lower(const std::vector<int64_t>& sorted, int64_t v) {
  return std::lower_bound(sorted.begin(), sorted.end(), v) - sorted.begin();
}

void MadeEngine::hash(steps::Fingerprint& f) const {
  for (int64_t v : {int64_t{203}, net_->hidden, net_->layers, M_}) f.add(v);
  for (const auto* v : {&net_->w1t, &net_->b1, &net_->w2t, &net_->b2, &net_->vt, &net_->bv})
    f.add(v->data(), sizeof(float) * v->size());
  for (const auto& dr : net_->draws)
    for (int l = 0; l < net_->layers; ++l) {
      f.add(dr.order[l].data(), sizeof(int64_t) * dr.order[l].size());
      f.add(dr.m[l].data(), sizeof(int64_t) * dr.m[l].size());
    }
  if (net_->direct) {  // after the rest: engines without them keep their fingerprints
    f.add(int64_t{1});
    net_->direct->hash(f);
  }
}

void MadeEngine::reset(int64_t n) {
  const int64_t H = net_->hidden;
  a1_.resize(n * M_ * H);
  a2_.resize(n * M_ * H);
  for (int64_t r = 0; r < n * M_; ++r) {
    std::copy(net_->b1.begin(), net_->b1.end(), a1_.begin() + r * H);
    if (net_->layers == 2) std::copy(net_->b2.begin(), net_->b2.end(), a2_.begin() + r * H);
  }
  hl_.assign(n * M_ * H, 0.0f);
  w_.assign(n * M_, 1.0f / static_cast<float>(M_));
  comp_.assign(n * M_ * K_, 0.0f);
  out_.resize(outputs_);
  e_.resize(K_);
  if (net_->direct) {
    dh_.assign(n * net_->direct->width(), 0.0f);
    dout_.assign(n * outputs_, 0.0f);
  }
}

void MadeEngine::observe_input(int64_t b, int64_t m, int64_t j) {
  const int64_t H = net_->hidden;
  const Draw& dr = net_->draws[m];
  const int64_t r = (b * M_ + m) * H;
  float *a1 = a1_.data() + r, *a2 = a2_.data() + r, *hl = hl_.data() + r;
  const float xv = x(b)[j];
  const float* w1 = net_->w1t.data() + j * H;
  for (int64_t t = lower(dr.m[0], j); t < H; ++t) {
    const int64_t u = dr.order[0][t];
    a1[u] = a1[u] + xv * w1[u];
  }
  // Layer-1 units with m = j are now final.
  const int64_t end1 = lower(dr.m[0], j + 1);
  for (int64_t t = lower(dr.m[0], j); t < end1; ++t) {
    const int64_t u = dr.order[0][t];
    const float h = a1[u] > 0.0f ? a1[u] : 0.0f;
    if (net_->layers == 1) {
      hl[u] = h;
      continue;
    }
    const float* w2 = net_->w2t.data() + u * H;
    for (int64_t s = lower(dr.m[1], j); s < H; ++s) {
      const int64_t v = dr.order[1][s];
      a2[v] = a2[v] + h * w2[v];
    }
  }
  if (net_->layers == 2) {
    const int64_t end2 = lower(dr.m[1], j + 1);
    for (int64_t s = lower(dr.m[1], j); s < end2; ++s) {
      const int64_t v = dr.order[1][s];
      hl[v] = a2[v] > 0.0f ? a2[v] : 0.0f;
    }
  }
}

void MadeEngine::output(int64_t b, int64_t m, int64_t d, float* logits) {
  const int64_t H = net_->hidden, Ko = outputs_, L = net_->layers - 1;
  const Draw& dr = net_->draws[m];
  const float* hl = hl_.data() + (b * M_ + m) * H;
  std::copy_n(net_->bv.data() + d * Ko, Ko, out_.data());
  const int64_t used = lower(dr.m[L], d);
  for (int64_t t = 0; t < used; ++t) {
    const int64_t u = dr.order[L][t];
    const float h = hl[u];
    const float* v = net_->vt.data() + (d * H + u) * Ko;
    for (int64_t k = 0; k < Ko; ++k) out_[k] = out_[k] + h * v[k];
  }
  if (net_->direct)
    for (int64_t k = 0; k < Ko; ++k) out_[k] = out_[k] + dout_[b * Ko + k];
  expand_logits(out_.data(), logits);
}

// w_m <- w_m p_m(x_{d-1}) / sum, with p_m from the last step's logits of draw m.
void MadeEngine::reweigh(int64_t b, int64_t d) {
  const uint16_t v = value(b, d - 1);
  float* w = w_.data() + b * M_;
  float sum = 0.0f;
  for (int64_t m = 0; m < M_; ++m) {
    const float* l = comp_.data() + (b * M_ + m) * K_;
    float top = l[0];
    for (int64_t k = 1; k < K_; ++k) top = l[k] > top ? l[k] : top;
    steps::exp_shifted(l, K_, top, e_.data());
    double s = 0;
    for (int64_t k = 0; k < K_; ++k) s = s + static_cast<double>(e_[k]);
    w[m] = w[m] * static_cast<float>(static_cast<double>(e_[v]) / s);
    sum = sum + w[m];
  }
  if (sum > 0.0f)
    for (int64_t m = 0; m < M_; ++m) w[m] = w[m] / sum;
}

void MadeEngine::compute_dim(int64_t d, float* params) {
  if (net_->direct) net_->direct->logits(d, x(0), D_, n_, dh_.data(), dout_.data(), outputs_);
  for (int64_t b = 0; b < n_; ++b) {
    if (d > 0) {
      reweigh(b, d);
      for (int64_t m = 0; m < M_; ++m) observe_input(b, m, d - 1);
    }
    float* p = params + b * P_;
    std::copy_n(w_.data() + b * M_, M_, p);
    for (int64_t m = 0; m < M_; ++m) {
      float* l = comp_.data() + (b * M_ + m) * K_;
      output(b, m, d, l);
      std::copy_n(l, K_, p + M_ + m * K_);
    }
  }
}

}  // namespace

Made::Made(const MadeOptions& o, ImageShape shape, int64_t levels)
    : DenseAutoregressiveModel(shape, levels), options(o) {
  TORCH_CHECK(o.hidden > 0, "made: hidden must be positive");
  TORCH_CHECK(o.layers == 1 || o.layers == 2, "made: layers must be 1 or 2");
  TORCH_CHECK(o.masks >= 1, "made: masks must be >= 1");
  const int64_t D = D_, H = o.hidden;
  hidden_ = register_module("hidden", torch::nn::ModuleList());
  for (int64_t l = 0; l < o.layers; ++l) hidden_->push_back(torch::nn::Linear(l == 0 ? D : H, H));
  out_ = register_module("out", torch::nn::Linear(H, D * outputs_));
  if (o.direct)
    direct_ = register_module("direct", std::make_shared<Fvsbn>(FvsbnOptions{}, shape, levels));
  // Connectivity draws: m(k) uniform in [lo, D - 2], lo = the least m below.
  for (int64_t mask = 0; mask < o.masks; ++mask) {
    uint64_t state = splitmix64(static_cast<uint64_t>(o.seed) ^ splitmix64(mask + 1));
    std::vector<std::vector<int64_t>> layers;
    int64_t lo = 0;
    const int64_t hi = std::max<int64_t>(D - 2, 0);
    for (int64_t l = 0; l < o.layers; ++l) {
      std::vector<int64_t> m(H);
      for (auto& v : m) v = lo + static_cast<int64_t>(splitmix64(state++) % (hi - lo + 1));
      lo = *std::min_element(m.begin(), m.end());
      layers.push_back(std::move(m));
    }
    degrees_.push_back(std::move(layers));
  }
  masks_.resize(o.masks);
}

torch::Tensor Made::weight_mask(int64_t mask, int64_t layer) const {
  auto deg = [&](int64_t l) { return torch::tensor(degrees_[mask][l], torch::kLong); };
  if (layer == 0)  // [H, D]: unit k reads input j <= m(k)
    return (torch::arange(D_).unsqueeze(0) <= deg(0).unsqueeze(1)).to(torch::kFloat);
  if (layer < options.layers)  // [H, H]: unit k reads unit i below with m(i) <= m(k)
    return (deg(layer - 1).unsqueeze(0) <= deg(layer).unsqueeze(1)).to(torch::kFloat);
  // [D, H]: output d reads the last units with m < d
  return (deg(options.layers - 1).unsqueeze(0) < torch::arange(D_).unsqueeze(1)).to(torch::kFloat);
}

torch::Tensor Made::flat_logits(const torch::Tensor& x) {
  auto& masks = masks_[draw_];
  if (masks.empty() || masks[0].device() != x.device()) {
    masks.clear();
    for (int64_t l = 0; l <= options.layers; ++l)
      masks.push_back(weight_mask(draw_, l).to(x.device()));
  }
  namespace F = torch::nn::functional;
  auto h = x;
  for (int64_t l = 0; l < options.layers; ++l) {
    auto lin = hidden_[l]->as<torch::nn::Linear>();
    h = torch::relu(F::linear(h, lin->weight * masks[l], lin->bias));
  }
  const int64_t H = options.hidden;
  auto v = (out_->weight.view({D_, outputs_, H}) * masks.back().unsqueeze(1)).view({-1, H});
  auto out = F::linear(h, v, out_->bias).view({x.size(0), D_, outputs_});
  return direct_ ? out + direct_->flat_logits(x) : out;
}

torch::Tensor Made::logits(const torch::Tensor& x) {
  const int64_t M = options.masks;
  if (M == 1) return AutoregressiveModel::logits(x);
  auto xu = scale_to_unit(x, levels_);
  auto xl = x.to(torch::kLong).unsqueeze(1);
  const int64_t saved = draw_;
  std::vector<torch::Tensor> lps, prefixes;
  for (int64_t m = 0; m < M; ++m) {
    draw_ = m;
    auto lp = torch::log_softmax(forward_unit(xu), 1);    // [B, K, C, H, W]
    auto lx = to_subpixels(lp.gather(1, xl).squeeze(1));  // [B, D]
    auto before = torch::cat({torch::zeros_like(lx.slice(1, 0, 1)), lx.slice(1, 0, D_ - 1)}, 1);
    prefixes.push_back(before.cumsum(1));  // log p_m(x_<d)
    lps.push_back(lp);
  }
  draw_ = saved;
  auto P = torch::stack(prefixes);  // [M, B, D]
  auto logw = P - P.logsumexp(0, true);
  std::vector<torch::Tensor> terms;
  for (int64_t m = 0; m < M; ++m)
    terms.push_back(lps[m] + from_subpixels(logw[m].unsqueeze(2), shape_));
  return torch::stack(terms).logsumexp(0);
}

torch::Tensor Made::loss(const torch::Tensor& x) {
  return categorical_nll(AutoregressiveModel::logits(x), x).mean();
}

StepResult Made::train_step(const torch::Tensor& x, Optimizers& optimizers,
                            const StepContext& context) {
  draw_ = context.step % options.masks;
  return ImageModel::train_step(x, optimizers, context);
}

std::unique_ptr<StepEngine> Made::step_engine() {
  torch::NoGradGuard g;
  const int64_t H = options.hidden, Ko = outputs_;
  auto net = std::make_shared<MadeEngine::Net>();
  net->hidden = H;
  net->layers = options.layers;
  auto l1 = hidden_[0]->as<torch::nn::Linear>();
  net->w1t = to_floats(l1->weight.t());
  net->b1 = to_floats(l1->bias);
  if (options.layers == 2) {
    auto l2 = hidden_[1]->as<torch::nn::Linear>();
    net->w2t = to_floats(l2->weight.t());
    net->b2 = to_floats(l2->bias);
  }
  net->vt = to_floats(out_->weight.view({D_, Ko, H}).permute({0, 2, 1}));
  net->bv = to_floats(out_->bias);
  for (const auto& layers : degrees_) {
    MadeEngine::Draw dr;
    for (int64_t l = 0; l < options.layers; ++l) {
      auto& order = dr.order[l];
      order.resize(H);
      for (int64_t k = 0; k < H; ++k) order[k] = k;
      std::stable_sort(order.begin(), order.end(),
                       [&](int64_t a, int64_t b) { return layers[l][a] < layers[l][b]; });
      for (int64_t k : order) dr.m[l].push_back(layers[l][k]);
    }
    net->draws.push_back(std::move(dr));
  }
  if (direct_) net->direct = std::make_shared<const FvsbnSteps>(direct_->steps());
  return std::make_unique<MadeEngine>(net, shape_, levels_);
}

}  // namespace tame
