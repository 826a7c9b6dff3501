// The one training loop, shared by every model.
//
// Adam on the model's loss divided by C*H*W (nats per dimension, so one
// learning rate suits every image size), gradient-norm clipping, and the
// learning-rate schedule of learning_rate() below. After each epoch: a test
// evaluation, a line in metrics.jsonl and an atomic checkpoint; also at the
// end, at --time-limit and on Ctrl-C (SIGINT/SIGTERM). A non-finite loss stops
// the run without overwriting the last good checkpoint. Data order is a
// function of (seed, epoch), and the checkpoint stores step, epoch, the batch
// within the epoch, optimizer state and the random generator, so --resume
// continues exactly.
#pragma once

#include <string>

#include "tame/data/datasets.h"
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

struct TrainOptions {
  std::string run_dir;
  int threads = 0;          // 0 = every hardware thread
  int64_t log_every = 50;   // steps between metrics.jsonl training lines
  bool quiet = false;       // no progress output
  int64_t max_steps = 0;    // stop (with a checkpoint, resumable) after this many steps in this call; 0 = no cap
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
