#include "tame/codec/codes_coder.h"

#include <cmath>
#include <string>

#include "tame/codec/bits_back.h"  // chained_default_block
#include "tame/codec/model_codec.h"
#include "tame/error.h"

namespace tame {

CodesCoder::CodesCoder(CodeNets nets, std::unique_ptr<ImageCoder> prior, ImageSize size,
                       int64_t levels)
    : nets_(std::move(nets)), prior_(std::move(prior)), size_(size), levels_(levels) {
  const int64_t C = size.channels;
  const steps::MapShape in = nets_.encoder.input(), map = nets_.encoder.output(),
                        out = nets_.decoder.output();
  const int64_t features = pixel_params_per_subpixel(nets_.pixels, levels) * C;
  code_size_ = {1, map.height, map.width};
  if (!prior_ || prior_->channels() != 1 || prior_->levels() != nets_.codes)
    throw Error("codes coder: the prior does not code " + std::to_string(nets_.codes) +
                "-level code maps");
  if (levels < 2 || levels > 65536 || (nets_.pixels == PixelKind::kBernoulli && levels != 2) ||
      in.height != size.height || in.width != size.width || in.channels != C ||
      map.channels != nets_.dim || nets_.decoder.input().size() != map.size() ||
      out.height != size.height || out.width != size.width || out.channels != features ||
      static_cast<int64_t>(nets_.codebook.size()) != nets_.codes * nets_.dim)
    throw Error("codes coder: the networks do not fit " + size.str() + " images");
}

uint64_t CodesCoder::fingerprint() const {
  steps::Fingerprint f;
  for (int64_t v : {int64_t{400}, size_.channels, size_.height, size_.width, levels_, nets_.codes,
                    nets_.dim, static_cast<int64_t>(nets_.pixels)})
    f.add(v);
  nets_.encoder.hash(f);
  nets_.decoder.hash(f);
  f.add(nets_.codebook.data(), sizeof(float) * nets_.codebook.size());
  f.add(static_cast<int64_t>(prior_->fingerprint()));
  return f.value();
}

void CodesCoder::check_size(ImageSize size) const {
  if (size != size_)
    throw Error("this model codes " + size_.str() + " images only, not " + size.str());
}

std::vector<uint16_t> CodesCoder::codes_of(const uint16_t* x) const {
  const int64_t D = nets_.dim;
  const std::vector<float> in = unit_image(x, size_, levels_);
  std::vector<float> z(nets_.encoder.output().size());
  nets_.encoder.run(in.data(), z.data());
  std::vector<uint16_t> codes(code_size_.dims());
  for (size_t p = 0; p < codes.size(); ++p) {
    const float* v = z.data() + p * D;
    float best = INFINITY;
    for (int64_t k = 0; k < nets_.codes; ++k) {
      const float* e = nets_.codebook.data() + k * D;
      float d = 0.0f;
      for (int64_t i = 0; i < D; ++i) d = d + (v[i] - e[i]) * (v[i] - e[i]);
      if (d < best) {
        best = d;
        codes[p] = static_cast<uint16_t>(k);
      }
    }
  }
  return codes;
}

std::vector<float> CodesCoder::features(const uint16_t* z) const {
  const int64_t D = nets_.dim, L = code_size_.dims();
  std::vector<float> map(L * D), out(nets_.decoder.output().size());
  for (int64_t p = 0; p < L; ++p)
    std::copy_n(nets_.codebook.data() + int64_t{z[p]} * D, D, map.data() + p * D);
  nets_.decoder.run(map.data(), out.data());
  return out;
}

double CodesCoder::subpixel_cdf(const float* features, int64_t t, std::vector<float>& params,
                                uint32_t* cdf, int64_t value) const {
  return feature_map_cdf(nets_.pixels, features, nets_.decoder.output().channels, size_.channels,
                         size_.height * size_.width, t, params.data(), levels_, kCodecPrecision,
                         cdf, value);
}

void CodesCoder::push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                             const UnitsDone& done) const {
  check_size(block.size);
  const int64_t D = size_.dims(), L = code_size_.dims();
  ImageBlock codes{code_size_, block.n, std::vector<uint16_t>(block.n * L)};
  for (int64_t b = 0; b < block.n; ++b) {
    const auto z = codes_of(block.values.data() + b * D);
    std::copy(z.begin(), z.end(), codes.values.begin() + b * L);
  }
  std::vector<uint32_t> cdf(levels_ + 1);
  std::vector<float> params(nets_.decoder.output().channels / size_.channels);
  double ideal = 0, model = 0;
  for (int64_t b = block.n; b-- > 0;) {  // the decoder pops image 0 first
    const uint16_t* x = block.values.data() + b * D;
    const auto f = features(codes.values.data() + b * L);
    for (int64_t t = D; t-- > 0;) {
      model += subpixel_cdf(f.data(), t, params, cdf.data(), x[t]);
      ideal += kCodecPrecision - std::log2(static_cast<double>(cdf[x[t] + 1] - cdf[x[t]]));
      push_symbol(m, cdf.data(), x[t], kCodecPrecision);
    }
    if (done) done(1);
  }
  EncodeStats prior;
  prior_->push_images(m, codes, &prior, {});
  if (stats) {
    stats->ideal_bits += ideal + prior.ideal_bits;
    stats->model_bits += model + prior.model_bits;
    stats->chain_bits += prior.chain_bits;
  }
}

ImageBlock CodesCoder::pop_images(RansMessage& m, int64_t n, ImageSize size,
                                  const UnitsDone& done) const {
  check_size(size);
  const int64_t D = size_.dims(), L = code_size_.dims();
  const ImageBlock codes = prior_->pop_images(m, n, code_size_, {});
  ImageBlock block{size, n, std::vector<uint16_t>(n * D)};
  std::vector<uint32_t> cdf(levels_ + 1);
  std::vector<float> params(nets_.decoder.output().channels / size_.channels);
  for (int64_t b = 0; b < n; ++b) {
    const auto f = features(codes.values.data() + b * L);
    uint16_t* x = block.values.data() + b * D;
    for (int64_t t = 0; t < D; ++t) {
      subpixel_cdf(f.data(), t, params, cdf.data(), -1);
      x[t] = static_cast<uint16_t>(
          pop_symbol(m, cdf.data(), static_cast<uint32_t>(levels_), kCodecPrecision));
    }
    if (done) done(1);
  }
  return block;
}

// ------------------------------------------------------------------ uniform

UniformCoder::UniformCoder(int64_t channels, int64_t levels)
    : channels_(channels), levels_(levels) {
  if (channels < 1 || levels < 2 || levels > 65536)
    throw Error("uniform coder: " + std::to_string(channels) + " channels of " +
                std::to_string(levels) + " levels");
  cdf_.resize(levels + 1);
  for (int64_t i = 0; i <= levels; ++i)
    cdf_[i] = static_cast<uint32_t>((static_cast<uint64_t>(i) << kCodecPrecision) /
                                    static_cast<uint64_t>(levels));
}

uint64_t UniformCoder::fingerprint() const {
  steps::Fingerprint f;
  for (int64_t v : {int64_t{401}, channels_, levels_, int64_t{kCodecPrecision}}) f.add(v);
  return f.value();
}

int64_t UniformCoder::max_block() const { return kMaxFileBlock; }

int64_t UniformCoder::default_block(int64_t images) const { return chained_default_block(images); }

void UniformCoder::push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                               const UnitsDone& done) const {
  if (block.size.channels != channels_)
    throw Error("uniform coder: " + std::to_string(block.size.channels) + " channels, not " +
                std::to_string(channels_));
  for (auto it = block.values.rbegin(); it != block.values.rend(); ++it) {
    if (*it >= levels_) throw Error("uniform coder: a value outside the levels");
    push_symbol(m, cdf_.data(), *it, kCodecPrecision);
    if (stats) {
      const double bits =
          kCodecPrecision - std::log2(static_cast<double>(cdf_[*it + 1] - cdf_[*it]));
      stats->ideal_bits += bits;
      stats->model_bits += std::log2(static_cast<double>(levels_));
    }
  }
  if (done) done(block.n);
}

ImageBlock UniformCoder::pop_images(RansMessage& m, int64_t n, ImageSize size,
                                    const UnitsDone& done) const {
  if (size.channels != channels_)
    throw Error("uniform coder: " + std::to_string(size.channels) + " channels, not " +
                std::to_string(channels_));
  ImageBlock block{size, n, std::vector<uint16_t>(n * size.dims())};
  for (auto& v : block.values)
    v = static_cast<uint16_t>(
        pop_symbol(m, cdf_.data(), static_cast<uint32_t>(levels_), kCodecPrecision));
  if (done) done(n);
  return block;
}

}  // namespace tame
