#include "tame/models/latent/latent_model.h"

#include <cmath>
#include <limits>

#include "tame/dist/likelihood.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/models/latent/estimators.h"
#include "tame/nn/masked_conv.h"

namespace tame {

namespace {
// x [B, C, H, W] repeated n times: [n B, C, H, W], copy i of image b at i B + b.
torch::Tensor repeat_images(const torch::Tensor& x, int64_t n) {
  return x.unsqueeze(0)
      .expand({n, x.size(0), x.size(1), x.size(2), x.size(3)})
      .reshape({n * x.size(0), x.size(1), x.size(2), x.size(3)});
}

void check_geometry(ImageShape s) {
  TORCH_CHECK(s.height % 4 == 0 && s.width % 4 == 0,
              "the convolutional encoder and decoder need height and width divisible by 4, got ",
              s.height, "x", s.width);
}
}  // namespace

ConvEncoderImpl::ConvEncoderImpl(ImageShape s, int64_t hidden, int64_t out) {
  namespace nn = torch::nn;
  check_geometry(s);
  c1_ = register_module("c1",
                        nn::Conv2d(nn::Conv2dOptions(s.channels, hidden, 4).stride(2).padding(1)));
  c2_ = register_module("c2",
                        nn::Conv2d(nn::Conv2dOptions(hidden, 2 * hidden, 4).stride(2).padding(1)));
  fc_ = register_module("fc", nn::Linear(2 * hidden * (s.height / 4) * (s.width / 4), out));
}

torch::Tensor ConvEncoderImpl::forward(const torch::Tensor& x_unit) {
  return fc_(torch::relu(c2_(torch::relu(c1_(x_unit)))).flatten(1));
}

ConvDecoderImpl::ConvDecoderImpl(int64_t in, int64_t hidden, int64_t out_channels, ImageShape s)
    : shape_(s), hidden_(hidden) {
  namespace nn = torch::nn;
  check_geometry(s);
  fc_ = register_module("fc", nn::Linear(in, 2 * hidden * (s.height / 4) * (s.width / 4)));
  d1_ = register_module("d1", nn::Conv2d(nn::Conv2dOptions(2 * hidden, hidden, 3).padding(1)));
  d2_ = register_module("d2", nn::Conv2d(nn::Conv2dOptions(hidden, hidden, 3).padding(1)));
  out_ = register_module("out", nn::Conv2d(nn::Conv2dOptions(hidden, out_channels, 1)));
}

torch::Tensor ConvDecoderImpl::forward(const torch::Tensor& z) {
  auto h = torch::relu(fc_(z)).view({z.size(0), 2 * hidden_, shape_.height / 4, shape_.width / 4});
  namespace F = torch::nn::functional;
  auto up =
      F::InterpolateFuncOptions().scale_factor(std::vector<double>{2.0, 2.0}).mode(torch::kNearest);
  h = torch::relu(d1_(F::interpolate(h, up)));
  h = torch::relu(d2_(F::interpolate(h, up)));
  return out_(h);
}

MlpImpl::MlpImpl(int64_t in, int64_t hidden, std::vector<int64_t> out_shape)
    : out_shape_(std::move(out_shape)) {
  namespace nn = torch::nn;
  int64_t out = 1;
  for (int64_t d : out_shape_) out *= d;
  l1_ = register_module("l1", nn::Linear(in, hidden));
  l2_ = register_module("l2", nn::Linear(hidden, hidden));
  out_ = register_module("out", nn::Linear(hidden, out));
}

torch::Tensor MlpImpl::forward(const torch::Tensor& x) {
  std::vector<int64_t> shape{x.size(0)};
  shape.insert(shape.end(), out_shape_.begin(), out_shape_.end());
  return out_(torch::tanh(l2_(torch::tanh(l1_(x.flatten(1)))))).view(shape);
}

// ------------------------------------------------- the nets as Feedforwards

namespace {

// Index into a channels-first flattening of map s of entry k of its
// channels-last one.
int64_t channels_first(int64_t k, steps::MapShape s) {
  return (k % s.channels) * (s.height * s.width) + k / s.channels;
}

torch::Tensor cpu_float(const torch::Tensor& t) {
  return t.detach().to(torch::kCPU, torch::kFloat).contiguous();
}

// A linear layer between channels-first flattenings of maps `in` and `out`
// as a Dense between their channels-last ones.
steps::Dense linear_dense(const torch::nn::Linear& l, steps::MapShape in, steps::MapShape out) {
  auto w = cpu_float(l->weight);
  TORCH_CHECK(w.size(0) == out.size() && w.size(1) == in.size(), "linear_dense: shapes");
  auto a = w.accessor<float, 2>();
  auto bias = cpu_float(l->bias);
  steps::Dense d;
  d.in = in.size();
  d.out = out.size();
  d.w.resize(d.in * d.out);
  d.b.resize(d.out);
  for (int64_t m = 0; m < d.out; ++m) {
    const int64_t tm = channels_first(m, out);
    d.b[m] = bias.data_ptr<float>()[tm];
    for (int64_t k = 0; k < d.in; ++k) d.w[k * d.out + m] = a[tm][channels_first(k, in)];
  }
  return d;
}

}  // namespace

steps::Feedforward ConvEncoderImpl::feedforward(steps::MapShape in) const {
  steps::Feedforward f(in);
  f.add_conv(to_step_dense(*c1_), 4, 2, 1);
  f.add_relu();
  f.add_conv(to_step_dense(*c2_), 4, 2, 1);
  f.add_relu();
  const steps::MapShape map = f.output();
  f.add_dense(linear_dense(fc_, map, {1, 1, fc_->options.out_features()}));
  return f;
}

steps::Feedforward ConvDecoderImpl::feedforward() const {
  const steps::MapShape z{1, 1, fc_->options.in_features()},
      map{shape_.height / 4, shape_.width / 4, 2 * hidden_};
  steps::Feedforward f(z);
  f.add_dense(linear_dense(fc_, z, map), map);
  f.add_relu();
  for (const auto* conv : {&d1_, &d2_}) {
    f.add_upsample2();
    f.add_conv(to_step_dense(**conv), 3, 1, 1);
    f.add_relu();
  }
  f.add_conv(to_step_dense(*out_), 1, 1, 0);
  return f;
}

steps::Feedforward MlpImpl::feedforward(steps::MapShape in, steps::MapShape out) const {
  const steps::MapShape h{1, 1, l1_->options.out_features()};
  steps::Feedforward f(in);
  f.add_dense(linear_dense(l1_, in, h));
  f.add_tanh();
  f.add_dense(linear_dense(l2_, h, h));
  f.add_tanh();
  f.add_dense(linear_dense(out_, h, out), out);
  return f;
}

steps::Feedforward feedforward_of(const torch::nn::AnyModule& net, steps::MapShape in,
                                  steps::MapShape out) {
  auto m = net.ptr();
  steps::Feedforward f;
  if (auto e = std::dynamic_pointer_cast<ConvEncoderImpl>(m))
    f = e->feedforward(in);
  else if (auto d = std::dynamic_pointer_cast<ConvDecoderImpl>(m))
    f = d->feedforward();
  else if (auto p = std::dynamic_pointer_cast<MlpImpl>(m))
    f = p->feedforward(in, out);
  else
    throw Error("this network has no fixed-order form");
  TORCH_CHECK(f.input().size() == in.size() && f.output().size() == out.size() &&
                  f.output().channels == out.channels,
              "feedforward_of: the network does not map the given shapes");
  return f;
}

namespace {
void check_arch(const std::string& arch) {
  TORCH_CHECK(arch == "conv" || arch == "mlp", "arch must be conv or mlp, got '", arch, "'");
}
}  // namespace

torch::nn::AnyModule make_encoder(const std::string& arch, ImageShape shape, int64_t hidden,
                                  int64_t out) {
  check_arch(arch);
  if (arch == "mlp")
    return torch::nn::AnyModule(Mlp(shape.dims(), hidden, std::vector<int64_t>{out}));
  return torch::nn::AnyModule(ConvEncoder(shape, hidden, out));
}

torch::nn::AnyModule make_decoder(const std::string& arch, int64_t in, int64_t hidden,
                                  int64_t out_channels, ImageShape shape) {
  check_arch(arch);
  if (arch == "mlp")
    return torch::nn::AnyModule(
        Mlp(in, hidden, std::vector<int64_t>{out_channels, shape.height, shape.width}));
  return torch::nn::AnyModule(ConvDecoder(in, hidden, out_channels, shape));
}

LatentModel::LatentModel(ImageShape shape, int64_t levels, PixelLikelihood likelihood, double beta,
                         int64_t k)
    : ImageModel(shape, levels), likelihood_(std::move(likelihood)), beta_(beta), k_(k) {
  TORCH_CHECK(beta >= 0, "beta must be >= 0, got ", beta);
  TORCH_CHECK(k >= 1, "k must be >= 1, got ", k);
}

std::unique_ptr<PixelDistribution> LatentModel::pixels(const torch::Tensor& p) const {
  return likelihood_(p, shape_.channels);
}

torch::Tensor LatentModel::decode_nll(const torch::Tensor& z, const torch::Tensor& x) {
  return -pixels(pixel_params(decoder_context(z), x))->log_prob(x);
}

torch::Tensor LatentModel::draw_pixels(const torch::Tensor& p, double temperature) {
  return pixels(p)->sample(temperature);
}

torch::Tensor LatentModel::decode_sample(const torch::Tensor& z, double temperature) {
  const int64_t M = z.size(0), C = shape_.channels, H = shape_.height, W = shape_.width;
  auto x =
      torch::zeros({M, C, H, W}, torch::TensorOptions().dtype(torch::kUInt8).device(z.device()));
  auto context = decoder_context(z);
  if (!autoregressive_decoder()) return draw_pixels(pixel_params(context, x), temperature);
  // Sub-pixel by sub-pixel through the decoder's step engine, in its order
  // (raster, R -> G -> B within a pixel), given z's features once: each step
  // costs one position's work. Image b draws from its own stream (seed, b).
  auto steps = decoder_engine(context);
  TORCH_CHECK(steps.engine, "decode_sample: this autoregressive decoder has no step engine");
  const auto seed = static_cast<uint64_t>(
      torch::randint(0, std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
  return sample_engine(*steps.engine, M, H, W, temperature, seed, steps.context.data_ptr<float>())
      .to(x.device());
}

torch::Tensor LatentModel::codes_latent(const torch::Tensor&) {
  throw Error(name() + " has no discrete codes");
}

torch::Tensor LatentModel::decode_codes(const torch::Tensor& codes, double temperature) {
  c10::InferenceMode guard;
  return decode_sample(codes_latent(codes), temperature);
}

torch::Tensor LatentModel::codes_nll(const torch::Tensor& x, const torch::Tensor& codes) {
  return decode_nll(codes_latent(codes), x.to(device()));
}

torch::Tensor LatentModel::log_weights(const Posterior& q, const torch::Tensor& x, int64_t n) {
  auto z = draw(q, n, /*reparameterized=*/false);  // [n, B, ...]
  auto log_px = -decode_nll(z.flatten(0, 1), repeat_images(x, n)).view({n, x.size(0)});
  return log_px + log_prior(z) - log_q(q, z);
}

torch::Tensor LatentModel::kl(const Posterior& q, const torch::Tensor& z) {
  return (log_q(q, z) - log_prior(z)).mean(0);
}

torch::Tensor LatentModel::nll(const torch::Tensor& x) {
  auto q = encode(x);
  auto z = draw(q, 1, /*reparameterized=*/false);
  return decode_nll(z[0], x) + kl(q, z);
}

torch::Tensor LatentModel::nll_iw(const torch::Tensor& x, int64_t k) {
  TORCH_CHECK(k >= 1, "nll_iw: k must be >= 1, got ", k);
  auto q = encode(x);
  const int64_t chunk = std::max<int64_t>(1, kDecodeBudget / std::max<int64_t>(1, x.size(0)));
  std::vector<torch::Tensor> partial;  // logsumexp over each chunk's draws, [B] each
  for (int64_t done = 0; done < k; done += chunk)
    partial.push_back(torch::logsumexp(log_weights(q, x, std::min(chunk, k - done)), 0));
  return -(torch::logsumexp(torch::stack(partial), 0) - std::log(static_cast<double>(k)));
}

torch::Tensor LatentModel::loss(const torch::Tensor& x) {
  auto q = encode(x);
  torch::Tensor per_image;
  if (k_ == 1) {
    auto z = draw(q, 1, /*reparameterized=*/true);
    auto recon = decode_nll(z[0], x), kl_term = kl(q, z);
    per_image = recon + beta_ * kl_term;
    last_terms_ = {{"recon", recon.mean().item<double>()}, {"kl", kl_term.mean().item<double>()}};
  } else {
    // The k-sample objective; beta weighs log p(z) - log q(z|x) as it weighs the KL.
    auto z = draw(q, k_, /*reparameterized=*/true);
    auto log_px = -decode_nll(z.flatten(0, 1), repeat_images(x, k_)).view({k_, x.size(0)});
    auto log_ratio = log_prior(z) - log_q(q, z);
    auto lw = log_px + beta_ * log_ratio;
    per_image = -(torch::logsumexp(lw, 0) - std::log(static_cast<double>(k_)));
    // Logged only: KL from the first draw, off the graph (a model without a
    // closed form would otherwise run its prior and posterior on all k again).
    torch::NoGradGuard no_grad;
    last_terms_ = {{"recon", (-log_px).mean().item<double>()},
                   {"kl", kl(q, z.slice(0, 0, 1)).mean().item<double>()}};
  }
  return per_image.mean();
}

torch::Tensor LatentModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  c10::InferenceMode guard;
  return decode_sample(prior_draw(n).to(device()), temperature);
}

torch::Tensor LatentModel::reconstruct(const torch::Tensor& x) {
  c10::InferenceMode guard;
  return decode_mean(posterior_mode(encode(x.to(device()))));
}

torch::Tensor LatentModel::decode_mean(const torch::Tensor& z) {
  c10::InferenceMode guard;
  if (autoregressive_decoder()) return decode_sample(z.to(device()), 1.0).to(torch::kFloat);
  auto zd = z.to(device());
  auto p = pixel_params(decoder_context(zd),
                        torch::zeros({zd.size(0), shape_.channels, shape_.height, shape_.width},
                                     torch::TensorOptions().dtype(torch::kUInt8).device(device())));
  return pixels(p)->mean();
}

nlohmann::json LatentModel::diagnostics(const torch::Tensor& images) {
  c10::InferenceMode guard;
  double recon = 0, kl_sum = 0;
  std::vector<torch::Tensor> means;
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += 256) {
    auto x = images.slice(0, b, std::min(n, b + 256)).to(device());
    auto q = encode(x);
    auto z = draw(q, 1, false);
    recon += decode_nll(z[0], x).sum().item<double>();
    kl_sum += kl(q, z).sum().item<double>();
    means.push_back(posterior_mean(q).cpu());
  }
  const double N = std::max<int64_t>(1, n);
  return {{"recon_nats", recon / N},
          {"kl_nats", kl_sum / N},
          {"active_units", n > 1 ? latent::active_units(torch::cat(means)) : 0},
          {"latent_units", latent_dims()}};
}

}  // namespace tame
