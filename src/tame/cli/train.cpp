// tame train --model NAME --data DATASET --out RUN_DIR [...]
#include <atomic>
#include <csignal>
#include <cstdio>
#include <exception>
#include <memory>
#include <thread>

#include "tame/cli/cli.h"
#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/data_parallel.h"
#include "tame/train/trainer.h"

namespace tame::cli {

namespace {

std::atomic<int> g_interrupt{0};

void on_signal(int sig) {
  g_interrupt = sig;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

// SIGINT and SIGTERM ask the loop to stop with a checkpoint while it runs.
TrainStatus train_with_signals(const TrainOptions& opt, bool resume) {
  g_interrupt = 0;
  auto old_int = std::signal(SIGINT, on_signal);
  auto old_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(old_int) i, t;
    ~Restore() {
      std::signal(SIGINT, i);
      std::signal(SIGTERM, t);
    }
  } restore{old_int, old_term};
  TrainOptions o = opt;
  o.interrupt = &g_interrupt;
  return train(o, resume);
}

struct TrainArgs {
  std::string model, data, out;
  RunConfig cfg;  // the training settings, bound to their options
  int64_t log_every = 50, max_steps = 0;
  int threads = 0;
  int nproc = 1;
  double rank_timeout = 300;
  bool resume = false, quiet = false, fixed_binarization = false;
  std::vector<std::string> set;
  int64_t k = 1;
  double beta = 1.0;
  // Options that define the run: they cannot change on --resume.
  std::vector<CLI::Option*> fixed;
  CLI::Option *o_model, *o_data, *o_epochs, *o_time, *o_eval, *o_dev, *o_k, *o_beta, *o_prec;
};

// The run's config on --resume: the stored one, with the options that may change.
RunConfig resumed_config(const TrainArgs& a) {
  RunConfig cfg = read_run_config(a.out);
  if (a.o_model->count() && a.model != cfg.model)
    throw Error("--model " + a.model + " does not match the run's model " + cfg.model);
  if (a.o_data->count() && a.data != cfg.data)
    throw Error("--data " + a.data + " does not match the run's data " + cfg.data);
  for (auto* opt : a.fixed)
    if (opt->count())
      throw Error(opt->get_name() + " cannot change on --resume (it would not be the same run)");
  if (a.o_epochs->count()) cfg.epochs = a.cfg.epochs;
  if (a.o_time->count()) cfg.time_limit = a.cfg.time_limit;
  if (a.o_eval->count()) cfg.eval_limit = a.cfg.eval_limit;
  if (a.o_dev->count()) cfg.device = a.cfg.device;
  if (a.o_prec->count()) cfg.precision = a.cfg.precision;
  return cfg;
}

// A new run's config, checked against its data and model before anything is written.
RunConfig new_config(const TrainArgs& a) {
  if (a.model.empty() || a.data.empty())
    throw Error("train needs --model and --data (or --resume)");
  // A run dir with a checkpoint is never overwritten; one whose first attempt
  // died before saving anything starts over.
  if (file_exists(checkpoint_path(a.out)))
    throw Error(a.out + " already holds a run; use --resume to continue it, or another --out");
  RunConfig cfg = a.cfg;
  if (cfg.epochs < 1 || cfg.batch_size < 1 || cfg.lr <= 0 || cfg.time_limit < 0 || cfg.clip < 0 ||
      cfg.crop < 0 || cfg.crops_per_image < 1)
    throw Error(
        "--epochs, --batch-size and --crops-per-image must be >= 1, --lr > 0, --time-limit, "
        "--clip and --crop >= 0");
  if (cfg.crops_per_image != 1 && cfg.crop == 0) throw Error("--crops-per-image needs --crop S");
  if (!(cfg.ema >= 0 && cfg.ema < 1))
    throw Error("--ema must be in [0, 1), got " + std::to_string(cfg.ema));
  nlohmann::json overrides = nlohmann::json::object();
  for (const auto& kv : a.set) {
    auto [k, v] = parse_hparam(kv);
    overrides[k] = v;
  }
  if (a.o_k->count()) overrides["k"] = a.k;
  if (a.o_beta->count()) overrides["beta"] = a.beta;
  cfg.model = a.model;
  cfg.hparams = resolve_hparams(a.model, overrides);
  cfg.data = a.data;
  parse_device(cfg.device);
  // Data whose first channels are a condition trains a conditional model on them.
  if (const int64_t given = run_data_given(cfg.data); given > 0) {
    if (!cfg.hparams.contains("given"))
      throw Error(cfg.data + " gives its first " + std::to_string(given) +
                  " channel(s) as a condition, and " + a.model +
                  " is not a conditional model (gated-pixelcnn is)");
    if (overrides.contains("given") && overrides["given"] != given)
      throw Error(cfg.data + " gives " + std::to_string(given) +
                  " channel(s), not given=" + overrides["given"].dump());
    cfg.hparams["given"] = given;
  }
  // Read the data once up front: a wrong dataset fails before the run dir exists.
  Dataset probe = load_run_data(cfg.data, "test");
  cfg.shape = probe.shape();
  if (cfg.crop > 0) cfg.shape.height = cfg.shape.width = cfg.crop;
  cfg.levels = probe.levels;
  if (a.fixed_binarization && cfg.dynamic_binarization)
    throw Error("--fixed-binarization and --dynamic-binarization contradict each other");
  // Binarized sets train on a fresh draw for every batch unless asked not to,
  // so that a model cannot learn one draw; the test split stays one fixed draw.
  if (probe.source.defined() && !a.fixed_binarization) cfg.dynamic_binarization = true;
  check_run_data(cfg, probe);
  build_model(cfg);  // rejects bad hyper-parameters before anything is written
  return cfg;
}

// Makes the run directory (a new run) or checks the resumed one: the config
// the run trains with.
RunConfig prepare_run(const TrainArgs& a, int world_size) {
  RunConfig cfg = a.resume ? resumed_config(a) : new_config(a);
  if (cfg.batch_size < world_size)
    throw Error("--batch-size " + std::to_string(cfg.batch_size) + " is smaller than the " +
                std::to_string(world_size) + " ranks of the run");
  if (!a.resume) {
    make_directories(a.out);
    write_file_atomic(metrics_path(a.out), "");
  }
  write_run_config(a.out, cfg);
  return cfg;
}

void run_train(const TrainArgs& a) {
  const DistributedEnv env = distributed_env();
  if (env.world_size == 1 && a.nproc > 1) {  // start the ranks, then wait for them
    g_exit_code = run_local_ranks(a.nproc, g_argv, a.rank_timeout + 10);
    return;
  }
  std::unique_ptr<RankGroup> ranks;
  if (env.world_size > 1) ranks = connect_ranks(env, a.rank_timeout);
  // Rank 0 alone prepares the run directory; the others learn whether it
  // could (rank 0 says why, once) and then read its config.
  RunConfig cfg;
  std::exception_ptr failure;
  if (!ranks || ranks->rank() == 0) {
    try {
      cfg = prepare_run(a, env.world_size);
    } catch (...) {
      if (!ranks) throw;
      failure = std::current_exception();
    }
  }
  if (ranks) {
    if (ranks->max(failure ? 1 : 0) != 0) {
      if (failure) std::rethrow_exception(failure);
      g_exit_code = 1;
      return;
    }
    if (ranks->rank() != 0) cfg = read_run_config(a.out);
  }
  TrainOptions opt;
  opt.run_dir = a.out;
  opt.threads = a.threads;
  if (opt.threads == 0 && env.local_world_size > 1)  // the machine's threads, shared
    opt.threads =
        std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / env.local_world_size);
  opt.ranks = ranks.get();
  opt.log_every = std::max<int64_t>(1, a.log_every);
  opt.quiet = a.quiet;
  opt.max_steps = std::max<int64_t>(0, a.max_steps);
  TrainStatus status;
  try {
    status = train_with_signals(opt, a.resume);
  } catch (const Error& e) {
    // Every rank runs the same checks; the others name themselves, so that an
    // error only one machine sees says where it happened.
    const std::string what = e.what();
    if (!ranks || ranks->rank() == 0 || what.rfind("rank ", 0) == 0) throw;
    throw Error("rank " + std::to_string(ranks->rank()) + " of " + std::to_string(ranks->size()) +
                ": " + what);
  }
  switch (status) {
    case TrainStatus::kDone:
    case TrainStatus::kTimeLimit:
    case TrainStatus::kStepLimit:
      if (!ranks || ranks->rank() == 0)
        std::printf("trained %s; run directory: %s\n", cfg.model.c_str(), a.out.c_str());
      g_exit_code = 0;
      break;
    case TrainStatus::kInterrupted:
      g_exit_code = 130;
      break;
    case TrainStatus::kDiverged:
      g_exit_code = 1;
      break;
  }
}

void add_train_options(CLI::App* c, TrainArgs& a) {
  a.o_model = c->add_option("--model", a.model, "model name (see `tame models`)");
  a.o_data = c->add_option("--data", a.data, "dataset (see `tame data`)");
  c->add_option("--out", a.out, "run directory")->required();
  a.o_epochs =
      c->add_option("--epochs", a.cfg.epochs, "epochs to train (the cosine schedule spans them)")
          ->capture_default_str();
  a.o_time = c->add_option("--time-limit", a.cfg.time_limit,
                           "seconds of training in all, across resumes (0 = none); the schedule "
                           "reaches zero by then");
  a.fixed = {
      c->add_option("--batch-size", a.cfg.batch_size, "images per step")->capture_default_str(),
      c->add_option("--lr", a.cfg.lr, "peak learning rate of the model's optimizers")
          ->capture_default_str(),
      c->add_option("--schedule", a.cfg.schedule,
                    "learning-rate schedule after warm-up: cosine or constant")
          ->check(CLI::IsMember({"cosine", "constant"}))
          ->capture_default_str(),
      c->add_option("--warmup", a.cfg.warmup, "steps of linear warm-up")->capture_default_str(),
      c->add_option("--clip", a.cfg.clip, "gradient-norm clipping (0 = off)")
          ->capture_default_str(),
      c->add_option("--seed", a.cfg.seed, "seed for initialisation and data order")
          ->capture_default_str(),
      c->add_option("--set", a.set, "model hyper-parameter KEY=VALUE (repeatable)"),
      a.o_k = c->add_option(
          "--k", a.k, "importance samples of a latent model's training objective (--set k=K)"),
      a.o_beta =
          c->add_option("--beta", a.beta, "weight of a latent model's KL term (--set beta=B)"),
      c->add_flag("--dynamic-binarization", a.cfg.dynamic_binarization,
                  "binarized data (*-bin): draw every training batch's pixels afresh from the "
                  "8-bit images (the default for binarized sets); the test split stays fixed"),
      c->add_flag("--fixed-binarization", a.fixed_binarization,
                  "binarized data: train on the one fixed draw of the training split instead"),
      c->add_option("--ema", a.cfg.ema,
                    "keep a moving average of the weights with this decay (e.g. 0.999) and "
                    "evaluate, sample and compress with it (0 = off; the decay warms up as "
                    "min(D, (1+t)/(10+t)) at step t)")
          ->capture_default_str(),
      c->add_option("--crop", a.cfg.crop,
                    "train on random SxS crops, a function of (seed, epoch, image); evaluate on "
                    "whole images for fully convolutional models, central crops otherwise"),
      c->add_option("--crops-per-image", a.cfg.crops_per_image,
                    "with --crop: an epoch takes K crops of every training image, each at an "
                    "offset of its own (a few large images make epochs of many patches)")
          ->capture_default_str(),
      c->add_flag("--flip", a.cfg.flip,
                  "mirror each training image (or crop) left-right with probability 1/2, a "
                  "function of (seed, epoch, item): augmentation for data without a left and a "
                  "right, such as photographs"),
  };
  c->add_option("--max-steps", a.max_steps,
                "stop after N steps of this call, with a checkpoint (continue with --resume)");
  c->add_option("--threads", a.threads,
                "CPU threads (0 = all; with several ranks on a machine, an equal share each)")
      ->capture_default_str();
  c->add_option("--nproc", a.nproc,
                "train as N processes on this machine, data-parallel through c10d (Gloo); for "
                "several machines start each rank as torchrun does (RANK, WORLD_SIZE, "
                "MASTER_ADDR, MASTER_PORT; see README)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--rank-timeout", a.rank_timeout,
                "seconds a rank waits for the others in any collective before the whole run "
                "stops with an error (a rank that dies stops the others at once)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  a.o_dev = c->add_option("--device", a.cfg.device, "cpu or cuda")->capture_default_str();
  a.o_prec = c->add_option("--precision", a.cfg.precision,
                           "the training forward's compute type: fp32, or bf16 (autocast: "
                           "convolutions and matrix products in bfloat16, weights, gradients "
                           "and evaluation in fp32; fast where the CPU has AVX-512 BF16 or "
                           "AMX); may change on --resume")
                 ->check(CLI::IsMember({"fp32", "bf16"}))
                 ->capture_default_str();
  a.o_eval = c->add_option("--eval-limit", a.cfg.eval_limit,
                           "test images evaluated after each epoch (0 = all)");
  c->add_option("--log-every", a.log_every, "steps between metrics.jsonl lines")
      ->capture_default_str();
  c->add_flag("--resume", a.resume, "continue RUN_DIR from its last checkpoint");
  c->add_flag("--quiet", a.quiet, "no progress output");
}

}  // namespace

void add_train(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* c = app.add_subcommand("train",
                               "train a model; checkpoints, metrics and evaluations go to RUN_DIR");
  add_train_options(c, *a);
  c->callback([a] { run_train(*a); });
}

}  // namespace tame::cli
