#include "tame/models/autoregressive/fvsbn.h"

namespace tame {

namespace {

class FvsbnEngine : public DenseEngine {
 public:
  FvsbnEngine(std::shared_ptr<const FvsbnSteps> net, ImageShape shape, int64_t levels)
      : DenseEngine(shape, levels), net_(std::move(net)) {}
  std::unique_ptr<StepEngine> clone() const override {
    return std::make_unique<FvsbnEngine>(net_, shape_, K_);
  }

 protected:
  void hash(steps::Fingerprint& f) const override {
    f.add(int64_t{201});
    net_->hash(f);
  }
  void reset(int64_t n) override {
    h_.assign(n * net_->width(), 0.0f);
    out_.assign(n * outputs_, 0.0f);
  }
  void compute_dim(int64_t d, float* params) override {
    net_->logits(d, x(0), D_, n_, h_.data(), out_.data(), outputs_);
    write_logits(out_.data(), params);
  }
  size_t layer_bytes() const override { return sizeof(float) * (h_.size() + out_.size()); }

 private:
  std::shared_ptr<const FvsbnSteps> net_;
  std::vector<float> h_, out_;
};

}  // namespace

void FvsbnSteps::logits(int64_t d, const float* x, int64_t D, int64_t n, float* h, float* out,
                        int64_t outputs) const {
  if (up.empty()) {
    steps::dense(prefix[d], x, D, n, out, outputs);
  } else {
    steps::dense(prefix[d], x, D, n, h, prefix[d].out);
    steps::dense(up[d], h, prefix[d].out, n, out, outputs);
  }
}

void FvsbnSteps::hash(steps::Fingerprint& f) const {
  for (const auto& d : prefix) f.add(d);
  for (const auto& d : up) f.add(d);
}

Fvsbn::Fvsbn(const FvsbnOptions& o, ImageShape shape, int64_t levels)
    : DenseAutoregressiveModel(shape, levels), options(o), rank_(levels == 2 ? 0 : o.rank) {
  TORCH_CHECK(o.rank >= 0, "fvsbn: rank must be >= 0");
  const int64_t D = D_, w = width();
  W_ = register_parameter("W", torch::randn({D * w, D}) * 0.01);
  b_ = register_parameter("b", torch::zeros({D, outputs_}));
  if (rank_ > 0)
    U_ = register_parameter("U", torch::randn({D, outputs_, rank_}) / std::sqrt(rank_));
  // Row d * w + k reads x_j for j < d only.
  auto rows = torch::arange(D).repeat_interleave(w).unsqueeze(1);
  mask_ = (torch::arange(D).unsqueeze(0) < rows).to(torch::kFloat);
}

torch::Tensor Fvsbn::flat_logits(const torch::Tensor& x) {
  if (mask_.device() != x.device()) mask_ = mask_.to(x.device());
  auto h = torch::nn::functional::linear(x, W_ * mask_).view({x.size(0), D_, width()});
  if (rank_ == 0) return h + b_;
  return torch::einsum("bdr,dkr->bdk", {h, U_}) + b_;
}

std::unique_ptr<StepEngine> Fvsbn::step_engine() {
  return std::make_unique<FvsbnEngine>(std::make_shared<const FvsbnSteps>(steps()), shape_,
                                       levels_);
}

FvsbnSteps Fvsbn::steps() const {
  torch::NoGradGuard g;
  const int64_t w = width();
  FvsbnSteps net;
  for (int64_t d = 0; d < D_; ++d) {
    // Rows d*w .. (d+1)*w of W read x_<d: the Dense holds them as [d][w].
    auto rows = W_.slice(0, d * w, (d + 1) * w).slice(1, 0, d).t();
    net.prefix.push_back(
        {d, w, to_floats(rows), rank_ == 0 ? to_floats(b_[d]) : std::vector<float>(w, 0.0f)});
    if (rank_ > 0)  // U[d] is [K, rank]; the Dense holds [rank][K]
      net.up.push_back({rank_, outputs_, to_floats(U_[d].t()), to_floats(b_[d])});
  }
  return net;
}

}  // namespace tame
