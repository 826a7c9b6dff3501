#include "tame/models/image_model.h"

#include <cmath>

#include "tame/dist/likelihood.h"
#include "tame/error.h"

namespace tame {

const char* bound_name(Bound b) {
  switch (b) {
    case Bound::kExact:
      return "exact";
    case Bound::kUpper:
      return "upper";
    case Bound::kNone:
      return "none";
  }
  return "none";
}

torch::Device ImageModel::device() const {
  auto params = parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

void ImageModel::check_input(const torch::Tensor& x) const {
  check_images(x, shape_, levels_, any_size());
}

torch::Tensor ImageModel::nll(const torch::Tensor& x) {
  throw Error(name() + " has no likelihood (it can sample, not score)");
}

torch::Tensor ImageModel::encode_codes(const torch::Tensor& x) {
  throw Error(name() + " has no discrete codes");
}

torch::Tensor ImageModel::decode_codes(const torch::Tensor&, double) {
  throw Error(name() + " has no discrete codes");
}

torch::Tensor ImageModel::codes_nll(const torch::Tensor&, const torch::Tensor&) {
  throw Error(name() + " has no discrete codes");
}

torch::Tensor ImageModel::stage_codes(const torch::Tensor& codes, int64_t stage) const {
  if (stage != 0) throw Error(name() + " has one stage of codes");
  return codes;
}

torch::Tensor ImageModel::stage_given(const torch::Tensor&, int64_t) const {
  throw Error(name() + " has one stage of codes");
}

int64_t ImageModel::stage_given_channels(int64_t stage) {
  if (stage == 0) return 0;
  c10::InferenceMode guard;
  auto probe = torch::zeros({1, shape_.channels, shape_.height, shape_.width},
                            torch::TensorOptions().dtype(image_dtype(levels_)).device(device()));
  return stage_given(stage_codes(encode_codes(probe), stage - 1), stage).size(1);
}

torch::Tensor ImageModel::sample_given(const torch::Tensor&, double) {
  throw Error(name() + " is not a conditional model");
}

int64_t ImageModel::modelled_dims(const torch::Tensor& x) const {
  const int64_t C = x.size(1);
  return x[0].numel() / C * (C - given_channels());
}

Optimizers ImageModel::make_optimizers(double lr) {
  Optimizers out;
  out.push_back({"adam",
                 std::make_unique<torch::optim::Adam>(parameters(), torch::optim::AdamOptions(lr)),
                 lr});
  return out;
}

double finish_gradients(const std::vector<torch::Tensor>& params, const StepContext& context) {
  if (context.reduce_gradients) context.reduce_gradients(params);
  if (context.clip <= 0) return 0.0;
  return torch::nn::utils::clip_grad_norm_(params, context.clip);
}

StepResult ImageModel::train_step(const torch::Tensor& x, Optimizers& optimizers,
                                  const StepContext& context) {
  TORCH_CHECK(optimizers.size() == 1, "the default training step takes one optimizer, got ",
              optimizers.size());
  auto& opt = *optimizers.front().optimizer;
  opt.zero_grad();
  auto loss = forward_at_precision(context, x.device(), [&] {
    return this->loss(x) / static_cast<double>(modelled_dims(x));  // nats per dimension
  });
  StepResult r;
  r.loss = agreed_loss(loss.item<double>(), context);
  if (!std::isfinite(r.loss)) return r;
  loss.backward();
  r.grad_norm = finish_gradients(parameters(), context);
  opt.step();
  r.metrics = step_metrics();
  return r;
}

}  // namespace tame
