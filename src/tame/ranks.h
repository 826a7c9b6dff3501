// The processes of a data-parallel run, as the training loop and the models
// see them.
//
// tame train on W processes (train/data_parallel.h connects them through
// c10d) gives each a RankGroup. The loop uses it to broadcast the initial
// weights, to average gradients, to agree on when to stop and to sum the
// evaluation; a model whose training changes state outside its gradients
// (a codebook's moving averages, a data-dependent initialization) keeps its
// ranks equal through sum_over_ranks_ and copy_from_rank0_, which do nothing in
// one process. Tests fake a group in one process (tests/train/test_loop.cpp).
#pragma once

#include <torch/torch.h>

#include <vector>

namespace tame {

/// What a group's collectives have cost so far.
struct CollectiveStats {
  double seconds = 0;  // waiting in collectives, this rank's clock
  int64_t bytes = 0;   // reduced or broadcast, per rank
};

class RankGroup {
 public:
  enum class Op { kSum, kMax };
  virtual ~RankGroup() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Replaces each tensor, in place, by the sum (or maximum) over the ranks of
  /// `scale` times it. Tensors of one dtype travel together in a few flat
  /// buckets, so a call costs a few collectives, not one per tensor. Every rank
  /// must pass tensors of the same shapes in the same order.
  virtual void reduce_(const std::vector<torch::Tensor>& tensors, Op op = Op::kSum,
                       double scale = 1.0) = 0;
  /// Overwrites each tensor, in place, with rank 0's.
  virtual void broadcast_(const std::vector<torch::Tensor>& tensors) = 0;

  virtual CollectiveStats stats() const { return {}; }

  /// Scalars, through reduce_.
  double sum(double value);
  int max(int value);
};

/// Makes `group` the group of the training running in this process while it
/// lives (what sum_over_ranks_ and copy_from_rank0_ use; nullptr: one process).
class ScopedTrainingRanks {
 public:
  explicit ScopedTrainingRanks(RankGroup* group);
  ~ScopedTrainingRanks();
  ScopedTrainingRanks(const ScopedTrainingRanks&) = delete;
  ScopedTrainingRanks& operator=(const ScopedTrainingRanks&) = delete;

 private:
  RankGroup* previous_;
};

/// Sums each tensor over the training's ranks, in place; one process: nothing.
void sum_over_ranks_(const std::vector<torch::Tensor>& tensors);
/// Overwrites each tensor with rank 0's; one process: nothing.
void copy_from_rank0_(const std::vector<torch::Tensor>& tensors);

}  // namespace tame
