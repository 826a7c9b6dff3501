#include "tame/train/data_parallel.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <thread>

// ProcessGroupGloo.hpp declares its class only under USE_C10D_GLOO, which
// LibTorch's CMake targets define when LibTorch was built with Gloo.
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include "tame/common.h"
#include "tame/error.h"

namespace tame {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Buckets of at most this many bytes: one step of a model of a few million
// parameters costs a few allreduces (PyTorch's DDP uses 25 MB too).
constexpr int64_t kBucketBytes = 25 << 20;

int env_int(const char* name, int fallback, int lo, int hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return fallback;
  char* end = nullptr;
  const long x = std::strtol(v, &end, 10);
  if (*end != '\0' || x < lo || x > hi)
    throw Error(std::string(name) + "=" + v + " is not an integer in [" + std::to_string(lo) +
                ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

class GlooRanks final : public RankGroup {
 public:
  GlooRanks(const DistributedEnv& env, double timeout_s)
      : rank_(env.rank), size_(env.world_size), timeout_s_(timeout_s) {
    const auto timeout = milliseconds(static_cast<int64_t>(timeout_s * 1000));
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
    try {
      store_ = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    } catch (const std::exception& e) {
      throw Error(who() +
                  (env.rank == 0 ? "could not serve the run's store at " + where
                                 : "could not reach rank 0's store at " + where) +
                  " with all " + std::to_string(size_) + " ranks within " + seconds() + " (" +
                  first_line(e) + ")");
    }
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    try {
      if (ifname && *ifname)
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (env.master_addr == "localhost" || env.master_addr.rfind("127.", 0) == 0)
        options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, rank_, size_, options);
    } catch (const std::exception& e) {
      throw Error(who() + "could not join the other ranks within " + seconds() + " (" +
                  first_line(e) + ")");
    }
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  CollectiveStats stats() const override { return stats_; }

  void reduce_(const std::vector<torch::Tensor>& tensors, Op op, double scale) override {
    c10d::AllreduceOptions o;
    o.reduceOp = op == Op::kMax ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    each_bucket(tensors, [&](std::vector<at::Tensor>& flat) {
      if (scale != 1.0) flat[0].mul_(scale);
      return group_->allreduce(flat, o);
    });
  }

  void broadcast_(const std::vector<torch::Tensor>& tensors) override {
    c10d::BroadcastOptions o;
    o.rootRank = 0;
    each_bucket(tensors, [&](std::vector<at::Tensor>& flat) { return group_->broadcast(flat, o); });
  }

 private:
  std::string who() const {
    return "rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ": ";
  }
  std::string seconds() const {
    return std::to_string(static_cast<long long>(timeout_s_)) + " s (--rank-timeout)";
  }

  // Consecutive defined tensors of one dtype and device, up to kBucketBytes.
  static std::vector<std::vector<torch::Tensor>> buckets(const std::vector<torch::Tensor>& ts) {
    std::vector<std::vector<torch::Tensor>> out;
    int64_t bytes = 0;
    for (const auto& t : ts) {
      if (!t.defined()) continue;
      const int64_t b = t.numel() * static_cast<int64_t>(t.element_size());
      if (out.empty() || out.back().front().scalar_type() != t.scalar_type() ||
          out.back().front().device() != t.device() || bytes + b > kBucketBytes) {
        out.emplace_back();
        bytes = 0;
      }
      out.back().push_back(t);
      bytes += b;
    }
    return out;
  }

  static torch::Tensor flatten(const std::vector<torch::Tensor>& bucket) {
    if (bucket.size() == 1) return bucket[0].reshape({-1}).clone();
    std::vector<torch::Tensor> flat;
    for (const auto& t : bucket) flat.push_back(t.reshape({-1}));
    return torch::cat(flat);
  }

  static void unflatten(const torch::Tensor& flat, const std::vector<torch::Tensor>& bucket) {
    int64_t at = 0;
    for (const auto& t : bucket) {
      const int64_t n = t.numel();
      t.copy_(flat.narrow(0, at, n).view(t.sizes()));
      at += n;
    }
  }

  // Flattens each bucket of `tensors`, runs `start` (one collective on the
  // flat tensor) and waits for it, and copies the result back.
  template <class Start>
  void each_bucket(const std::vector<torch::Tensor>& tensors, Start start) {
    torch::NoGradGuard no_grad;
    for (auto& bucket : buckets(tensors)) {
      std::vector<at::Tensor> flat{flatten(bucket)};
      const auto t0 = Clock::now();
      try {
        start(flat)->wait();
      } catch (const std::exception& e) {
        throw Error(who() + "lost contact with the run's other ranks (" + first_line(e) +
                    "); every rank stops. Waits are bounded by " + seconds());
      }
      stats_.seconds += std::chrono::duration<double>(Clock::now() - t0).count();
      stats_.bytes += flat[0].numel() * static_cast<int64_t>(flat[0].element_size());
      unflatten(flat[0], bucket);
    }
  }

  int rank_, size_;
  double timeout_s_;
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
  CollectiveStats stats_;
};

volatile sig_atomic_t g_pending_signal = 0;
void remember_signal(int sig) { g_pending_signal = sig; }

}  // namespace

int free_local_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error("no socket for a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw Error("could not find a free port on 127.0.0.1");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

DistributedEnv distributed_env() {
  DistributedEnv env;
  env.world_size = env_int("WORLD_SIZE", 1, 1, 1 << 20);
  if (env.world_size == 1) return env;
  if (!std::getenv("RANK")) throw Error("WORLD_SIZE is set but RANK is not");
  env.rank = env_int("RANK", 0, 0, env.world_size - 1);
  env.local_world_size = env_int("LOCAL_WORLD_SIZE", 1, 1, env.world_size);
  env.local_rank = env_int("LOCAL_RANK", 0, 0, env.local_world_size - 1);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) env.master_addr = a;
  env.master_port = env_int("MASTER_PORT", 29500, 1, 65535);
  return env;
}

std::unique_ptr<RankGroup> connect_ranks(const DistributedEnv& env, double timeout_s) {
  if (!(timeout_s > 0)) throw Error("--rank-timeout must be > 0");
  return std::make_unique<GlooRanks>(env, timeout_s);
}

int run_local_ranks(int nproc, const std::vector<std::string>& argv, double grace_s) {
  if (nproc < 1) throw Error("--nproc must be >= 1");
  const std::string port = std::to_string(free_local_port());
  std::map<pid_t, int> running;  // pid -> rank
  std::vector<int> codes(static_cast<size_t>(nproc), -1);
  struct sigaction on {
  }, old_int{}, old_term{};
  on.sa_handler = remember_signal;
  sigemptyset(&on.sa_mask);
  sigaction(SIGINT, &on, &old_int);
  sigaction(SIGTERM, &on, &old_term);
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {  // none of the run can go on: stop the ranks already started
      for (const auto& [p, rank] : running) kill(p, SIGKILL);
      for (const auto& [p, rank] : running) waitpid(p, nullptr, 0);
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      throw Error("could not start rank " + std::to_string(r) + " of " + std::to_string(nproc));
    }
    if (pid == 0) {
      // Its own process group: a Ctrl-C at the terminal reaches this launcher
      // alone, which passes it on once, so a rank never sees it twice.
      setpgid(0, 0);
      sigaction(SIGINT, &old_int, nullptr);
      sigaction(SIGTERM, &old_term, nullptr);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(nproc).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", port.c_str(), 1);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv("/proc/self/exe", args.data());
      std::fprintf(stderr, "tame: error: could not start rank %d\n", r);
      _exit(127);
    }
    running[pid] = r;
  }
  Clock::time_point failed_at{};
  bool failed = false, killed = false;
  while (!running.empty()) {
    if (const int sig = g_pending_signal) {
      g_pending_signal = 0;
      for (const auto& [pid, r] : running) kill(pid, sig);
    }
    int status = 0;
    const pid_t pid = waitpid(-1, &status, WNOHANG);
    if (pid > 0 && running.count(pid)) {
      const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      codes[static_cast<size_t>(running[pid])] = code;
      running.erase(pid);
      if (code != 0 && !failed) {
        failed = true;
        failed_at = Clock::now();
      }
      continue;
    }
    if (failed && !killed &&
        std::chrono::duration<double>(Clock::now() - failed_at).count() > grace_s) {
      for (const auto& [p, r] : running) kill(p, SIGKILL);
      killed = true;  // then reap them
    }
    std::this_thread::sleep_for(milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (codes[0] != 0) return codes[0];
  for (int c : codes)
    if (c != 0) return c;
  return 0;
}

}  // namespace tame
