// The training data as the loop sees it, one global batch at a time.
//
// An epoch has N K items, N training images each taken K times (K =
// --crops-per-image, 1 unless --crop); item i is image i mod N. Global batch b
// of epoch e holds the items perm(seed, e)[b B, (b + 1) B) (epoch_permutation,
// data/datasets.h), each
//  - cropped to S x S (--crop S) at an offset drawn from splitmix64 of (seed,
//    epoch, item), so a few large images give many patches, each item its own,
//    and a resumed run sees the same ones;
//  - mirrored left-right when the run asks (--flip), with probability 1/2
//    drawn from splitmix64 of (seed, epoch, item), so resuming stays exact;
//  - binarized afresh from its 8-bit source when the run asks
//    (--dynamic-binarization), keyed by the step and the image's row in the
//    global batch.
// A run of W processes gives rank r the rows [r B / W, (r + 1) B / W) of every
// global batch: together the ranks see exactly the batches one process would,
// whatever W (the shards differ by at most one row when W does not divide B).
#pragma once

#include <torch/torch.h>

#include "tame/data/datasets.h"
#include "tame/train/run.h"

namespace tame {

class BatchSource {
 public:
  /// `train` is the run's training split; cfg gives the seed, batch size, crop
  /// and binarization. Throws an Error when the split is smaller than a batch.
  BatchSource(Dataset train, const RunConfig& cfg, int rank = 0, int world_size = 1);

  int64_t steps_per_epoch() const { return steps_per_epoch_; }
  int64_t global_batch() const { return batch_; }
  /// The rows of each global batch that this rank takes: [shard_begin, shard_end).
  int64_t shard_begin() const { return batch_ * rank_ / world_; }
  int64_t shard_end() const { return batch_ * (rank_ + 1) / world_; }
  /// This rank's share of global batch `index` of `epoch`, taken at `step`.
  torch::Tensor batch(int64_t epoch, int64_t index, int64_t step);

 private:
  Dataset data_;
  RunConfig cfg_;
  int rank_, world_;
  int64_t batch_, items_, steps_per_epoch_;  // items_: N x crops per image
  int64_t perm_epoch_ = -1;
  torch::Tensor perm_;  // the permutation of perm_epoch_
};

/// Item indices[r] is images[indices[r] mod N], cropped to size x size at the
/// offset that (seed, epoch, indices[r]) gives: uint8 [R, C, size, size]. size
/// must not exceed H or W.
torch::Tensor random_crops(const torch::Tensor& images, const torch::Tensor& indices, int64_t size,
                           uint64_t seed, int64_t epoch);
/// Rows r of x (items indices[r]) mirrored left-right (along W) where the bit
/// that (seed, epoch, indices[r]) gives is 1, about half of them; the others as
/// they are. x: [R, C, H, W].
torch::Tensor random_flips(const torch::Tensor& x, const torch::Tensor& indices, uint64_t seed,
                           int64_t epoch);
/// The central size x size window of every image (the evaluation's crop).
torch::Tensor center_crop(const torch::Tensor& images, int64_t size);
/// The images a run trained on crops is scored on: whole images when the model
/// takes any size (fully convolutional), else their central crops.
torch::Tensor images_to_score(const RunConfig& cfg, const ImageModel& model,
                              const torch::Tensor& images);

}  // namespace tame
