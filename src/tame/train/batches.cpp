#include "tame/train/batches.h"

#include <stdexcept>
#include <vector>

#include "tame/random.h"

namespace tame {

BatchSource::BatchSource(Dataset train, const RunConfig& cfg, int rank, int world_size)
    : data_(std::move(train)), cfg_(cfg), rank_(rank), world_(world_size), batch_(cfg.batch_size) {
  if (world_ < 1 || rank_ < 0 || rank_ >= world_)
    throw Error("rank " + std::to_string(rank_) + " is outside a world of " +
                std::to_string(world_) + " processes");
  items_ = data_.size() * cfg.crops_per_image;
  if (items_ < batch_)
    throw Error("--batch-size " + std::to_string(batch_) + " is larger than an epoch's " +
                std::to_string(items_) + " items (" + std::to_string(data_.size()) +
                " training images x --crops-per-image " + std::to_string(cfg.crops_per_image) +
                ")");
  if (batch_ < world_)
    throw Error("--batch-size " + std::to_string(batch_) + " leaves some of the " +
                std::to_string(world_) + " processes no images");
  steps_per_epoch_ = items_ / batch_;
}

torch::Tensor BatchSource::batch(int64_t epoch, int64_t index, int64_t step) {
  if (epoch != perm_epoch_) {
    auto perm = epoch_permutation(items_, cfg_.seed, epoch);
    perm_ = torch::from_blob(perm.data(), {items_}, torch::kLong).clone();
    perm_epoch_ = epoch;
  }
  const int64_t first = index * batch_ + shard_begin();
  auto idx = perm_.slice(0, first, index * batch_ + shard_end());
  const auto& from = cfg_.dynamic_binarization ? data_.source : data_.images;
  auto x = cfg_.crop > 0 ? random_crops(from, idx, cfg_.crop, cfg_.seed, epoch)
                         : from.index_select(0, idx);  // without --crop, items_ is N
  if (cfg_.flip) x = random_flips(x, idx, cfg_.seed, epoch);
  // Dynamic binarization draws keyed by the step: a resumed run sees the same pixels.
  if (cfg_.dynamic_binarization) x = binarize(x, 2 + step, shard_begin());
  return x;
}

torch::Tensor random_crops(const torch::Tensor& images, const torch::Tensor& indices, int64_t size,
                           uint64_t seed, int64_t epoch) {
  const int64_t N = images.size(0), H = images.size(2), W = images.size(3), R = indices.size(0);
  if (size < 1 || size > H || size > W)
    throw Error("--crop " + std::to_string(size) + " does not fit " + std::to_string(H) + "x" +
                std::to_string(W) + " images");
  auto out = torch::empty({R, images.size(1), size, size}, images.options());
  auto idx = indices.contiguous();
  const int64_t* ip = idx.data_ptr<int64_t>();
  const uint64_t key = splitmix64(seed ^ splitmix64(0x63726f70ULL + static_cast<uint64_t>(epoch)));
  for (int64_t r = 0; r < R; ++r) {
    const uint64_t h = splitmix64(key + static_cast<uint64_t>(ip[r]));
    // Two 32-bit halves, each reduced to its range: a tiny bias, the same on every machine.
    const int64_t top = static_cast<int64_t>((h >> 32) % static_cast<uint64_t>(H - size + 1));
    const int64_t left =
        static_cast<int64_t>((h & 0xffffffffULL) % static_cast<uint64_t>(W - size + 1));
    out[r].copy_(images[ip[r] % N].slice(1, top, top + size).slice(2, left, left + size));
  }
  return out;
}

torch::Tensor random_flips(const torch::Tensor& x, const torch::Tensor& indices, uint64_t seed,
                           int64_t epoch) {
  const int64_t R = indices.size(0);
  if (x.dim() != 4 || x.size(0) != R)
    throw std::invalid_argument("random_flips: x must be [R, C, H, W] with one row per index");
  auto idx = indices.contiguous();
  const int64_t* ip = idx.data_ptr<int64_t>();
  const uint64_t key = splitmix64(seed ^ splitmix64(0x666c6970ULL + static_cast<uint64_t>(epoch)));
  std::vector<int64_t> rows;
  for (int64_t r = 0; r < R; ++r)
    if (splitmix64(key + static_cast<uint64_t>(ip[r])) >> 63) rows.push_back(r);
  if (rows.empty()) return x;
  auto out = x.clone();
  auto pick = torch::tensor(rows, torch::kLong);
  out.index_copy_(0, pick, x.index_select(0, pick).flip({3}));
  return out;
}

torch::Tensor center_crop(const torch::Tensor& images, int64_t size) {
  const int64_t H = images.size(2), W = images.size(3);
  if (size < 1 || size > H || size > W)
    throw Error("--crop " + std::to_string(size) + " does not fit " + std::to_string(H) + "x" +
                std::to_string(W) + " images");
  const int64_t top = (H - size) / 2, left = (W - size) / 2;
  return images.slice(2, top, top + size).slice(3, left, left + size).contiguous();
}

torch::Tensor images_to_score(const RunConfig& cfg, const ImageModel& model,
                              const torch::Tensor& images) {
  return cfg.crop > 0 && !model.any_size() ? center_crop(images, cfg.crop) : images;
}

}  // namespace tame
