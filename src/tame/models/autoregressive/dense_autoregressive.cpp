#include "tame/models/autoregressive/dense_autoregressive.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace tame {

DenseAutoregressiveModel::DenseAutoregressiveModel(ImageShape shape, int64_t levels)
    : AutoregressiveModel(shape, levels), D_(shape.dims()), outputs_(levels == 2 ? 1 : levels) {}

torch::Tensor DenseAutoregressiveModel::forward_unit(const torch::Tensor& x_unit) {
  TORCH_CHECK(x_unit.size(1) == shape_.channels && x_unit.size(2) == shape_.height &&
                  x_unit.size(3) == shape_.width,
              "this dense model takes ", shape_.str(), " images only");
  auto out = flat_logits(to_subpixels(x_unit));  // [B, D, outputs]
  if (outputs_ == 1) out = torch::cat({torch::zeros_like(out), out}, 2);
  return from_subpixels(out, shape_);
}

std::vector<float> to_floats(const torch::Tensor& t) {
  auto c = t.detach().to(torch::kCPU, torch::kFloat).contiguous();
  return {c.data_ptr<float>(), c.data_ptr<float>() + c.numel()};
}

torch::Tensor to_subpixels(const torch::Tensor& x) {
  return x.permute({0, 2, 3, 1}).reshape({x.size(0), -1});
}

torch::Tensor from_subpixels(const torch::Tensor& logits, const ImageShape& s) {
  const int64_t B = logits.size(0), K = logits.size(2);
  return logits.view({B, s.height, s.width, s.channels, K}).permute({0, 4, 3, 1, 2});
}

DenseEngine::DenseEngine(ImageShape shape, int64_t levels)
    : StepEngine(shape.channels, levels),
      shape_(shape),
      D_(shape.dims()),
      outputs_(levels == 2 ? 1 : levels) {}

void DenseEngine::start(int64_t n) {
  if (H_ != shape_.height || W_ != shape_.width)
    throw std::invalid_argument("this dense model codes " + shape_.str() + " images only, not " +
                                std::to_string(H_) + "x" + std::to_string(W_));
  reset(n);
}

void DenseEngine::compute(SubPixel p, float* params) {
  compute_dim((p.i * W_ + p.j) * C_ + p.c, params);
}

uint16_t DenseEngine::value(int64_t b, int64_t d) const {
  const int64_t c = d % C_, pixel = d / C_;
  return images()[(b * C_ + c) * H_ * W_ + pixel];
}

void DenseEngine::expand_logits(const float* out, float* logits) const {
  if (outputs_ == 1) {
    logits[0] = 0.0f;
    logits[1] = out[0];
  } else {
    std::copy_n(out, K_, logits);
  }
}

void DenseEngine::write_logits(const float* out, float* params) const {
  for (int64_t b = 0; b < n_; ++b) expand_logits(out + b * outputs_, params + b * K_);
}

}  // namespace tame
