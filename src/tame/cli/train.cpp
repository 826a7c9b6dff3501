// tame train --model NAME --data DATASET --out RUN_DIR [...]
#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/registry.h"
#include "tame/train/trainer.h"

namespace tame::cli {

void add_train(CLI::App& app) {
  struct Args {
    std::string model, data, out, device = "cpu";
    int64_t epochs = 10, batch_size = 64, warmup = 200, eval_limit = 0, log_every = 50, max_steps = 0;
    std::string schedule = "cosine";
    double time_limit = 0, lr = 1e-3, clip = 1.0;
    uint64_t seed = 0;
    int threads = 0;
    bool resume = false, quiet = false, dynamic_binarization = false;
    std::vector<std::string> set;
    int64_t k = 1;
    double beta = 1.0;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("train", "train a model; checkpoints, metrics and evaluations go to RUN_DIR");
  auto* o_model = c->add_option("--model", a->model, "model name (see `tame models`)");
  auto* o_data = c->add_option("--data", a->data, "dataset (see `tame data`)");
  c->add_option("--out", a->out, "run directory")->required();
  auto* o_epochs = c->add_option("--epochs", a->epochs, "epochs to train (the cosine schedule spans them)")->capture_default_str();
  auto* o_time = c->add_option("--time-limit", a->time_limit, "seconds of training in all, across resumes (0 = none); the schedule reaches zero by then");
  auto* o_bs = c->add_option("--batch-size", a->batch_size, "images per step")->capture_default_str();
  auto* o_lr = c->add_option("--lr", a->lr, "peak Adam learning rate")->capture_default_str();
  auto* o_sched = c->add_option("--schedule", a->schedule, "learning-rate schedule after warm-up: cosine or constant")
                      ->check(CLI::IsMember({"cosine", "constant"}))
                      ->capture_default_str();
  c->add_option("--max-steps", a->max_steps, "stop after N steps of this call, with a checkpoint (continue with --resume)");
  auto* o_warm = c->add_option("--warmup", a->warmup, "steps of linear warm-up")->capture_default_str();
  auto* o_clip = c->add_option("--clip", a->clip, "gradient-norm clipping (0 = off)")->capture_default_str();
  auto* o_seed = c->add_option("--seed", a->seed, "seed for initialisation and data order")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)")->capture_default_str();
  auto* o_dev = c->add_option("--device", a->device, "cpu or cuda")->capture_default_str();
  auto* o_eval = c->add_option("--eval-limit", a->eval_limit, "test images evaluated after each epoch (0 = all)");
  c->add_option("--log-every", a->log_every, "steps between metrics.jsonl lines")->capture_default_str();
  auto* o_set = c->add_option("--set", a->set, "model hyper-parameter KEY=VALUE (repeatable)");
  auto* o_k = c->add_option("--k", a->k, "importance samples of a latent model's training objective (--set k=K)");
  auto* o_beta = c->add_option("--beta", a->beta, "weight of a latent model's KL term (--set beta=B)");
  auto* o_dyn = c->add_flag("--dynamic-binarization", a->dynamic_binarization,
                            "binarized data (*-bin): draw every training batch's pixels afresh from the "
                            "8-bit images; the test split stays fixed");
  c->add_flag("--resume", a->resume, "continue RUN_DIR from its last checkpoint");
  c->add_flag("--quiet", a->quiet, "no progress output");
  c->callback([=] {
    RunConfig cfg;
    if (a->resume) {
      cfg = read_run_config(a->out);
      if (o_model->count() && a->model != cfg.model)
        throw Error("--model " + a->model + " does not match the run's model " + cfg.model);
      if (o_data->count() && a->data != cfg.data)
        throw Error("--data " + a->data + " does not match the run's data " + cfg.data);
      for (auto* opt : {o_bs, o_lr, o_sched, o_warm, o_clip, o_seed, o_set, o_k, o_beta, o_dyn})
        if (opt->count()) throw Error(opt->get_name() + " cannot change on --resume (it would not be the same run)");
      if (o_epochs->count()) cfg.epochs = a->epochs;
      if (o_time->count()) cfg.time_limit = a->time_limit;
      if (o_eval->count()) cfg.eval_limit = a->eval_limit;
      if (o_dev->count()) cfg.device = a->device;
    } else {
      if (a->model.empty() || a->data.empty()) throw Error("train needs --model and --data (or --resume)");
      // A run dir with a checkpoint is never overwritten; one whose first attempt
      // died before saving anything starts over.
      if (file_exists(checkpoint_path(a->out)))
        throw Error(a->out + " already holds a run; use --resume to continue it, or another --out");
      nlohmann::json overrides = nlohmann::json::object();
      for (const auto& kv : a->set) {
        auto [k, v] = parse_hparam(kv);
        overrides[k] = v;
      }
      if (o_k->count()) overrides["k"] = a->k;
      if (o_beta->count()) overrides["beta"] = a->beta;
      cfg.model = a->model;
      cfg.hparams = resolve_hparams(a->model, overrides);
      cfg.data = a->data;
      if (a->epochs < 1 || a->batch_size < 1 || a->lr <= 0 || a->time_limit < 0 || a->clip < 0)
        throw Error("--epochs and --batch-size must be >= 1, --lr > 0, --time-limit and --clip >= 0");
      cfg.epochs = a->epochs;
      cfg.batch_size = a->batch_size;
      cfg.lr = a->lr;
      cfg.warmup = a->warmup;
      cfg.schedule = a->schedule;
      cfg.clip = a->clip;
      cfg.seed = a->seed;
      cfg.time_limit = a->time_limit;
      cfg.eval_limit = a->eval_limit;
      cfg.dynamic_binarization = a->dynamic_binarization;
      cfg.device = a->device;
      parse_device(cfg.device);
      // Read the data once up front: a wrong dataset fails before the run dir exists.
      Dataset probe = load_dataset(cfg.data, "test");
      cfg.shape = probe.shape();
      cfg.levels = probe.levels;
      check_run_data(cfg, probe);
      build_model(cfg);  // rejects bad hyper-parameters before anything is written
      make_directories(a->out);
      write_file_atomic(metrics_path(a->out), "");
    }
    write_run_config(a->out, cfg);
    TrainOptions opt;
    opt.run_dir = a->out;
    opt.threads = a->threads;
    opt.log_every = std::max<int64_t>(1, a->log_every);
    opt.quiet = a->quiet;
    opt.max_steps = std::max<int64_t>(0, a->max_steps);
    switch (train(opt, a->resume)) {
      case TrainStatus::kDone:
      case TrainStatus::kTimeLimit:
      case TrainStatus::kStepLimit:
        std::printf("trained %s; run directory: %s\n", cfg.model.c_str(), a->out.c_str());
        g_exit_code = 0;
        break;
      case TrainStatus::kInterrupted:
        g_exit_code = 130;
        break;
      case TrainStatus::kDiverged:
        g_exit_code = 1;
        break;
    }
  });
}

}  // namespace tame::cli
