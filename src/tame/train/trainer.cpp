#include "tame/train/trainer.h"

#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>

#include "tame/data/datasets.h"
#include "tame/dist/likelihood.h"
#include "tame/eval/evaluate.h"
#include "tame/io/file.h"
#include "tame/train/checkpoint.h"
#include "tame/train/progress.h"

namespace tame {
namespace {

std::atomic<int> g_signal{0};

void on_signal(int sig) {
  g_signal = sig;
  std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

void append_metrics(const std::string& run_dir, const nlohmann::json& j) {
  std::ofstream out(metrics_path(run_dir), std::ios::app);
  out << j.dump() << "\n";
}

}  // namespace

double learning_rate(const RunConfig& cfg, int64_t step, int64_t total_steps, double elapsed) {
  double warm = cfg.warmup > 0 ? std::min(1.0, double(step + 1) / double(cfg.warmup)) : 1.0;
  if (cfg.schedule == "constant") return cfg.lr * warm;
  double p = total_steps > 0 ? double(step) / double(total_steps) : 0.0;
  if (cfg.time_limit > 0) p = std::max(p, elapsed / cfg.time_limit);
  p = std::min(1.0, std::max(0.0, p));
  return cfg.lr * warm * 0.5 * (1.0 + std::cos(M_PI * p));
}

void check_run_data(const RunConfig& cfg, const Dataset& data) {
  if (data.shape() != cfg.shape || data.levels != cfg.levels)
    throw Error(cfg.data + " holds " + data.shape().str() + " images with " + std::to_string(data.levels) +
                " levels, the run expects " + cfg.shape.str() + " with " + std::to_string(cfg.levels));
  if (cfg.dynamic_binarization && !data.source.defined())
    throw Error("--dynamic-binarization needs a binarized dataset (fashion-mnist-bin, mnist-bin), got " + cfg.data);
}

TrainStatus train(const TrainOptions& opt, bool resume) {
  using clock = std::chrono::steady_clock;
  const std::string& dir = opt.run_dir;
  RunConfig cfg = read_run_config(dir);
  set_threads(opt.threads);
  torch::Device device = parse_device(cfg.device);

  Dataset train_set = load_dataset(cfg.data, "train");
  Dataset test_set = load_dataset(cfg.data, "test");
  check_run_data(cfg, train_set);
  if (train_set.size() < cfg.batch_size)
    throw Error("--batch-size " + std::to_string(cfg.batch_size) + " is larger than the " +
                std::to_string(train_set.size()) + " training images");
  torch::Tensor test_images = test_set.images;
  if (cfg.eval_limit > 0 && cfg.eval_limit < test_images.size(0)) test_images = test_images.slice(0, 0, cfg.eval_limit);

  torch::manual_seed(cfg.seed);
  auto model = build_model(cfg);
  model->to(device);
  model->train();
  torch::optim::Adam optimizer(model->parameters(), torch::optim::AdamOptions(cfg.lr));

  TrainState st;
  std::string ckpt = checkpoint_path(dir);
  if (resume) {
    if (!file_exists(ckpt)) throw Error(dir + ": nothing to resume (no checkpoint.tame)");
    st = load_checkpoint(ckpt, cfg, *model, &optimizer);
    std::fprintf(stderr, "resuming %s at epoch %lld, step %lld\n", dir.c_str(), (long long)st.epoch + 1,
                 (long long)st.step);
  }

  const int64_t n = train_set.size(), B = cfg.batch_size, steps_per_epoch = n / B;
  const int64_t total_steps = steps_per_epoch * cfg.epochs;
  const int64_t D = cfg.shape.dims();
  if (cfg.time_limit > 0 && st.elapsed >= cfg.time_limit)
    throw Error(dir + ": the run already used its --time-limit of " + std::to_string((long long)cfg.time_limit) +
                " s; resume with a larger --time-limit");
  if (st.epoch >= cfg.epochs)
    throw Error(dir + ": the run already finished its " + std::to_string((long long)cfg.epochs) +
                " epochs; resume with a larger --epochs");

  g_signal = 0;
  auto old_int = std::signal(SIGINT, on_signal);
  auto old_term = std::signal(SIGTERM, on_signal);
  struct Restore {
    decltype(old_int) i, t;
    ~Restore() {
      std::signal(SIGINT, i);
      std::signal(SIGTERM, t);
    }
  } restore{old_int, old_term};

  const int64_t first_step = st.step;
  Progress progress(30.0, opt.quiet);
  const auto session_start = clock::now();
  const double elapsed_before = st.elapsed;
  auto elapsed_now = [&] { return elapsed_before + std::chrono::duration<double>(clock::now() - session_start).count(); };

  int64_t last_eval_step = -1;
  auto run_eval = [&](const char* why) {
    last_eval_step = st.step;
    progress.finish();
    Progress eval_progress(30.0, opt.quiet);
    auto r = evaluate(*model, test_images, 32, 1, [&](int64_t done, int64_t total) {
      char buf[128];
      std::snprintf(buf, sizeof buf, "eval  %lld/%lld test images", (long long)done, (long long)total);
      eval_progress.update(buf);
    });
    eval_progress.finish();
    nlohmann::json line = {{"type", "eval"}, {"split", "test"}, {"step", st.step}, {"epoch", st.epoch},
                           {"images", r.images}, {"nll_nats", r.nll_nats}, {"bpd", r.bpd},
                           {"bound", bound_name(r.bound)}, {"time", elapsed_now()}, {"why", why}};
    line.update(model->diagnostics(test_images));
    append_metrics(dir, line);
    if (!opt.quiet)
      std::fprintf(stderr, "test %.4f bits/dim (%s, %lld images) after %.2f epochs, step %lld\n", r.bpd,
                   bound_name(r.bound), (long long)r.images, double(st.step) / double(steps_per_epoch),
                   (long long)st.step);
    return r;
  };

  auto params = model->parameters();
  double window_loss = 0;
  nlohmann::json window_terms = nlohmann::json::object();  // the model's step_metrics(), summed
  int64_t window_steps = 0, window_images = 0;
  auto window_start = clock::now();
  double last_rate = 0;
  TrainStatus status = TrainStatus::kDone;

  while (st.epoch < cfg.epochs) {
    auto perm = epoch_permutation(n, cfg.seed, st.epoch);
    auto perm_t = torch::from_blob(perm.data(), {n}, torch::kLong).clone();
    while (st.batch_in_epoch < steps_per_epoch) {
      if (g_signal != 0) {
        status = TrainStatus::kInterrupted;
        break;
      }
      if (cfg.time_limit > 0 && elapsed_now() >= cfg.time_limit) {
        status = TrainStatus::kTimeLimit;
        break;
      }
      if (opt.max_steps > 0 && st.step - first_step >= opt.max_steps) {
        status = TrainStatus::kStepLimit;
        break;
      }
      auto idx = perm_t.slice(0, st.batch_in_epoch * B, (st.batch_in_epoch + 1) * B);
      // Dynamic binarization draws keyed by the step: a resumed run sees the same pixels.
      auto x = cfg.dynamic_binarization ? binarize(train_set.source.index_select(0, idx), 2 + st.step)
                                        : train_set.images.index_select(0, idx);
      x = x.to(device);
      double lr = learning_rate(cfg, st.step, total_steps, elapsed_now());
      for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      optimizer.zero_grad();
      auto loss = model->loss(x) / static_cast<double>(D);  // nats per dimension
      double loss_v = loss.item<double>();
      if (!std::isfinite(loss_v)) {
        progress.finish();
        std::fprintf(stderr, "tame: error: the loss became %s at step %lld; stopping. The last good checkpoint "
                             "is kept (lower --lr or --clip and --resume).\n",
                     std::isnan(loss_v) ? "NaN" : "infinite", (long long)st.step);
        append_metrics(dir, {{"type", "diverged"}, {"step", st.step}});
        return TrainStatus::kDiverged;
      }
      loss.backward();
      double grad_norm = cfg.clip > 0 ? torch::nn::utils::clip_grad_norm_(params, cfg.clip) : 0.0;
      optimizer.step();
      ++st.step;
      ++st.batch_in_epoch;
      window_loss += loss_v;
      const nlohmann::json terms = model->step_metrics();
      for (const auto& [key, value] : terms.items())
        if (value.is_number()) window_terms[key] = window_terms.value(key, 0.0) + value.get<double>();
      ++window_steps;
      window_images += B;

      double el = elapsed_now();
      double since = std::chrono::duration<double>(clock::now() - window_start).count();
      double rate = since > 0 ? window_images / since : 0;
      if (rate > 0) last_rate = rate;
      double bpd = window_loss / window_steps / std::log(2.0);
      // ETA: steps left at the current rate, capped by the time limit.
      double eta = last_rate > 0 ? double(total_steps - st.step) * B / last_rate : 0;
      if (cfg.time_limit > 0) eta = std::min(eta, cfg.time_limit - el);
      char line[256];
      std::snprintf(line, sizeof line, "epoch %lld/%lld  step %lld  %.0f img/s  train %.4f bits/dim  lr %.2e  ETA %s",
                    (long long)st.epoch + 1, (long long)cfg.epochs, (long long)st.step, last_rate, bpd, lr,
                    format_duration(eta).c_str());
      progress.update(line);
      if (st.step % opt.log_every == 0) {
        nlohmann::json line = {{"type", "train"}, {"step", st.step}, {"epoch", st.epoch}, {"bpd", bpd},
                               {"lr", lr}, {"grad_norm", grad_norm}, {"images_per_s", rate}, {"time", el}};
        for (const auto& [key, sum] : window_terms.items()) line[key] = sum.get<double>() / window_steps;
        append_metrics(dir, line);
        window_terms = nlohmann::json::object();
        window_loss = 0;
        window_steps = 0;
        window_images = 0;
        window_start = clock::now();
      }
    }
    if (status != TrainStatus::kDone) break;
    st.epoch += 1;
    st.batch_in_epoch = 0;
    st.elapsed = elapsed_now();
    save_checkpoint(ckpt, cfg, *model, &optimizer, st);
    run_eval("epoch");
  }
  progress.finish();
  st.elapsed = elapsed_now();
  if (status != TrainStatus::kDone) {
    save_checkpoint(ckpt, cfg, *model, &optimizer, st);
    if (status == TrainStatus::kTimeLimit) {
      std::fprintf(stderr, "time limit reached after %s\n", format_duration(st.elapsed).c_str());
      if (last_eval_step != st.step) run_eval("time-limit");
    } else if (status == TrainStatus::kStepLimit) {
      if (!opt.quiet)
        std::fprintf(stderr, "stopped after %lld steps; continue with: tame train --out %s --resume\n",
                     (long long)opt.max_steps, dir.c_str());
    } else {
      std::fprintf(stderr, "interrupted; checkpoint saved in %s (continue with: tame train --out %s --resume)\n",
                   dir.c_str(), dir.c_str());
    }
  }
  return status;
}

}  // namespace tame
