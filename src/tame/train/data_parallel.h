// Data-parallel training over PyTorch's distributed engine, c10d.
//
// A run of W processes is started like torchrun starts one: every process
// finds its place in the environment (RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT); rank 0 serves c10d's TCPStore
// at MASTER_ADDR:MASTER_PORT, and the ranks form a ProcessGroupGloo over it
// (TCP; GLOO_SOCKET_IFNAME picks the network interface, as in PyTorch). The
// RankGroup it gives (ranks.h) is all the training loop sees. Nothing else
// carries tensors between processes.
//
// Every collective waits at most the run's timeout (--rank-timeout): a rank
// that dies makes the others fail at once (its sockets close), one that hangs
// makes them fail when the timeout runs out, each with one error line.
//
// `tame train --nproc N` is the one-machine convenience: it starts N copies of
// itself with that environment (run_local_ranks) and waits for them.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tame/ranks.h"

namespace tame {

struct DistributedEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};

/// This process's place, from torchrun's environment variables; one process
/// (world_size 1) when WORLD_SIZE is unset. Throws an Error naming the
/// variable when one is malformed or inconsistent (RANK >= WORLD_SIZE, say).
DistributedEnv distributed_env();

/// Connects this rank to the others of env's run, waiting up to timeout_s for
/// all of them (and for rank 0's store); throws an Error when they do not come.
std::unique_ptr<RankGroup> connect_ranks(const DistributedEnv& env, double timeout_s);

/// A TCP port on 127.0.0.1 that was free a moment ago (--nproc's MASTER_PORT).
int free_local_port();

/// Runs `argv` (argv[0] ignored: this program is started again) as ranks
/// 0..nproc-1 of one run on this machine, with MASTER_ADDR 127.0.0.1 and a
/// free MASTER_PORT, each in a process group of its own. SIGINT and SIGTERM
/// are passed on to every rank. When one rank fails, the others get grace_s to
/// stop on their own and are then killed. Returns 0 when every rank succeeded,
/// else rank 0's exit code if it failed, else the first failing rank's
/// (128 + the signal for a rank killed by one).
int run_local_ranks(int nproc, const std::vector<std::string>& argv, double grace_s);

}  // namespace tame
