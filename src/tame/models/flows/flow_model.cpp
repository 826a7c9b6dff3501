#include "tame/models/flows/flow_model.h"

#include <cmath>
#include <tuple>

#include "tame/dist/likelihood.h"

namespace tame {

nlohmann::json FlowOptions::help_with(nlohmann::json own) {
  own.update(nlohmann::json{
      {"hidden", "channels of each coupling's network"},
      {"alpha", "logit pre-processing: y -> logit(alpha + (1 - 2 alpha) y)"},
      {"dequantization", "uniform | variational (Flow++: a learned q(u|x), dequantization.h)"},
      {"deq_couplings", "couplings of the variational q(u|x)"},
      {"deq_hidden", "channels of q(u|x)'s networks"},
  });
  return own;
}

std::shared_ptr<flows::VariationalDequantizer> dequantizer_for(const FlowOptions& o, ImageShape s,
                                                               int64_t levels) {
  return flows::make_dequantizer(o.dequantization, s, levels, o.deq_couplings, o.deq_hidden);
}

FlowModel::FlowModel(ImageShape shape, int64_t levels, flows::TransformPtr transform, FlowBase base,
                     std::shared_ptr<flows::VariationalDequantizer> dequantizer)
    : ImageModel(shape, levels),
      transform_(std::move(transform)),
      base_(base),
      dequantizer_(std::move(dequantizer)) {
  register_module("transform", transform_);
  if (dequantizer_) register_module("dequantizer", dequantizer_);
}

torch::Tensor FlowModel::log_weight(const torch::Tensor& x) {
  const double K = static_cast<double>(levels_);
  torch::Tensor u, log_q;
  if (dequantizer_) {
    std::tie(u, log_q) = dequantizer_->sample(x);
  } else {  // uniform: q(u|x) = 1, log q = 0
    u = torch::rand(x.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(x.device()));
  }
  auto y = (x.to(torch::kFloat) + u) / K;
  auto [z, logdet] = transform_->forward(y);
  torch::Tensor log_base;
  if (base_ == FlowBase::kNormal) {
    log_base = standard_normal_log_prob(z.flatten(1));
  } else {
    auto inside = ((z >= 0) & (z < 1)).flatten(1).all(1);
    log_base = torch::where(inside, torch::zeros_like(logdet), torch::full_like(logdet, -INFINITY));
  }
  auto w = log_base + logdet - static_cast<double>(shape_.dims()) * std::log(K);
  return dequantizer_ ? w - log_q : w;
}

torch::Tensor FlowModel::nll(const torch::Tensor& x) { return -log_weight(x); }

torch::Tensor FlowModel::nll_iw(const torch::Tensor& x, int64_t k) {
  TORCH_CHECK(k >= 1, "nll_iw: k must be >= 1, got ", k);
  std::vector<torch::Tensor> w;
  for (int64_t i = 0; i < k; ++i) w.push_back(log_weight(x));
  return -(torch::logsumexp(torch::stack(w), 0) - std::log(static_cast<double>(k)));
}

torch::Tensor FlowModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  c10::InferenceMode guard;
  auto opts = torch::TensorOptions().dtype(torch::kFloat).device(device());
  const std::vector<int64_t> size = {n, shape_.channels, shape_.height, shape_.width};
  auto z =
      base_ == FlowBase::kNormal ? temperature * torch::randn(size, opts) : torch::rand(size, opts);
  auto y = transform_->inverse(z).first;
  return torch::floor(y * static_cast<double>(levels_)).clamp(0, levels_ - 1).to(torch::kUInt8);
}

std::unique_ptr<ImageCoder> FlowModel::coder() {
  if (base_ != FlowBase::kNormal) return nullptr;
  return std::make_unique<FlowCoder>(
      programs(), ImageSize{shape_.channels, shape_.height, shape_.width}, levels_);
}

FlowNets FlowModel::programs() {
  torch::NoGradGuard g;
  FlowNets nets;
  nets.flow.channels = shape_.channels;
  nets.flow.height = shape_.height;
  nets.flow.width = shape_.width;
  TORCH_CHECK(transform_->add_steps(nets.flow, shape_) == shape_,
              "flow coder: the transform does not keep the image's shape");
  if (dequantizer_) nets.dequantizer = dequantizer_->program(shape_);
  return nets;
}

flows::TransformPtr logit_then(const char* model, double alpha, flows::TransformPtr body) {
  TORCH_CHECK(alpha > 0 && alpha < 0.5, model, ": alpha must be in (0, 0.5), got ", alpha);
  return std::make_shared<flows::Composite>(
      std::vector<flows::TransformPtr>{std::make_shared<flows::Logit>(alpha), std::move(body)});
}

void check_side(const char* model, const std::string& option, int64_t side, ImageShape s) {
  TORCH_CHECK(s.height % side == 0 && s.width % side == 0, model, ": ", option,
              " needs height and width divisible by ", side, ", got ", s.height, "x", s.width);
}

}  // namespace tame
