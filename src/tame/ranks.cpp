#include "tame/ranks.h"

namespace tame {

namespace {
RankGroup* g_training_ranks = nullptr;
}

double RankGroup::sum(double value) {
  auto t = torch::tensor({value}, torch::kDouble);
  reduce_({t}, Op::kSum);
  return t.item<double>();
}

int RankGroup::max(int value) {
  auto t = torch::tensor({static_cast<int64_t>(value)}, torch::kLong);
  reduce_({t}, Op::kMax);
  return static_cast<int>(t.item<int64_t>());
}

ScopedTrainingRanks::ScopedTrainingRanks(RankGroup* group) : previous_(g_training_ranks) {
  g_training_ranks = group;
}

ScopedTrainingRanks::~ScopedTrainingRanks() { g_training_ranks = previous_; }

void sum_over_ranks_(const std::vector<torch::Tensor>& tensors) {
  if (g_training_ranks && g_training_ranks->size() > 1) g_training_ranks->reduce_(tensors);
}

void copy_from_rank0_(const std::vector<torch::Tensor>& tensors) {
  if (g_training_ranks && g_training_ranks->size() > 1) g_training_ranks->broadcast_(tensors);
}

}  // namespace tame
