#include "tame/models/autoregressive/autoregressive_model.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "tame/dist/likelihood.h"
#include "tame/parallel.h"
#include "tame/random.h"

namespace tame {

torch::Tensor AutoregressiveModel::logits(const torch::Tensor& x) {
  return forward_unit(scale_to_unit(x, levels_));
}

torch::Tensor AutoregressiveModel::nll(const torch::Tensor& x) {
  return categorical_nll(logits(x), x);
}

torch::Tensor AutoregressiveModel::sample(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  TORCH_CHECK(n > 0, "sample: n must be positive, got ", n);
  auto engine = step_engine();
  if (!engine) return sample_naive(n, temperature);
  auto seed = static_cast<uint64_t>(
      torch::randint(0, std::numeric_limits<int64_t>::max(), {1}, torch::kLong).item<int64_t>());
  return sample_engine(*engine, n, temperature, seed).to(device());
}

torch::Tensor sample_engine(const StepEngine& engine, int64_t n, double temperature,
                            uint64_t seed) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  const int64_t C = engine.channels(), H = engine.height(), W = engine.width(), K = engine.levels();
  auto out = torch::empty({n, C, H, W}, torch::kUInt8);
  const int64_t chunks = std::min<int64_t>(n, std::max(1, at::get_num_threads()));
  run_parallel(chunks, static_cast<int>(chunks), [&](int64_t ch) {
    {
      const int64_t first = n * ch / chunks, count = n * (ch + 1) / chunks - first;
      if (count == 0) return;
      auto e = engine.clone();
      e->begin(count);
      std::vector<uint64_t> rng(count);
      for (int64_t b = 0; b < count; ++b)
        rng[b] = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(first + b)));
      std::vector<uint8_t> values(count);
      std::vector<float> scaled(K), p(K);
      const float inv_t = static_cast<float>(1.0 / temperature);
      for (int64_t s = 0; s < e->sub_pixels(); ++s) {
        const float* logits = e->conditional();
        for (int64_t b = 0; b < count; ++b) {
          const float* l = logits + b * K;
          float top = -std::numeric_limits<float>::infinity();
          for (int64_t k = 0; k < K; ++k) top = std::max(top, scaled[k] = l[k] * inv_t);
          steps::exp_shifted(scaled.data(), K, top, p.data());
          double total = 0;
          for (int64_t k = 0; k < K; ++k) total += p[k];
          double u = static_cast<double>(splitmix64(rng[b]++) >> 11) * 0x1.0p-53 * total;
          int64_t k = 0;
          while (k + 1 < K && u >= p[k]) u -= p[k++];
          values[b] = static_cast<uint8_t>(k);
        }
        e->observe(values.data());
      }
      auto imgs = e->images();
      std::memcpy(out.data_ptr<uint8_t>() + first * C * H * W, imgs.data(), imgs.size());
    }
  });
  return out;
}

torch::Tensor AutoregressiveModel::sample_naive(int64_t n, double temperature) {
  TORCH_CHECK(temperature > 0, "temperature must be positive, got ", temperature);
  c10::InferenceMode guard;
  const int64_t C = shape_.channels, H = shape_.height, W = shape_.width;
  auto x = torch::zeros({n, C, H, W}, torch::TensorOptions().dtype(torch::kUInt8).device(device()));
  for (int64_t i = 0; i < H; ++i)
    for (int64_t j = 0; j < W; ++j)
      for (int64_t c = 0; c < C; ++c) {
        auto rows = x.slice(2, 0, i + 1);
        auto l = logits(rows).select(4, j).select(3, i).select(2, c);  // [n, K]
        auto probs = torch::softmax(l.to(torch::kFloat) / temperature, 1);
        x.select(1, c).select(1, i).select(1, j).copy_(torch::multinomial(probs, 1).squeeze(1));
      }
  return x;
}

}  // namespace tame
