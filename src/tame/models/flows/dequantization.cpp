#include "tame/models/flows/dequantization.h"

#include <cmath>

#include "tame/dist/likelihood.h"
#include "tame/nn/autocast.h"
#include "tame/nn/masked_conv.h"  // to_step_dense

namespace tame::flows {

VariationalDequantizer::VariationalDequantizer(ImageShape shape, int64_t levels, int64_t couplings,
                                               int64_t hidden, double scale_bound)
    : levels_(levels), bound_(scale_bound) {
  namespace nn = torch::nn;
  TORCH_CHECK(couplings >= 0 && hidden >= 1,
              "variational dequantization: deq_couplings must be >= 0 and deq_hidden >= 1");
  const int64_t C = shape.channels;
  context_ = register_module(
      "context",
      nn::Sequential(nn::Conv2d(nn::Conv2dOptions(C, hidden, 3).padding(1)), nn::ReLU(),
                     nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1)), nn::ReLU()));
  affine_ = register_module("affine", nn::Conv2d(nn::Conv2dOptions(hidden, 2 * C, 3).padding(1)));
  {
    torch::NoGradGuard g;
    affine_->weight.zero_();
    affine_->bias.zero_();
  }
  for (int64_t i = 0; i < couplings; ++i) {
    couplings_.push_back(
        register_module("coupling" + std::to_string(i), Conditioner(C + hidden, hidden, 2 * C)));
    masks_.push_back(register_buffer(
        "mask" + std::to_string(i),
        coupling_mask(MaskKind::kCheckerboard, C, shape.height, shape.width, i % 2 == 1)));
  }
}

Result VariationalDequantizer::transform(const torch::Tensor& eps, const torch::Tensor& x) {
  auto h = context_->forward(scale_to_unit(x, levels_).to(eps.scalar_type()));
  auto ms = full_precision(affine_(h)).chunk(2, 1);
  auto logs = bounded_log_scale(ms[1], bound_);
  auto z = eps * torch::exp(logs) + ms[0];
  auto logdet = sum_per_example(logs);
  for (size_t i = 0; i < couplings_.size(); ++i) {
    const auto& m = masks_[i];
    auto st = couplings_[i]->forward(torch::cat({z * m, h}, 1)).chunk(2, 1);
    auto s = bounded_log_scale(st[0], bound_) * (1.0 - m);
    z = z * torch::exp(s) + st[1] * (1.0 - m);
    logdet = logdet + sum_per_example(s);
  }
  // u = sigmoid(z): du/dz = sigmoid(z) sigmoid(-z).
  auto u = torch::sigmoid(z);
  logdet = logdet + sum_per_example(torch::log_sigmoid(z) + torch::log_sigmoid(-z));
  return {u, logdet};
}

std::pair<torch::Tensor, torch::Tensor> VariationalDequantizer::sample(const torch::Tensor& x) {
  auto eps =
      torch::randn(x.sizes(), torch::TensorOptions().dtype(torch::kFloat).device(x.device()));
  auto [u, logdet] = transform(eps, x);
  return {u, standard_normal_log_prob(eps.flatten(1)) - logdet};
}

FlowProgram VariationalDequantizer::program(ImageShape shape) const {
  const int64_t C = shape.channels, H = shape.height, W = shape.width;
  FlowProgram p;
  p.channels = C;
  p.height = H;
  p.width = W;
  steps::Feedforward context({H, W, C});
  for (size_t i = 0; i < context_->size(); ++i)
    if (auto conv = std::dynamic_pointer_cast<torch::nn::Conv2dImpl>(context_->ptr(i))) {
      context.add_conv(to_step_dense(*conv), 3, 1, 1);
      context.add_relu();  // every convolution of h is followed by a ReLU
    }
  const int64_t hidden = context.output().channels;
  p.context = std::move(context);
  auto step = [&](FlowStep::Kind kind) { return flow_step(kind, C, H, W); };
  p.steps.push_back(step(FlowStep::Kind::kLogit));  // z = logit(u), alpha 0
  for (size_t i = couplings_.size(); i-- > 0;) {
    FlowStep s = step(FlowStep::Kind::kCoupling);
    auto m = masks_[i].to(torch::kCPU, torch::kFloat).contiguous();
    for (int64_t j = 0; j < m.numel(); ++j) s.mask.push_back(m.data_ptr<float>()[j] != 0.0f);
    s.reads = C;
    s.context = true;
    s.inverse = true;
    s.bound = bound_;
    s.net = couplings_[i]->feedforward({H, W, C + hidden});
    p.steps.push_back(std::move(s));
  }
  FlowStep affine = step(FlowStep::Kind::kCoupling);  // eps = (z - mu(h)) e^-logs(h)
  affine.context = true;
  affine.shift_first = true;
  affine.inverse = true;
  affine.bound = bound_;
  affine.net = steps::Feedforward({H, W, hidden});
  affine.net.add_conv(to_step_dense(*affine_), 3, 1, 1);
  p.steps.push_back(std::move(affine));
  return p;
}

std::shared_ptr<VariationalDequantizer> make_dequantizer(const std::string& kind, ImageShape shape,
                                                         int64_t levels, int64_t couplings,
                                                         int64_t hidden) {
  if (kind == "uniform") return nullptr;
  TORCH_CHECK(kind == "variational", "dequantization must be 'uniform' or 'variational', got '",
              kind, "'");
  return std::make_shared<VariationalDequantizer>(shape, levels, couplings, hidden, 2.0);
}

}  // namespace tame::flows
