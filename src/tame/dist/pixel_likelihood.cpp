#include "tame/dist/pixel_likelihood.h"

#include <cmath>

#include "tame/dist/integer_cdf.h"
#include "tame/dist/likelihood.h"
#include "tame/nn/autocast.h"

namespace tame {

namespace {

// Integer values clamped to the levels, in the images' dtype.
torch::Tensor as_image(const torch::Tensor& x, int64_t levels) {
  return x.clamp(0, levels - 1).to(image_dtype(levels));
}

void check_temperature(double temperature) {
  TORCH_CHECK(temperature >= 0, "temperature must be >= 0, got ", temperature);
}

void check_images_match(const char* who, const torch::Tensor& params, const torch::Tensor& x) {
  TORCH_CHECK(
      x.dim() == 4 && params.size(0) == x.size(0) && params.sizes().slice(1) == x.sizes().slice(1),
      who, ": parameters for images ", params.sizes(), " do not match x ", x.sizes());
}

// Splits network features [B, P C, H, W] into [B, P, C, H, W].
torch::Tensor split_features(const char* who, const torch::Tensor& f, int64_t per_subpixel,
                             int64_t channels) {
  TORCH_CHECK(f.dim() == 4 && channels >= 1 && f.size(1) == per_subpixel * channels, who,
              ": expected features [B, ", per_subpixel, "x", channels, ", H, W], got ", f.sizes());
  return f.reshape({f.size(0), per_subpixel, channels, f.size(2), f.size(3)});
}

// Parameter j of every sub-pixel, [B, C, H, W], from features [B, P C, H, W].
torch::Tensor feature_part(const char* who, const torch::Tensor& f, int64_t j, int64_t per_subpixel,
                           int64_t channels) {
  return split_features(who, f, per_subpixel, channels).select(1, j);
}

int64_t levels_of_logits(const torch::Tensor& logits) {
  TORCH_CHECK(logits.dim() == 5, "Categorical: expected logits [B, K, C, H, W], got ",
              logits.sizes());
  return logits.size(1);
}

// log P(x) of the discretized logistic, elementwise over broadcast shapes.
// log sigma(plus) for the lowest level, log(1 - sigma(minus)) for the highest;
// between, the bin's mass sigma(plus) - sigma(minus) in log space, taken on
// the side of the mean where it is well conditioned: below the mean as
//   log sigma(plus) + log(1 - exp(log sigma(minus) - log sigma(plus))),
// above it the same with the survival function sigma(-x). Where the bin is
// tiny against the scale, the mid-point density times the bin width.
torch::Tensor logistic_log_mass(const torch::Tensor& mean, const torch::Tensor& log_scale,
                                const torch::Tensor& x, int64_t levels) {
  const double h = 1.0 / static_cast<double>(levels - 1);
  auto c = scale_to_unit(x, levels).to(mean.scalar_type());
  auto inv_s = torch::exp(-log_scale);
  auto plus = (c - mean + h) * inv_s, minus = (c - mean - h) * inv_s;
  auto log_cdf_plus = torch::log_sigmoid(plus);
  auto log_sf_minus = torch::log_sigmoid(-minus);
  auto centre = (c - mean) * inv_s;
  auto above = centre > 0;
  auto lead = torch::where(above, log_sf_minus, log_cdf_plus);
  auto diff = torch::where(above, torch::log_sigmoid(-plus), torch::log_sigmoid(minus)) - lead;
  auto mid = lead + torch::log(-torch::expm1(diff.clamp_max(-1e-12)));
  auto log_pdf_mid = centre - log_scale - 2.0 * torch::softplus(centre) + std::log(2.0 * h);
  mid = torch::where(diff < -1e-5, mid, log_pdf_mid);
  auto xi = x.to(torch::kLong);
  return torch::where(xi == 0, log_cdf_plus, torch::where(xi == levels - 1, log_sf_minus, mid));
}

// Every level 0..K-1 as [1, K, 1, 1, 1], to broadcast against [B, 1, C, H, W].
torch::Tensor all_levels(int64_t levels, torch::Device device) {
  return torch::arange(levels, torch::TensorOptions().dtype(torch::kLong).device(device))
      .view({1, levels, 1, 1, 1});
}

}  // namespace

PixelDistribution::PixelDistribution(int64_t levels) : levels_(levels) {
  TORCH_CHECK(levels >= 2, "a pixel distribution needs at least 2 levels, got ", levels);
}

// --- Bernoulli ---------------------------------------------------------------

Bernoulli::Bernoulli(torch::Tensor logits) : PixelDistribution(2), logits_(full_precision(logits)) {
  TORCH_CHECK(logits_.dim() == 4, "Bernoulli: expected logits [B, C, H, W], got ", logits_.sizes());
}

torch::Tensor Bernoulli::log_prob(const torch::Tensor& x) const {
  TORCH_CHECK(logits_.sizes() == x.sizes(), "Bernoulli: logits ", logits_.sizes(), " vs x ",
              x.sizes());
  auto nll = torch::nn::functional::binary_cross_entropy_with_logits(
      logits_, x.to(logits_.scalar_type()),
      torch::nn::functional::BinaryCrossEntropyWithLogitsFuncOptions().reduction(torch::kNone));
  return -nll.flatten(1).sum(1);
}

torch::Tensor Bernoulli::log_pmf() const {
  return torch::stack({torch::log_sigmoid(-logits_), torch::log_sigmoid(logits_)}, 1);
}

torch::Tensor Bernoulli::sample(double temperature) const {
  check_temperature(temperature);
  // Values are 0 or 1 already (the mode is a bool tensor, which clamp refuses).
  auto x =
      temperature == 0 ? (logits_ > 0) : torch::bernoulli(torch::sigmoid(logits_ / temperature));
  return x.to(image_dtype(2));
}

torch::Tensor Bernoulli::mean() const { return torch::sigmoid(logits_); }

// --- Categorical -------------------------------------------------------------

Categorical::Categorical(torch::Tensor logits)
    : PixelDistribution(levels_of_logits(logits)), logits_(full_precision(logits)) {}

Categorical::Categorical(const torch::Tensor& features, int64_t channels)
    : Categorical(split_features(
          "Categorical", features,
          features.dim() == 4 && channels >= 1 ? features.size(1) / channels : 0, channels)) {}

torch::Tensor Categorical::log_prob(const torch::Tensor& x) const {
  check_images_match("Categorical", logits_.select(1, 0), x);
  // cross_entropy takes the class dimension at 1, which is where K sits.
  auto nll = torch::nn::functional::cross_entropy(
      logits_.to(torch::kFloat), x.to(torch::kLong),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  return -nll.flatten(1).sum(1);
}

torch::Tensor Categorical::log_pmf() const {
  return torch::log_softmax(logits_.to(torch::kFloat), 1);
}

torch::Tensor Categorical::sample(double temperature) const {
  check_temperature(temperature);
  if (temperature == 0) return as_image(logits_.argmax(1), levels_);
  const int64_t B = logits_.size(0), C = logits_.size(2), H = logits_.size(3), W = logits_.size(4);
  auto probs = categorical_probs(logits_, temperature).permute({0, 2, 3, 4, 1});
  return as_image(torch::multinomial(probs.reshape({-1, levels_}), 1).view({B, C, H, W}), levels_);
}

torch::Tensor Categorical::mean() const {
  auto probs = torch::softmax(logits_, 1);
  return (probs * torch::arange(levels_, logits_.options()).view({1, levels_, 1, 1, 1})).sum(1);
}

// --- DiscretizedLogistic -----------------------------------------------------

DiscretizedLogistic::DiscretizedLogistic(torch::Tensor location, const torch::Tensor& log_scale,
                                         int64_t levels)
    : PixelDistribution(levels),
      location_(full_precision(location)),
      log_scale_(full_precision(log_scale).clamp_min(kMinLogScale)) {
  TORCH_CHECK(location_.dim() == 4 && location_.sizes() == log_scale_.sizes(),
              "DiscretizedLogistic: expected location and log-scale [B, C, H, W], got ",
              location_.sizes(), " and ", log_scale_.sizes());
}

DiscretizedLogistic::DiscretizedLogistic(const torch::Tensor& features, int64_t channels,
                                         int64_t levels)
    : DiscretizedLogistic(feature_part("DiscretizedLogistic", features, 0, 2, channels),
                          feature_part("DiscretizedLogistic", features, 1, 2, channels), levels) {}

torch::Tensor DiscretizedLogistic::log_prob(const torch::Tensor& x) const {
  check_images_match("DiscretizedLogistic", location_, x);
  return logistic_log_mass(location_, log_scale_, x, levels_).flatten(1).sum(1);
}

torch::Tensor DiscretizedLogistic::log_pmf() const {
  return logistic_log_mass(location_.unsqueeze(1), log_scale_.unsqueeze(1),
                           all_levels(levels_, location_.device()), levels_);
}

torch::Tensor DiscretizedLogistic::sample(double temperature) const {
  check_temperature(temperature);
  // The bins are equal but the two edge levels hold the tails, so the most
  // likely level is not always the one nearest the location.
  if (temperature == 0) return as_image(log_pmf().argmax(1), levels_);
  auto u = torch::rand_like(location_).clamp(1e-5, 1.0 - 1e-5);
  auto c = location_ + temperature * torch::exp(log_scale_) * (torch::log(u) - torch::log1p(-u));
  return as_image(torch::round((c + 1.0) * (0.5 * static_cast<double>(levels_ - 1))), levels_);
}

torch::Tensor DiscretizedLogistic::mean() const {
  // E[x] = sum_{k>=1} P(x >= k); the boundary below level k sits at
  // b_k = (2k - 1)/(K - 1) - 1, and P(x >= k) = sigmoid((location - b_k) / s).
  const double K1 = static_cast<double>(levels_ - 1);
  auto k = torch::arange(1, levels_, location_.options()).view({1, levels_ - 1, 1, 1, 1});
  auto b = (2.0 * k - 1.0) / K1 - 1.0;
  auto inv_s = torch::exp(-log_scale_).unsqueeze(1);
  return torch::sigmoid((location_.unsqueeze(1) - b) * inv_s).sum(1);
}

// --- DiscretizedLogisticMixture ----------------------------------------------

DiscretizedLogisticMixture::DiscretizedLogisticMixture(const torch::Tensor& features,
                                                       int64_t channels, int64_t levels,
                                                       int64_t components, torch::Tensor values)
    : PixelDistribution(levels),
      features_(full_precision(features)),
      values_(std::move(values)),
      channels_(channels),
      components_(components) {
  const int64_t C = channels, M = components;
  TORCH_CHECK(C >= 1 && M >= 1, "DiscretizedLogisticMixture: channels and components must be >= 1");
  TORCH_CHECK(features.dim() == 4 && features.size(1) == mixture_features(C, M),
              "DiscretizedLogisticMixture: expected features [B, ", mixture_features(C, M),
              ", H, W] for ", C, " channels and ", M, " components, got ", features.sizes());
  TORCH_CHECK(values_.dim() == 4 && values_.size(0) == features.size(0) && values_.size(1) == C &&
                  values_.size(2) == features.size(2) && values_.size(3) == features.size(3),
              "DiscretizedLogisticMixture: values ", values_.sizes(), " do not fit features ",
              features.sizes());
  const int64_t B = features.size(0), H = features.size(2), W = features.size(3),
                P = C * (C - 1) / 2;
  logits_ = features.slice(1, 0, M);
  auto per_channel = [&](int64_t from, int64_t n) {  // [B, n M, H, W] -> [B, M, n, H, W]
    return features.slice(1, from, from + n * M).reshape({B, n, M, H, W}).transpose(1, 2);
  };
  loc_ = per_channel(M, C);
  log_scale_ = per_channel(M + C * M, C).clamp_min(kMinLogScale);
  coef_ = torch::tanh(per_channel(M + 2 * C * M, P));
}

torch::Tensor DiscretizedLogisticMixture::locations(const torch::Tensor& x) const {
  auto u = scale_to_unit(x, levels_).to(loc_.scalar_type()).unsqueeze(1);  // [B, 1, C, H, W]
  std::vector<torch::Tensor> out;
  for (int64_t c = 0; c < channels_; ++c) {
    auto l = loc_.select(2, c);
    for (int64_t j = 0; j < c; ++j) l = l + coef_.select(2, c * (c - 1) / 2 + j) * u.select(2, j);
    out.push_back(l);
  }
  return torch::stack(out, 2);
}

torch::Tensor DiscretizedLogisticMixture::component_log_mass(const torch::Tensor& x) const {
  return logistic_log_mass(locations(x), log_scale_, x.unsqueeze(1), levels_);
}

torch::Tensor DiscretizedLogisticMixture::log_prob(const torch::Tensor& x) const {
  check_images_match("DiscretizedLogisticMixture", values_, x);
  auto joint = torch::log_softmax(logits_, 1) + component_log_mass(x).sum(2);  // [B, M, H, W]
  return torch::logsumexp(joint, 1).flatten(1).sum(1);
}

torch::Tensor DiscretizedLogisticMixture::conditional_log_pmf(const torch::Tensor& x,
                                                              int64_t c) const {
  const auto loc = locations(x);
  return conditional_log_pmf(loc, logistic_log_mass(loc, log_scale_, x.unsqueeze(1), levels_), c);
}

torch::Tensor DiscretizedLogisticMixture::conditional_log_pmf(const torch::Tensor& loc,
                                                              const torch::Tensor& log_mass,
                                                              int64_t c) const {
  // The components' weights given the channels before c, then channel c's
  // level masses under each.
  auto log_w = logits_;
  if (c > 0) log_w = log_w + log_mass.slice(2, 0, c).sum(2);
  log_w = torch::log_softmax(log_w, 1);  // [B, M, H, W]
  auto lc = loc.select(2, c).unsqueeze(1), ls = log_scale_.select(2, c).unsqueeze(1);
  auto k = torch::arange(levels_, torch::TensorOptions().dtype(torch::kLong).device(lc.device()))
               .view({1, levels_, 1, 1, 1});
  return torch::logsumexp(logistic_log_mass(lc, ls, k, levels_) + log_w.unsqueeze(1), 2);
}

torch::Tensor DiscretizedLogisticMixture::log_pmf() const {
  const auto loc = locations(values_);
  const auto log_mass = logistic_log_mass(loc, log_scale_, values_.unsqueeze(1), levels_);
  std::vector<torch::Tensor> out;
  for (int64_t c = 0; c < channels_; ++c) out.push_back(conditional_log_pmf(loc, log_mass, c));
  return torch::stack(out, 2);
}

torch::Tensor DiscretizedLogisticMixture::sample(double temperature) const {
  check_temperature(temperature);
  auto x = torch::zeros_like(values_, values_.options().dtype(torch::kLong));
  if (temperature == 0) {
    for (int64_t c = 0; c < channels_; ++c)
      x.select(1, c).copy_(conditional_log_pmf(x, c).argmax(1));
    return as_image(x, levels_);
  }
  // One component per pixel, shared by its channels.
  auto probs = torch::softmax(logits_, 1).permute({0, 2, 3, 1}).reshape({-1, components_});
  auto m = torch::multinomial(probs, 1)
               .view({logits_.size(0), 1, 1, logits_.size(2), logits_.size(3)})
               .expand({-1, 1, channels_, -1, -1});
  auto ls = log_scale_.gather(1, m).squeeze(1);
  const double half = 0.5 * static_cast<double>(levels_ - 1);
  for (int64_t c = 0; c < channels_; ++c) {
    auto loc = locations(x).gather(1, m).squeeze(1).select(1, c);
    auto u = torch::rand_like(loc).clamp(1e-5, 1.0 - 1e-5);
    auto v = loc + temperature * torch::exp(ls.select(1, c)) * (torch::log(u) - torch::log1p(-u));
    x.select(1, c).copy_(torch::round((v + 1.0) * half).clamp(0, levels_ - 1));
  }
  return as_image(x, levels_);
}

torch::Tensor DiscretizedLogisticMixture::mean() const {
  auto k = torch::arange(levels_, loc_.options()).view({1, levels_, 1, 1, 1});
  return (torch::exp(log_pmf()) * k).sum(1);
}

// --- The choice by name ------------------------------------------------------

namespace {

struct LikelihoodRow {
  const char* name;
  PixelKind kind;
  int64_t (*per_subpixel)(int64_t levels);
  std::unique_ptr<PixelDistribution> (*make)(const torch::Tensor& f, int64_t channels,
                                             int64_t levels);
};

// One row per likelihood; a new type (the logistic mixture) is one more row.
const std::vector<LikelihoodRow>& likelihood_rows() {
  static const std::vector<LikelihoodRow> rows = {
      {"bernoulli", PixelKind::kBernoulli, &Bernoulli::params_per_subpixel,
       [](const torch::Tensor& f, int64_t channels, int64_t) -> std::unique_ptr<PixelDistribution> {
         return std::make_unique<Bernoulli>(feature_part("Bernoulli", f, 0, 1, channels));
       }},
      {"categorical", PixelKind::kCategorical, &Categorical::params_per_subpixel,
       [](const torch::Tensor& f, int64_t channels,
          int64_t levels) -> std::unique_ptr<PixelDistribution> {
         return std::make_unique<Categorical>(split_features("Categorical", f, levels, channels));
       }},
      {"logistic", PixelKind::kLogistic, &DiscretizedLogistic::params_per_subpixel,
       [](const torch::Tensor& f, int64_t channels,
          int64_t levels) -> std::unique_ptr<PixelDistribution> {
         return std::make_unique<DiscretizedLogistic>(f, channels, levels);
       }},
  };
  return rows;
}

}  // namespace

std::vector<std::string> pixel_likelihood_names() {
  std::vector<std::string> names;
  for (const auto& row : likelihood_rows()) names.emplace_back(row.name);
  return names;
}

PixelLikelihood pixel_likelihood(const std::string& name, int64_t levels) {
  const std::string chosen = name != "auto" ? name : levels == 2 ? "bernoulli" : "categorical";
  for (const auto& row : likelihood_rows()) {
    if (chosen != row.name) continue;
    TORCH_CHECK(chosen != "bernoulli" || levels == 2,
                "likelihood=bernoulli needs binarized data (2 levels), got ", levels);
    PixelLikelihood lik;
    lik.name = chosen;
    lik.kind = row.kind;
    lik.levels = levels;
    lik.features = [per = row.per_subpixel(levels)](int64_t channels) { return per * channels; };
    lik.make = [make = row.make, levels](const torch::Tensor& f, int64_t channels) {
      return make(f, channels, levels);
    };
    return lik;
  }
  std::string choices = "auto";
  for (const auto& n : pixel_likelihood_names()) choices += ", " + n;
  TORCH_CHECK(false, "likelihood must be one of ", choices, "; got '", name, "'");
}

namespace {

// Writes one table per sub-pixel: params float [N, P] (the sub-pixel's P
// parameters, contiguous), out int64 [N, K + 1].
template <class Write>
torch::Tensor cdf_tables(const torch::Tensor& params, int64_t levels, const Write& write) {
  auto p = params.detach().to(torch::kCPU, torch::kFloat).contiguous();
  const int64_t N = p.size(0), P = p.size(1);
  auto out = torch::empty({N, levels + 1}, torch::kLong);
  const float* in = p.data_ptr<float>();
  int64_t* o = out.data_ptr<int64_t>();
  std::vector<uint32_t> cdf(levels + 1);
  for (int64_t r = 0; r < N; ++r) {
    write(in + r * P, cdf.data());
    for (int64_t k = 0; k <= levels; ++k) o[r * (levels + 1) + k] = cdf[k];
  }
  return out;
}

// [B, P, C, H, W] parameters to one row of P per sub-pixel, and the tables back
// to [B, C, H, W, K + 1].
torch::Tensor per_subpixel(const torch::Tensor& params) {
  return params.permute({0, 2, 3, 4, 1}).reshape({-1, params.size(1)});
}
torch::Tensor as_images(const torch::Tensor& tables, const torch::Tensor& like, int64_t levels) {
  return tables.view({like.size(0), like.size(1), like.size(2), like.size(3), levels + 1});
}

}  // namespace

torch::Tensor Bernoulli::integer_cdf(uint32_t precision) const {
  auto t = cdf_tables(per_subpixel(logits_.unsqueeze(1)), 2, [&](const float* l, uint32_t* cdf) {
    pixel_cdf(PixelKind::kBernoulli, l, 2, precision, cdf);
  });
  return as_images(t, logits_, 2);
}

torch::Tensor Categorical::integer_cdf(uint32_t precision) const {
  const int64_t K = levels_;
  auto t = cdf_tables(per_subpixel(logits_), K, [&](const float* l, uint32_t* cdf) {
    pixel_cdf(PixelKind::kCategorical, l, K, precision, cdf);
  });
  return as_images(t, logits_.select(1, 0), K);
}

torch::Tensor DiscretizedLogistic::integer_cdf(uint32_t precision) const {
  const int64_t K = levels_;
  auto params = torch::stack({location_, log_scale_}, 1);
  auto t = cdf_tables(per_subpixel(params), K, [&](const float* p, uint32_t* cdf) {
    pixel_cdf(PixelKind::kLogistic, p, K, precision, cdf);
  });
  return as_images(t, location_, K);
}

torch::Tensor DiscretizedLogisticMixture::integer_cdf(uint32_t precision) const {
  const int64_t B = values_.size(0), C = channels_, H = values_.size(2), W = values_.size(3),
                F = features_.size(1), K = levels_;
  auto f = features_.detach().to(torch::kCPU, torch::kFloat).permute({0, 2, 3, 1}).contiguous();
  auto v = values_.to(torch::kCPU, torch::kInt32).permute({0, 2, 3, 1}).contiguous();
  auto out = torch::empty({B, C, H, W, K + 1}, torch::kLong);
  auto o = out.accessor<int64_t, 5>();
  std::vector<uint16_t> earlier(C);
  MixtureEdges edges;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < H; ++i)
      for (int64_t j = 0; j < W; ++j) {
        const int64_t pixel = (b * H + i) * W + j;
        for (int64_t c = 0; c < C; ++c)
          earlier[c] = static_cast<uint16_t>(v.data_ptr<int32_t>()[pixel * C + c]);
        for (int64_t c = 0; c < C; ++c) {
          edges.prepare(f.data_ptr<float>() + pixel * F, C, c, earlier.data(), components_, K,
                        precision);
          for (int64_t k = 0; k <= K; ++k) o[b][c][i][j][k] = edges.cdf(k);
        }
      }
  return out;
}

}  // namespace tame
