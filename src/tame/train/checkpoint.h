// Checkpoint files: one self-checking container, written atomically.
//
//   "TAMECKPT" | u32 version | u32 meta_len | meta JSON | u64 payload_len | payload | u32 crc32
//
// (io/container.h). The meta
// JSON names the model and its hyper-parameters (a checkpoint of another model
// is refused by name), the names of its optimizers and the training state;
// the payload is a LibTorch archive of the parameters and buffers
// ("model.<name>"), each optimizer's state ("optimizer.<name>") and the CPU
// random generator ("rng"), and with `tame train --ema` the weight averages
// ("average.<name>", train/weight_average.h; meta "average": true). Loading
// checks every tensor's presence and shape before copying anything.
//
// Version 1 (before models owned their optimizers) stored one optimizer as
// "optimizer"; such checkpoints still load, into a model with one optimizer.
#pragma once

#include <torch/torch.h>

#include <string>

#include "tame/io/container.h"
#include "tame/models/image_model.h"
#include "tame/train/run.h"
#include "tame/train/weight_average.h"

namespace tame {

struct TrainState {
  int64_t step = 0;            // optimizer steps taken
  int64_t epoch = 0;           // current epoch (0-based)
  int64_t batch_in_epoch = 0;  // batches of `epoch` already consumed
  double elapsed = 0;          // seconds of training so far, across resumes
};

void save_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                     const Optimizers* optimizers, const TrainState& state,
                     WeightAverage* average = nullptr);

/// Loads weights (and, when given, every optimizer's state and the random
/// generator) into `model`; returns the training state. When `average` is
/// given, it takes the stored averages, or restarts at the loaded weights if
/// the file has none. Any mismatch or corruption is an Error naming the file.
TrainState load_checkpoint(const std::string& path, const RunConfig& cfg, ImageModel& model,
                           Optimizers* optimizers, WeightAverage* average = nullptr);

}  // namespace tame
