#include "tame/models/gan/dcgan.h"

#include "tame/dist/likelihood.h"

namespace tame {

namespace nn = torch::nn;

Dcgan::Dcgan(const DcganOptions& o, ImageShape shape, int64_t levels)
    : ImageModel(shape, levels), options(o) {
  TORCH_CHECK(shape.height % 4 == 0 && shape.width % 4 == 0,
              "dcgan needs height and width divisible by 4, got ", shape.height, "x", shape.width);
  TORCH_CHECK(o.latent >= 1 && o.hidden >= 1, "dcgan: latent and hidden must be >= 1");
  const int64_t C = shape.channels, h = o.hidden, cells = (shape.height / 4) * (shape.width / 4);
  g_in_ = register_module("g_in", nn::Linear(o.latent, 2 * h * cells));
  generator_ = register_module(
      "generator",
      nn::Sequential(
          nn::BatchNorm2d(2 * h), nn::ReLU(),
          nn::ConvTranspose2d(nn::ConvTranspose2dOptions(2 * h, h, 4).stride(2).padding(1)),
          nn::BatchNorm2d(h), nn::ReLU(),
          nn::ConvTranspose2d(nn::ConvTranspose2dOptions(h, C, 4).stride(2).padding(1)),
          nn::Tanh()));
  discriminator_ = register_module(
      "discriminator",
      nn::Sequential(nn::Conv2d(nn::Conv2dOptions(C, h, 4).stride(2).padding(1)),
                     nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2)),
                     nn::Conv2d(nn::Conv2dOptions(h, 2 * h, 4).stride(2).padding(1)),
                     nn::BatchNorm2d(2 * h),
                     nn::LeakyReLU(nn::LeakyReLUOptions().negative_slope(0.2))));
  d_out_ = register_module("d_out", nn::Linear(2 * h * cells, 1));
}

torch::Tensor Dcgan::generate(const torch::Tensor& z) {
  auto h = g_in_(z).view({z.size(0), 2 * options.hidden, shape_.height / 4, shape_.width / 4});
  return generator_->forward(h);
}

torch::Tensor Dcgan::discriminate(const torch::Tensor& x_unit) {
  return d_out_(discriminator_->forward(x_unit).flatten(1)).squeeze(1);
}

torch::Tensor Dcgan::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  c10::InferenceMode guard;
  auto z = torch::randn({n, options.latent}).to(device()) * temperature;
  auto y = generate(z);
  auto levels = torch::round((y + 1.0) * (0.5 * static_cast<double>(levels_ - 1)));
  return levels.clamp(0, levels_ - 1).to(image_dtype(levels_));
}

Optimizers Dcgan::make_optimizers(double lr) {
  auto adam = [&](std::vector<torch::Tensor> params) {
    return std::make_unique<torch::optim::Adam>(
        params, torch::optim::AdamOptions(lr).betas({options.beta1, 0.999}));
  };
  auto g = g_in_->parameters(), d = d_out_->parameters();
  for (auto& p : generator_->parameters()) g.push_back(p);
  for (auto& p : discriminator_->parameters()) d.push_back(p);
  Optimizers out;
  out.push_back({"generator", adam(g), lr});
  out.push_back({"discriminator", adam(d), lr});
  return out;
}

StepResult Dcgan::train_step(const torch::Tensor& x, Optimizers& optimizers,
                             const StepContext& context) {
  TORCH_CHECK(optimizers.size() == 2, "dcgan steps a generator and a discriminator optimizer");
  auto& g_opt = *optimizers[0].optimizer;
  auto& d_opt = *optimizers[1].optimizer;
  const int64_t B = x.size(0);
  auto real = scale_to_unit(x, levels_);
  // Discriminator: real images towards 1, generated ones towards 0.
  auto fake = forward_at_precision(context, x.device(), [&] {
    return generate(torch::randn({B, options.latent}, real.options()));
  });
  d_opt.zero_grad();
  torch::Tensor d_real, d_fake;
  auto loss_d = forward_at_precision(context, x.device(), [&] {
    d_real = discriminate(real);
    d_fake = discriminate(fake.detach());
    return (torch::softplus(-d_real) + torch::softplus(d_fake)).mean();
  });
  loss_d.backward();
  StepResult r;
  r.grad_norm = finish_gradients(optimizers[1].optimizer->param_groups()[0].params(), context);
  d_opt.step();
  // Generator: the non-saturating loss -log D(G(z)).
  g_opt.zero_grad();
  auto loss_g = forward_at_precision(context, x.device(),
                                     [&] { return torch::softplus(-discriminate(fake)).mean(); });
  loss_g.backward();
  finish_gradients(optimizers[0].optimizer->param_groups()[0].params(), context);
  g_opt.step();
  r.loss = agreed_loss(loss_d.item<double>() + loss_g.item<double>(), context);
  r.metrics = {{"loss_d", loss_d.item<double>()},
               {"loss_g", loss_g.item<double>()},
               {"d_real", torch::sigmoid(d_real).mean().item<double>()},
               {"d_fake", torch::sigmoid(d_fake).mean().item<double>()}};
  return r;
}

}  // namespace tame
