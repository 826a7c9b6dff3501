// The one training loop, shared by every model.
//
// The loop owns epochs, the learning-rate schedule (learning_rate() below,
// applied to every optimizer of the model in proportion to its base rate),
// stopping, evaluation, metrics and checkpoints; the model owns what one step
// does (ImageModel::train_step: by default Adam on the loss divided by C*H*W,
// nats per dimension, so one learning rate suits every image size, with
// gradient-norm clipping). Its data comes from a BatchSource (batches.h), which
// shards by rank and crops.
//
// With --ema (RunConfig::ema) the loop keeps a moving average of the weights
// (weight_average.h), updated after every step, evaluates with it, and
// checkpoints it beside the trained weights.
//
// After each epoch: a test evaluation, a line in metrics.jsonl and an atomic
// checkpoint; also at the end, at --time-limit, after --max-steps and when
// `interrupt` is set (tame train sets it on SIGINT/SIGTERM; the library
// installs no signal handlers). A non-finite loss stops the run without
// overwriting the last good checkpoint. Data order is a function of (seed,
// epoch), and the checkpoint stores step, epoch, the batch within the epoch,
// every optimizer's state and the random generator, so --resume continues
// exactly. A run of several processes (TrainOptions::ranks) is the same run
// as one process's, to float rounding.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <vector>

#include "tame/data/datasets.h"
#include "tame/ranks.h"
#include "tame/train/run.h"

namespace tame {

/// Learning rate at `step`: lr * warm-up * decay,
///   warm-up = min(1, (step + 1) / warmup),
///   decay   = (1 + cos(pi * p)) / 2 with p = max(step / total_steps, elapsed / time_limit)
///             for the "cosine" schedule, so the rate reaches zero when either the
///             planned epochs or the time limit run out, whichever comes first;
///             1 for the "constant" schedule.
/// The cosine schedule depends on the plan: raising --epochs on --resume
/// stretches it. The constant one does not, so 1 epoch + 1 resumed epoch
/// equals 2 epochs exactly.
double learning_rate(const RunConfig& cfg, int64_t step, int64_t total_steps, double elapsed);
/// The same schedule for an optimizer built at base_lr instead of cfg.lr.
double learning_rate(const RunConfig& cfg, int64_t step, int64_t total_steps, double elapsed,
                     double base_lr);

/// Why a run stops, in increasing precedence (the agreed decision is the largest).
enum class StopReason : int { kNone = 0, kStepLimit = 1, kTimeLimit = 2, kInterrupted = 3 };

struct TrainOptions {
  std::string run_dir;
  int threads = 0;         // 0 = every hardware thread
  int64_t log_every = 50;  // steps between metrics.jsonl training lines
  bool quiet = false;      // no progress output
  int64_t max_steps =
      0;  // stop (with a checkpoint, resumable) after this many steps in this call; 0 = no cap
  /// When non-zero at a step boundary, the run stops with a checkpoint (kInterrupted).
  const std::atomic<int>* interrupt = nullptr;
  /// The ranks of a data-parallel run (ranks.h; train/data_parallel.h connects
  /// them), or nullptr: this process trains alone. With a group, rank r trains
  /// on its shard of every global batch; the initial weights come from rank 0;
  /// each step's gradients and loss are the shards' sums weighted by their
  /// share of the global batch, so the run is the one-process run; every rank
  /// stops on the same step (the latest reason any rank has); the test split
  /// is evaluated in shards and summed; rank 0 alone writes files and computes
  /// the model's diagnostics.
  RankGroup* ranks = nullptr;
};

enum class TrainStatus { kDone, kTimeLimit, kInterrupted, kStepLimit, kDiverged };

/// Throws an Error unless `data` (a split of cfg.data) suits the run: its
/// images have the run's shape and levels, and --dynamic-binarization has the
/// 8-bit source of a binarized set to draw from. `tame train` calls it before
/// it writes anything, and train() again on the training split.
void check_run_data(const RunConfig& cfg, const Dataset& data);

/// Trains the run in options.run_dir, whose config.json must exist; resumes
/// from checkpoint.tame when `resume` is set. Returns how the run ended.
TrainStatus train(const TrainOptions& options, bool resume);

}  // namespace tame
