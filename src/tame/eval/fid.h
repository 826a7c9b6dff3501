// tame's sample-quality score, one for every family that samples.
//
// No Inception network can be had offline, so tame's FID for a data set uses
// a small classifier trained on that set's labels (nn/classifier.h). Its 128
// penultimate features of
// generated images and of the test split are each summarized by their mean
// and covariance, and the score is the Frechet distance between the two
// Gaussians (Heusel et al. 2017):
//   d^2 = ||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2),
// computed in double through symmetric eigendecompositions. Scores from
// different classifiers are not comparable: every report names the
// classifier's data set and test accuracy. Images enter the classifier as
// x / (K - 1), so a binarized set's samples are scored by the classifier of
// its 8-bit set.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "tame/data/datasets.h"
#include "tame/models/image_model.h"
#include "tame/nn/classifier.h"

namespace tame {

struct ClassifierOptions {
  int64_t epochs = 5;
  int64_t batch_size = 128;
  double lr = 1e-3;
  uint64_t seed = 0;
};

/// Trains the classifier on `train` (images with labels) with Adam, the epoch
/// order of data/datasets.h's epoch_permutation, and measures its accuracy on
/// `test`. `progress(epoch, batch, batches)` reports each step.
TrainedClassifier train_classifier(
    const Dataset& train, const Dataset& test, const ClassifierOptions& options,
    const std::function<void(int64_t, int64_t, int64_t)>& progress = {});

/// The share of `images` (with levels K) the classifier labels as `labels`.
double classifier_accuracy(FidClassifierImpl& net, const torch::Tensor& images, int64_t levels,
                           const torch::Tensor& labels);

/// The classifier's features of integer images [N, C, H, W] with K levels,
/// in batches: double [N, kFeatures].
torch::Tensor fid_features(FidClassifierImpl& net, const torch::Tensor& images, int64_t levels);

/// The Frechet distance between N(mu1, s1) and N(mu2, s2) (double tensors).
double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& s1, const torch::Tensor& mu2,
                        const torch::Tensor& s2);
/// The Frechet distance between the Gaussians fitted to two feature sets
/// [N1, F] and [N2, F] (means and unbiased covariances).
double frechet_distance(const torch::Tensor& features1, const torch::Tensor& features2);

struct FidResult {
  double fid = 0;
  int64_t samples = 0, reference = 0, drawn = 0;
};

/// Throws an Error unless the classifier scores images of data set `data`
/// (its own, or that set binarized: "fashion-mnist-bin" for "fashion-mnist")
/// of `shape`.
void check_classifier_fits(const TrainedClassifier& classifier, const std::string& data,
                           ImageShape shape);

/// FID of n samples of `model` (temperature 1, drawn after seeding torch's
/// generator with `seed`, in batches of `batch`) against `reference` images
/// of the model's data. The same model, seed and thread count give the same
/// score. `progress(done, n)` follows the sampling.
/// With min_confidence > 0 the samples are those sample_with_rejection()
/// keeps at that confidence (drawing at most 50 n; too few is an Error), and
/// `drawn` says how many it drew.
FidResult model_fid(ImageModel& model, FidClassifierImpl& classifier,
                    const torch::Tensor& reference, int64_t n, uint64_t seed, int64_t batch = 100,
                    const std::function<void(int64_t, int64_t)>& progress = {},
                    double min_confidence = 0.0);

/// The top-class probability the classifier gives each image [N, C, H, W] of
/// K levels: float [N], in batches.
torch::Tensor classifier_confidence(FidClassifierImpl& net, const torch::Tensor& images,
                                    int64_t levels);

struct RejectionResult {
  torch::Tensor images;  // the kept samples, at most n
  int64_t drawn = 0;     // samples drawn in all
};

/// Classifier-based rejection (Razavi et al. 2019, VQ-VAE-2): draws batches
/// of `batch` samples at temperature T and keeps those to which the
/// classifier gives a top-class probability >= min_confidence (in [0, 1]),
/// in the order drawn, until n are kept or max_draws were drawn (then fewer
/// come back). `progress(kept, drawn)` follows it. Any model that samples.
RejectionResult sample_with_rejection(ImageModel& model, FidClassifierImpl& classifier, int64_t n,
                                      double temperature, double min_confidence, int64_t max_draws,
                                      int64_t batch = 100,
                                      const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace tame
