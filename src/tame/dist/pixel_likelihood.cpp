#include "tame/dist/pixel_likelihood.h"

#include <cmath>

#include "tame/dist/integer_cdf.h"
#include "tame/dist/likelihood.h"

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

Bernoulli::Bernoulli(torch::Tensor logits) : PixelDistribution(2), logits_(std::move(logits)) {
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
    : PixelDistribution(levels_of_logits(logits)), logits_(std::move(logits)) {}

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
      location_(std::move(location)),
      log_scale_(log_scale.clamp_min(kMinLogScale)) {
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

}  // namespace tame
