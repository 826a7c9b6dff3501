#include "tame/models/latent/vlae.h"

#include "tame/dist/likelihood.h"

namespace tame {

namespace {
VaeOptions vae_part(const VlaeOptions& o) {
  VaeOptions v;
  v.latent = o.latent;
  v.hidden = o.hidden;
  v.likelihood = "categorical";
  v.beta = o.beta;
  v.k = o.k;
  return v;
}
}  // namespace

Vlae::Vlae(const VlaeOptions& o, ImageShape shape, int64_t levels)
    : Vae(vae_part(o), shape, levels, /*with_decoder=*/false), vlae_options(o) {
  TORCH_CHECK(
      o.pixel_hidden >= 1 && o.pixel_layers >= 0 && o.input_kernel >= 1 && o.input_kernel % 2 == 1,
      "vlae: pixel_hidden >= 1, pixel_layers >= 0 and an odd input_kernel required");
  const int64_t C = shape.channels, F = o.pixel_hidden * C;  // features divisible by C (colours)
  context_ = register_module("context", ConvDecoder(o.latent, o.hidden, F, shape));
  input_ = register_module(
      "input", MaskedConv2d(MaskedConv2dOptions(C, F, o.input_kernel).mask(Mask::kA).colors(C)));
  for (int64_t i = 0; i < o.pixel_layers; ++i) {
    layers_.push_back(register_module("layer" + std::to_string(i),
                                      MaskedConv2d(MaskedConv2dOptions(F, F, 3).colors(C))));
    conditions_.push_back(register_module("condition" + std::to_string(i),
                                          torch::nn::Conv2d(torch::nn::Conv2dOptions(F, F, 1))));
  }
  out1_ = register_module("out1", MaskedConv2d(MaskedConv2dOptions(F, F, 1).colors(C)));
  out2_ = register_module("out2", MaskedConv2d(MaskedConv2dOptions(F, levels * C, 1).colors(C)));
}

torch::Tensor Vlae::pixel_params(const torch::Tensor& hz, const torch::Tensor& x) {
  // z's features hz enter every layer as a per-pixel bias; they carry no
  // information about x beyond what the encoder put in z, so causality in x is
  // the masks' alone.
  auto h = torch::relu(input_(scale_to_unit(x, levels_)) + hz);
  for (size_t i = 0; i < layers_.size(); ++i)
    h = torch::relu(h + layers_[i](h) + conditions_[i](hz));
  return out2_(torch::relu(out1_(h)));
}

LatentModel::DecoderEngine Vlae::decoder_engine(const torch::Tensor& hz) {
  c10::InferenceMode guard;
  // The context the engine adds at each layer, [M, H, W, F (1 + layers)]:
  // hz itself (the input layer), then conditions_[i](hz) (layer i).
  std::vector<torch::Tensor> parts{hz};
  for (auto& c : conditions_) parts.push_back(c(hz));
  auto context =
      torch::cat(parts, 1).permute({0, 2, 3, 1}).to(torch::kCPU, torch::kFloat).contiguous();
  return {pixel_engine(), context};
}

std::unique_ptr<StepEngine> Vlae::pixel_engine() const {
  auto net = std::make_shared<ConditionedPixelCNNEngine::Net>();
  net->input = to_step_conv(*input_);
  for (const auto& l : layers_) net->layers.push_back(to_step_conv(*l));
  net->out1 = to_step_dense(*out1_);
  net->out2 = to_step_dense(*out2_);
  return std::make_unique<ConditionedPixelCNNEngine>(net, shape_.channels, levels_);
}

std::unique_ptr<ImageCoder> Vlae::coder() {
  c10::InferenceMode guard;
  const int64_t F = vlae_options.pixel_hidden * shape_.channels;
  LatentNets nets = coder_nets();
  // The engine's context, as decoder_engine() builds it: hz, then each
  // layer's 1x1 projection of hz; one 1x1 convolution after the z-decoder
  // whose first F outputs copy hz exactly (weights 1 and 0).
  nets.decoder = context_->feedforward();
  steps::Dense proj;
  proj.in = F;
  proj.out = F * static_cast<int64_t>(1 + conditions_.size());
  proj.w.assign(proj.in * proj.out, 0.0f);
  proj.b.assign(proj.out, 0.0f);
  for (int64_t k = 0; k < F; ++k) proj.w[k * proj.out + k] = 1.0f;
  for (size_t i = 0; i < conditions_.size(); ++i) {
    const steps::Dense c = to_step_dense(*conditions_[i]);  // F -> F, w[k][o]
    const int64_t at = F * static_cast<int64_t>(1 + i);
    for (int64_t o = 0; o < F; ++o) {
      proj.b[at + o] = c.b[o];
      for (int64_t k = 0; k < F; ++k) proj.w[k * proj.out + at + o] = c.w[k * F + o];
    }
  }
  nets.decoder.add_conv(std::move(proj), 1, 1, 0);
  nets.engine = pixel_engine();
  return std::make_unique<BitsBackCoder>(
      std::move(nets), ImageSize{shape_.channels, shape_.height, shape_.width}, levels_);
}

}  // namespace tame
