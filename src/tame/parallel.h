// One small thread pool for work split into independent jobs (blocks of images
// in the codec and the sampler, images in the codec baselines). Plain
// std::thread, free of LibTorch so that the fuzz target links it.
#pragma once

#include <cstdint>
#include <functional>

namespace tame {

/// Runs job(i) for i = 0 .. jobs-1 on up to `threads` threads, each taking the
/// next unstarted job; after the first exception no new job starts, and that
/// exception is rethrown once all threads have stopped.
void run_parallel(int64_t jobs, int threads, const std::function<void(int64_t)>& job);

}  // namespace tame
