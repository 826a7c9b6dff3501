#include "tame/models/latent/vqgan.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "tame/dist/likelihood.h"
#include "tame/error.h"

namespace tame {

namespace nn = torch::nn;

nlohmann::json VqGanOptions::help() {
  auto h = VqVaeOptions::help();
  h["perceptual"] =
      "FID classifier file (tame classifier) whose activations give the perceptual loss; "
      "empty = none";
  h["perceptual_weight"] = "weight of the perceptual distance beside the NLL per dimension";
  h["disc_hidden"] = "channels of the patch discriminator's first convolution";
  h["disc_start"] = "training steps before the discriminator and its term start";
  h["disc_weight"] = "factor of the adaptive weight of the adversarial term";
  return h;
}

void to_json(nlohmann::json& j, const VqGanOptions& o) {
  to_json(j, static_cast<const VqVaeOptions&>(o));
  j["perceptual"] = o.perceptual;
  j["perceptual_weight"] = o.perceptual_weight;
  j["disc_hidden"] = o.disc_hidden;
  j["disc_start"] = o.disc_start;
  j["disc_weight"] = o.disc_weight;
}

void from_json(const nlohmann::json& j, VqGanOptions& o) {
  from_json(j, static_cast<VqVaeOptions&>(o));
  const VqGanOptions d;
  o.perceptual = j.value("perceptual", d.perceptual);
  o.perceptual_weight = j.value("perceptual_weight", d.perceptual_weight);
  o.disc_hidden = j.value("disc_hidden", d.disc_hidden);
  o.disc_start = j.value("disc_start", d.disc_start);
  o.disc_weight = j.value("disc_weight", d.disc_weight);
}

VqGan::VqGan(const VqGanOptions& o, ImageShape shape, int64_t levels)
    : VqVae(o, shape, levels), gan_options(o) {
  TORCH_CHECK(
      o.perceptual_weight >= 0 && o.disc_hidden >= 1 && o.disc_start >= 0 && o.disc_weight >= 0,
      "vqgan: perceptual_weight, disc_start, disc_weight >= 0 and disc_hidden >= 1 required");
  const int64_t C = shape.channels, h = o.disc_hidden;
  auto lrelu = [] { return nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)); };
  discriminator_ = register_module(
      "discriminator",
      nn::Sequential(nn::Conv2d(nn::Conv2dOptions(C, h, 4).stride(2).padding(1)), lrelu(),
                     nn::Conv2d(nn::Conv2dOptions(h, 2 * h, 4).stride(2).padding(1)),
                     nn::BatchNorm2d(2 * h), lrelu(),
                     nn::Conv2d(nn::Conv2dOptions(2 * h, 1, 3).padding(1))));
}

Optimizers VqGan::make_optimizers(double lr) {
  if (!gan_options.perceptual.empty()) {
    auto c = load_classifier(gan_options.perceptual);
    if (!(c.net->shape() == shape_))
      throw Error("vqgan: the perceptual network " + gan_options.perceptual + " takes " +
                  c.net->shape().str() + " images, not " + shape_.str());
    perceptual_ = c.net;
    perceptual_->to(device());
    perceptual_->eval();
    for (auto& p : perceptual_->parameters()) p.requires_grad_(false);
  }
  auto adam = [&](std::vector<torch::Tensor> params) {
    return std::make_unique<torch::optim::Adam>(params,
                                                torch::optim::AdamOptions(lr).betas({0.5, 0.9}));
  };
  auto disc = discriminator_->parameters();
  std::set<const void*> in_disc;
  for (const auto& p : disc) in_disc.insert(p.unsafeGetTensorImpl());
  std::vector<torch::Tensor> ae;
  for (const auto& p : parameters())
    if (!in_disc.count(p.unsafeGetTensorImpl())) ae.push_back(p);
  Optimizers out;
  out.push_back({"autoencoder", adam(ae), lr});
  out.push_back({"discriminator", adam(disc), lr});
  return out;
}

torch::Tensor VqGan::discriminate(const torch::Tensor& x_unit) {
  return discriminator_->forward(x_unit);
}

torch::Tensor VqGan::perceptual_distance(const torch::Tensor& a, const torch::Tensor& b) {
  if (perceptual_.is_empty()) return torch::zeros({a.size(0)}, a.options());
  auto fa = perceptual_->activations(a), fb = perceptual_->activations(b);
  auto unit = [](const torch::Tensor& f) { return f / (f.pow(2).sum(1, true).sqrt() + 1e-10); };
  auto total = torch::zeros({a.size(0)}, a.options());
  for (size_t l = 0; l < fa.size(); ++l) {
    auto d = (unit(fa[l]) - unit(fb[l])).pow(2).sum(1);  // [B] or [B, H, W]
    total = total + (d.dim() > 1 ? d.flatten(1).mean(1) : d);
  }
  return total;
}

double VqGan::adaptive_weight(const torch::Tensor& rec_loss, const torch::Tensor& gan_loss) {
  auto& last = decoder_head().weight;
  auto g_rec = torch::autograd::grad({rec_loss}, {last}, {}, true)[0];
  auto g_gan = torch::autograd::grad({gan_loss}, {last}, {}, true)[0];
  const double w = g_rec.norm().item<double>() / (g_gan.norm().item<double>() + 1e-4);
  return gan_options.disc_weight * std::clamp(w, 0.0, 1e4);
}

StepResult VqGan::train_step(const torch::Tensor& x, Optimizers& optimizers,
                             const StepContext& context) {
  TORCH_CHECK(optimizers.size() == 2, "vqgan steps an autoencoder and a discriminator optimizer");
  auto& ae_opt = *optimizers[0].optimizer;
  auto& d_opt = *optimizers[1].optimizer;
  const bool adversarial = context.step >= gan_options.disc_start;
  const double dims = static_cast<double>(shape_.dims());
  ae_opt.zero_grad();
  torch::Tensor fake, real, perceptual;
  auto rec = forward_at_precision(context, x.device(), [&] {
    auto t = terms(x);
    fake = classifier_input(pixel_mean(t.params), levels_);  // the mean image in [0, 1]
    real = classifier_input(x, levels_);
    perceptual = perceptual_distance(real, fake).mean();
    return t.objective.mean() / dims + gan_options.perceptual_weight * perceptual;
  });
  auto total = rec;
  double lambda = 0, g_loss = 0;
  if (adversarial) {
    auto gan = forward_at_precision(context, x.device(),
                                    [&] { return -discriminate(2 * fake - 1).mean(); });
    lambda = adaptive_weight(rec, gan);
    total = rec + lambda * gan;
    g_loss = gan.item<double>();
  }
  StepResult r;
  r.loss = agreed_loss(total.item<double>(), context);
  if (!std::isfinite(r.loss)) return r;
  total.backward();
  r.grad_norm = finish_gradients(ae_opt.param_groups()[0].params(), context);
  ae_opt.step();
  double d_loss = 0;
  if (adversarial) {  // hinge: real patches above 1, the mean images below -1
    d_opt.zero_grad();
    auto loss_d = forward_at_precision(context, x.device(), [&] {
      return (torch::relu(1 - discriminate(2 * real - 1)) +
              torch::relu(1 + discriminate(2 * fake.detach() - 1)))
          .mean();
    });
    loss_d.backward();
    finish_gradients(d_opt.param_groups()[0].params(), context);
    d_opt.step();
    d_loss = loss_d.item<double>();
  }
  r.metrics = step_metrics();
  r.metrics["perceptual"] = perceptual.item<double>();
  r.metrics["lambda"] = lambda;
  r.metrics["loss_g"] = g_loss;
  r.metrics["loss_d"] = d_loss;
  return r;
}

}  // namespace tame
