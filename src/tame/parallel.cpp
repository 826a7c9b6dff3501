#include "tame/parallel.h"

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace tame {

void run_parallel(int64_t jobs, int threads, const std::function<void(int64_t)>& job) {
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(threads, jobs));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex mu;
  auto run = [&] {
    for (int64_t i; (i = next++) < jobs;) {
      try {
        job(i);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = jobs;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int64_t t = 1; t < workers; ++t) pool.emplace_back(run);
  run();
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace tame
