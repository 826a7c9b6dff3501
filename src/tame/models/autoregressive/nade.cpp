#include "tame/models/autoregressive/nade.h"

#include <algorithm>

#include "tame/parallel.h"

namespace tame {

namespace {

float dot(const float* a, const float* b, int64_t n) {
  float acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) acc[k] += a[i + k] * b[i + k];
  float s = 0;
  for (; i < n; ++i) s += a[i] * b[i];
  for (float v : acc) s += v;
  return s;
}

// Binary NADE on the CPU, one image at a time with its running pre-activation
// in cache, instead of the [B, D, H] tensors of the cumulative-sum form (which
// spend their time streaming memory). Forward: a = c; per d: h = sigmoid(a),
// l_d = b_d + v_d . h, a += x_d W[:, d]. Backward, per image: the h_d again,
// then in reverse order dv_d += g_d h_d, da_d = g_d v_d h_d (1 - h_d), and
// with r = sum_{d' >= d} da_d', dW[:, d-1] += x_{d-1} r and dx_{d-1} = W[:, d-1] . r;
// dc = r at the end.
// Images go in fixed chunks whose gradient sums are added in order, so a step
// does not depend on the thread count.
constexpr int64_t kChunk = 16;

struct NadeBinary : torch::autograd::Function<NadeBinary> {
  // x [B, D] in [-1, 1]; W [H, D]; c [H]; v [D, H]; b [D] -> logits [B, D].
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x,
                               const torch::Tensor& W, const torch::Tensor& c,
                               const torch::Tensor& v, const torch::Tensor& b) {
    ctx->save_for_backward({x, W, c, v, b});
    const int64_t B = x.size(0), D = x.size(1), H = W.size(0);
    auto xs = x.contiguous(), wt = W.t().contiguous(), cs = c.contiguous(), vs = v.contiguous(),
         bs = b.contiguous();
    auto out = torch::empty({B, D});
    float* o = out.data_ptr<float>();
    run_parallel(B, std::max(1, at::get_num_threads()), [&](int64_t i) {
      std::vector<float> a(cs.data_ptr<float>(), cs.data_ptr<float>() + H), h(H);
      const float* xi = xs.data_ptr<float>() + i * D;
      for (int64_t d = 0; d < D; ++d) {
        steps::sigmoid(a.data(), H, h.data());
        o[i * D + d] = bs.data_ptr<float>()[d] + dot(vs.data_ptr<float>() + d * H, h.data(), H);
        const float* w = wt.data_ptr<float>() + d * H;
        for (int64_t k = 0; k < H; ++k) a[k] += xi[d] * w[k];
      }
    });
    return out;
  }

  static torch::autograd::tensor_list backward(torch::autograd::AutogradContext* ctx,
                                               torch::autograd::tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    auto xs = saved[0].contiguous(), wt = saved[1].t().contiguous(), c = saved[2].contiguous(),
         vs = saved[3].contiguous();
    auto g = grads[0].contiguous();
    const int64_t B = xs.size(0), D = xs.size(1), H = wt.size(1);
    const int64_t chunks = (B + kChunk - 1) / kChunk;
    auto dwt = torch::zeros({chunks, D, H}), dc = torch::zeros({chunks, H}),
         dv = torch::zeros({chunks, D, H}), db = torch::zeros({chunks, D});
    auto dx = torch::zeros({B, D});  // dx_j = W[:, j] . r (tests take it; training does not)
    run_parallel(chunks, std::max(1, at::get_num_threads()), [&](int64_t ch) {
      std::vector<float> hs(D * H), a(H), r(H);
      float *gw = dwt[ch].data_ptr<float>(), *gc = dc[ch].data_ptr<float>(),
            *gv = dv[ch].data_ptr<float>(), *gb = db[ch].data_ptr<float>();
      const float *w = wt.data_ptr<float>(), *v = vs.data_ptr<float>();
      for (int64_t i = ch * kChunk; i < std::min(B, (ch + 1) * kChunk); ++i) {
        const float* xi = xs.data_ptr<float>() + i * D;
        const float* gi = g.data_ptr<float>() + i * D;
        std::copy_n(c.data_ptr<float>(), H, a.data());
        for (int64_t d = 0; d < D; ++d) {
          steps::sigmoid(a.data(), H, hs.data() + d * H);
          for (int64_t k = 0; k < H; ++k) a[k] += xi[d] * w[d * H + k];
        }
        std::fill(r.begin(), r.end(), 0.0f);
        for (int64_t d = D - 1; d >= 0; --d) {
          const float gd = gi[d], *h = hs.data() + d * H, *vd = v + d * H;
          float* gvd = gv + d * H;
          gb[d] += gd;
          for (int64_t k = 0; k < H; ++k) {
            gvd[k] += gd * h[k];
            r[k] += gd * vd[k] * h[k] * (1.0f - h[k]);
          }
          if (d == 0) continue;
          for (int64_t k = 0; k < H; ++k) gw[(d - 1) * H + k] += xi[d - 1] * r[k];
          dx.data_ptr<float>()[i * D + d - 1] = dot(w + (d - 1) * H, r.data(), H);
        }
        for (int64_t k = 0; k < H; ++k) gc[k] += r[k];
      }
    });
    return {dx, dwt.sum(0).t(), dc.sum(0), dv.sum(0), db.sum(0)};
  }
};

// NADE step by step: a running pre-activation a per image, to which each
// observed sub-pixel adds its column of W (in the order of the sub-pixels, so
// the sums are fixed), then the output map of dimension d on sigmoid(a).
class NadeEngine : public DenseEngine {
 public:
  struct Net {
    int64_t hidden = 0;
    std::vector<float> w;           // [D][H]: column j of W
    std::vector<float> c;           // [H]
    std::vector<steps::Dense> out;  // per d: H -> K'
  };
  NadeEngine(std::shared_ptr<const Net> net, ImageShape shape, int64_t levels)
      : DenseEngine(shape, levels), net_(std::move(net)) {}
  std::unique_ptr<StepEngine> clone() const override {
    return std::make_unique<NadeEngine>(net_, shape_, K_);
  }

 protected:
  void hash(steps::Fingerprint& f) const override {
    f.add(int64_t{202});
    f.add(net_->w.data(), sizeof(float) * net_->w.size());
    f.add(net_->c.data(), sizeof(float) * net_->c.size());
    for (const auto& d : net_->out) f.add(d);
  }
  void reset(int64_t n) override {
    const int64_t H = net_->hidden;
    a_.resize(n * H);
    for (int64_t b = 0; b < n; ++b) std::copy(net_->c.begin(), net_->c.end(), a_.begin() + b * H);
    h_.assign(n * H, 0.0f);
    out_.assign(n * outputs_, 0.0f);
  }
  void compute_dim(int64_t d, float* params) override {
    const int64_t H = net_->hidden;
    for (int64_t b = 0; b < n_; ++b) {
      float* a = a_.data() + b * H;
      if (d > 0) {
        const float xv = x(b)[d - 1];
        const float* w = net_->w.data() + (d - 1) * H;
        for (int64_t k = 0; k < H; ++k) a[k] = a[k] + xv * w[k];
      }
      steps::sigmoid(a, H, h_.data() + b * H);
    }
    steps::dense(net_->out[d], h_.data(), H, n_, out_.data(), outputs_);
    write_logits(out_.data(), params);
  }
  size_t layer_bytes() const override {
    return sizeof(float) * (a_.size() + h_.size() + out_.size());
  }

 private:
  std::shared_ptr<const Net> net_;
  std::vector<float> a_, h_, out_;
};

}  // namespace

Nade::Nade(const NadeOptions& o, ImageShape shape, int64_t levels)
    : DenseAutoregressiveModel(shape, levels), options(o) {
  TORCH_CHECK(o.hidden > 0, "nade: hidden must be positive");
  const int64_t H = o.hidden, D = D_;
  W_ = register_parameter("W", torch::randn({H, D}) / std::sqrt(static_cast<double>(D)));
  c_ = register_parameter("c", torch::zeros({H}));
  V_ = register_parameter("V", torch::randn({D, outputs_, H}) / std::sqrt(static_cast<double>(H)));
  b_ = register_parameter("b", torch::zeros({D, outputs_}));
}

torch::Tensor Nade::flat_logits(const torch::Tensor& x) {
  if (outputs_ == 1 && x.device().is_cpu() && x.scalar_type() == torch::kFloat)
    return NadeBinary::apply(x, W_, c_, V_.squeeze(1), b_.squeeze(1)).unsqueeze(2);
  return flat_logits_reference(x);
}

torch::Tensor Nade::flat_logits_reference(const torch::Tensor& x) {
  // a_d = c + sum_{j<d} x_j W[:, j]: an exclusive cumulative sum over d.
  auto xw = x.unsqueeze(2) * W_.t().unsqueeze(0);  // [B, D, H]
  auto a = c_ + (xw.cumsum(1) - xw);
  auto h = torch::sigmoid(a);
  if (outputs_ == 1) return (h * V_.squeeze(1)).sum(2, true) + b_;  // [B, D, 1]
  return torch::einsum("bdh,dkh->bdk", {h, V_}) + b_;
}

std::unique_ptr<StepEngine> Nade::step_engine() {
  torch::NoGradGuard g;
  const int64_t H = options.hidden, D = D_;
  auto net = std::make_shared<NadeEngine::Net>();
  net->hidden = H;
  net->w = to_floats(W_.t());  // [D][H]
  net->c = to_floats(c_);
  for (int64_t d = 0; d < D; ++d)  // V[d] is [K', H]; the Dense holds [H][K']
    net->out.push_back({H, outputs_, to_floats(V_[d].t()), to_floats(b_[d])});
  return std::make_unique<NadeEngine>(net, shape_, levels_);
}

}  // namespace tame
