#include "tame/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>

#include "tame/dist/likelihood.h"
#include "tame/eval/evaluate.h"
#include "tame/io/file.h"
#include "tame/train/batches.h"
#include "tame/train/checkpoint.h"
#include "tame/train/progress.h"

namespace tame {

double learning_rate(const RunConfig& cfg, int64_t step, int64_t total_steps, double elapsed) {
  return learning_rate(cfg, step, total_steps, elapsed, cfg.lr);
}

double learning_rate(const RunConfig& cfg, int64_t step, int64_t total_steps, double elapsed,
                     double base_lr) {
  double warm = cfg.warmup > 0 ? std::min(1.0, double(step + 1) / double(cfg.warmup)) : 1.0;
  if (cfg.schedule == "constant") return base_lr * warm;
  double p = total_steps > 0 ? double(step) / double(total_steps) : 0.0;
  if (cfg.time_limit > 0) p = std::max(p, elapsed / cfg.time_limit);
  p = std::min(1.0, std::max(0.0, p));
  return base_lr * warm * 0.5 * (1.0 + std::cos(M_PI * p));
}

void check_run_data(const RunConfig& cfg, const Dataset& data) {
  ImageShape shape = data.shape();
  if (cfg.crop > 0) {
    if (shape.height < cfg.crop || shape.width < cfg.crop)
      throw Error("--crop " + std::to_string(cfg.crop) + " does not fit " + cfg.data + "'s " +
                  shape.str() + " images");
    shape.height = shape.width = cfg.crop;
  }
  if (shape != cfg.shape || data.levels != cfg.levels)
    throw Error(cfg.data + " holds " + shape.str() + " images with " + std::to_string(data.levels) +
                " levels, the run expects " + cfg.shape.str() + " with " +
                std::to_string(cfg.levels));
  if (cfg.dynamic_binarization && !data.source.defined())
    throw Error(
        "--dynamic-binarization needs a binarized dataset (fashion-mnist-bin, mnist-bin), got " +
        cfg.data);
}

namespace {

using Clock = std::chrono::steady_clock;

// Training-step statistics between two metrics lines.
struct Window {
  double loss = 0;
  nlohmann::json terms = nlohmann::json::object();  // the model's metrics, summed
  int64_t steps = 0, images = 0;
  Clock::time_point start = Clock::now();
  CollectiveStats comm;  // the rank group's totals when the window opened

  void add(const StepResult& r, int64_t batch) {
    loss += r.loss;
    for (const auto& [key, value] : r.metrics.items())
      if (value.is_number()) terms[key] = terms.value(key, 0.0) + value.get<double>();
    ++steps;
    images += batch;
  }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start).count(); }
};

class Loop {
 public:
  Loop(const TrainOptions& opt, bool resume);
  TrainStatus run();

 private:
  bool writer() const { return !opt_.ranks || opt_.ranks->rank() == 0; }
  double elapsed() const {
    return elapsed_before_ + std::chrono::duration<double>(Clock::now() - session_start_).count();
  }
  void load_data();
  void build_model(bool resume);
  void check_plan() const;
  StopReason stop_reason() const;
  bool step();  // false when the loss was not finite
  void report(const StepResult& r, double lr);
  void evaluate_test(const char* why);
  void save();
  void append_metrics(const nlohmann::json& line) const;
  TrainStatus finish(StopReason why);

  const TrainOptions& opt_;
  const std::string& dir_;
  RunConfig cfg_;
  torch::Device device_;
  torch::ScalarType precision_;  // the forward pass's compute type (--precision), parsed once
  std::unique_ptr<BatchSource> batches_;
  torch::Tensor test_images_;
  std::shared_ptr<ImageModel> model_;
  Optimizers optimizers_;
  std::unique_ptr<WeightAverage> average_;  // --ema: the weights evaluations use
  TrainState st_;
  int64_t first_step_ = 0, total_steps_ = 0, last_eval_step_ = -1;
  Progress progress_;
  Clock::time_point session_start_;
  double elapsed_before_ = 0, last_rate_ = 0;
  Window window_;
};

Loop::Loop(const TrainOptions& opt, bool resume)
    : opt_(opt),
      dir_(opt.run_dir),
      cfg_(read_run_config(opt.run_dir)),
      device_(parse_device(cfg_.device)),
      precision_(parse_precision(cfg_.precision)),
      progress_(30.0, opt.quiet || (opt.ranks && opt.ranks->rank() != 0)) {
  set_threads(opt.threads);
  load_data();
  build_model(resume);
  check_plan();
  first_step_ = st_.step;
  elapsed_before_ = st_.elapsed;
  session_start_ = Clock::now();
  if (opt_.ranks) window_.comm = opt_.ranks->stats();  // the start broadcast is no step's
}

void Loop::load_data() {
  Dataset train_set = load_run_data(cfg_.data, "train");
  check_run_data(cfg_, train_set);
  batches_ =
      std::make_unique<BatchSource>(std::move(train_set), cfg_, opt_.ranks ? opt_.ranks->rank() : 0,
                                    opt_.ranks ? opt_.ranks->size() : 1);
  Dataset test_set = load_run_data(cfg_.data, "test");
  test_images_ = test_set.images;
  if (cfg_.eval_limit > 0 && cfg_.eval_limit < test_images_.size(0))
    test_images_ = test_images_.slice(0, 0, cfg_.eval_limit);
  total_steps_ = batches_->steps_per_epoch() * cfg_.epochs;
}

void Loop::build_model(bool resume) {
  torch::manual_seed(cfg_.seed);
  model_ = tame::build_model(cfg_);
  model_->to(device_);
  model_->train();
  if (opt_.ranks) {  // every rank starts from rank 0's weights (a resume reads them anyway)
    std::vector<torch::Tensor> state = model_->parameters();
    for (const auto& b : model_->buffers()) state.push_back(b);
    opt_.ranks->broadcast_(state);
  }
  optimizers_ = model_->make_optimizers(cfg_.lr);
  if (cfg_.ema > 0) average_ = std::make_unique<WeightAverage>(*model_, cfg_.ema);
  test_images_ = images_to_score(cfg_, *model_, test_images_);
  if (!resume) return;
  const std::string ckpt = checkpoint_path(dir_);
  if (!file_exists(ckpt)) throw Error(dir_ + ": nothing to resume (no checkpoint.tame)");
  st_ = load_checkpoint(ckpt, cfg_, *model_, &optimizers_, average_.get());
  if (writer())
    std::fprintf(stderr, "resuming %s at epoch %lld, step %lld\n", dir_.c_str(),
                 (long long)st_.epoch + 1, (long long)st_.step);
}

void Loop::check_plan() const {
  if (cfg_.time_limit > 0 && st_.elapsed >= cfg_.time_limit)
    throw Error(dir_ + ": the run already used its --time-limit of " +
                std::to_string((long long)cfg_.time_limit) +
                " s; resume with a larger --time-limit");
  if (st_.epoch >= cfg_.epochs)
    throw Error(dir_ + ": the run already finished its " + std::to_string((long long)cfg_.epochs) +
                " epochs; resume with a larger --epochs");
}

StopReason Loop::stop_reason() const {
  StopReason r = StopReason::kNone;
  if (opt_.max_steps > 0 && st_.step - first_step_ >= opt_.max_steps) r = StopReason::kStepLimit;
  if (cfg_.time_limit > 0 && elapsed() >= cfg_.time_limit) r = StopReason::kTimeLimit;
  if (opt_.interrupt && opt_.interrupt->load() != 0) r = StopReason::kInterrupted;
  return opt_.ranks ? static_cast<StopReason>(opt_.ranks->max(static_cast<int>(r))) : r;
}

bool Loop::step() {
  auto x = batches_->batch(st_.epoch, st_.batch_in_epoch, st_.step).to(device_);
  const double now = elapsed();
  const double lr = learning_rate(cfg_, st_.step, total_steps_, now);
  for (auto& o : optimizers_) {
    const double rate = learning_rate(cfg_, st_.step, total_steps_, now, o.base_lr);
    for (auto& g : o.optimizer->param_groups()) g.options().set_lr(rate);
  }
  StepContext ctx;
  ctx.step = st_.step;
  ctx.clip = cfg_.clip;
  ctx.precision = precision_;
  if (opt_.ranks) {
    // The one-process gradient of a batch mean is the shards' gradients
    // weighted by their share of the global batch; so is the loss.
    const double share = static_cast<double>(batches_->shard_end() - batches_->shard_begin()) /
                         static_cast<double>(batches_->global_batch());
    ctx.reduce_gradients = [this, share](const std::vector<torch::Tensor>& params) {
      std::vector<torch::Tensor> grads;
      for (const auto& p : params) grads.push_back(p.grad());  // undefined ones are skipped
      opt_.ranks->reduce_(grads, RankGroup::Op::kSum, share);
    };
    ctx.agree_loss = [this, share](double loss) { return opt_.ranks->sum(loss * share); };
  }
  StepResult r = model_->train_step(x, optimizers_, ctx);
  if (!std::isfinite(r.loss)) {
    progress_.finish();
    if (writer())  // every rank sees the same (agreed) loss; one says so
      std::fprintf(
          stderr,
          "tame: error: the loss became %s at step %lld; stopping. The last good checkpoint "
          "is kept (lower --lr or --clip and --resume).\n",
          std::isnan(r.loss) ? "NaN" : "infinite", (long long)st_.step);
    append_metrics({{"type", "diverged"}, {"step", st_.step}});
    return false;
  }
  if (average_) average_->update(st_.step);
  ++st_.step;
  ++st_.batch_in_epoch;
  window_.add(r, batches_->global_batch());
  report(r, lr);
  return true;
}

void Loop::report(const StepResult& r, double lr) {
  const double since = window_.seconds();
  const double rate = since > 0 ? window_.images / since : 0;
  if (rate > 0) last_rate_ = rate;
  // A likelihood's loss is nats per dimension: shown as bits/dim. Any other
  // loss (a GAN's) is shown as it is.
  const bool scored = model_->has_likelihood();
  const double shown = window_.loss / window_.steps / (scored ? std::log(2.0) : 1.0);
  // ETA: steps left at the current rate, capped by the time limit.
  double eta =
      last_rate_ > 0 ? double(total_steps_ - st_.step) * batches_->global_batch() / last_rate_ : 0;
  if (cfg_.time_limit > 0) eta = std::min(eta, cfg_.time_limit - elapsed());
  char line[256];
  std::snprintf(line, sizeof line,
                "epoch %lld/%lld  step %lld  %.0f img/s  train %.4f %s  lr %.2e  ETA %s",
                (long long)st_.epoch + 1, (long long)cfg_.epochs, (long long)st_.step, last_rate_,
                shown, scored ? "bits/dim" : "loss", lr, format_duration(eta).c_str());
  progress_.update(line);
  if (st_.step % opt_.log_every != 0) return;
  nlohmann::json j = {{"type", "train"},
                      {"step", st_.step},
                      {"epoch", st_.epoch},
                      {scored ? "bpd" : "loss", shown},
                      {"lr", lr},
                      {"grad_norm", r.grad_norm},
                      {"images_per_s", rate},
                      {"time", elapsed()}};
  for (const auto& [key, sum] : window_.terms.items()) j[key] = sum.get<double>() / window_.steps;
  Window next;
  if (opt_.ranks) {  // what the collectives cost this rank per step
    next.comm = opt_.ranks->stats();
    j["ranks"] = opt_.ranks->size();
    j["comm_s_per_step"] = (next.comm.seconds - window_.comm.seconds) / window_.steps;
    j["comm_bytes_per_step"] =
        static_cast<double>(next.comm.bytes - window_.comm.bytes) / window_.steps;
  }
  append_metrics(j);
  window_ = next;
}

void Loop::evaluate_test(const char* why) {
  last_eval_step_ = st_.step;
  progress_.finish();
  Progress eval_progress(30.0, opt_.quiet || !writer());
  WeightAverage::Swapped averaged(average_.get());
  // Rank r of W scores images [r N / W, (r + 1) N / W); the sums are reduced.
  const int64_t N = test_images_.size(0);
  const int64_t W = opt_.ranks ? opt_.ranks->size() : 1, R = opt_.ranks ? opt_.ranks->rank() : 0;
  auto shard = test_images_.slice(0, N * R / W, N * (R + 1) / W);
  EvalResult r;
  r.bound = model_->bound();
  if (shard.size(0) > 0)
    r = evaluate(*model_, shard, 32, 1, [&](int64_t done, int64_t total) {
      eval_progress.update("eval  " + std::to_string(done) + "/" + std::to_string(total) +
                           " test images" + (W > 1 ? " (this rank's share)" : ""));
    });
  eval_progress.finish();
  if (opt_.ranks && r.bound != Bound::kNone) {
    const double total = opt_.ranks->sum(r.nll_nats * static_cast<double>(r.images));
    r.nll_nats = total / static_cast<double>(N);
    r.bpd = bits_per_dim(r.nll_nats, model_->modelled_dims(test_images_));
  }
  r.images = N;
  nlohmann::json line = {{"type", "eval"},     {"split", "test"},    {"step", st_.step},
                         {"epoch", st_.epoch}, {"images", r.images}, {"bound", bound_name(r.bound)},
                         {"time", elapsed()},  {"why", why}};
  if (r.bound != Bound::kNone) {
    line["nll_nats"] = r.nll_nats;
    line["bpd"] = r.bpd;
  }
  if (!writer()) return;
  line.update(model_->diagnostics(test_images_));
  append_metrics(line);
  if (opt_.quiet) return;
  const double epochs = double(st_.step) / double(batches_->steps_per_epoch());
  if (r.bound == Bound::kNone)
    std::fprintf(stderr, "evaluated after %.2f epochs, step %lld (no likelihood)\n", epochs,
                 (long long)st_.step);
  else
    std::fprintf(stderr, "test %.4f bits/dim (%s, %lld images) after %.2f epochs, step %lld\n",
                 r.bpd, bound_name(r.bound), (long long)r.images, epochs, (long long)st_.step);
}

void Loop::save() {
  st_.elapsed = elapsed();
  if (writer())
    save_checkpoint(checkpoint_path(dir_), cfg_, *model_, &optimizers_, st_, average_.get());
}

void Loop::append_metrics(const nlohmann::json& line) const {
  if (!writer()) return;
  std::ofstream out(metrics_path(dir_), std::ios::app);
  out << line.dump() << "\n";
}

TrainStatus Loop::run() {
  StopReason why = StopReason::kNone;
  while (st_.epoch < cfg_.epochs) {
    while (st_.batch_in_epoch < batches_->steps_per_epoch()) {
      why = stop_reason();
      if (why != StopReason::kNone) return finish(why);
      if (!step()) return TrainStatus::kDiverged;
    }
    st_.epoch += 1;
    st_.batch_in_epoch = 0;
    save();
    evaluate_test("epoch");
  }
  return finish(StopReason::kNone);
}

TrainStatus Loop::finish(StopReason why) {
  progress_.finish();
  if (why == StopReason::kNone) return TrainStatus::kDone;
  save();
  const bool say = writer();
  switch (why) {
    case StopReason::kTimeLimit:
      if (say)
        std::fprintf(stderr, "time limit reached after %s\n", format_duration(st_.elapsed).c_str());
      if (last_eval_step_ != st_.step) evaluate_test("time-limit");
      return TrainStatus::kTimeLimit;
    case StopReason::kStepLimit:
      if (say && !opt_.quiet)
        std::fprintf(stderr,
                     "stopped after %lld steps; continue with: tame train --out %s --resume\n",
                     (long long)opt_.max_steps, dir_.c_str());
      return TrainStatus::kStepLimit;
    default:
      if (say)
        std::fprintf(
            stderr,
            "interrupted; checkpoint saved in %s (continue with: tame train --out %s --resume)\n",
            dir_.c_str(), dir_.c_str());
      return TrainStatus::kInterrupted;
  }
}

}  // namespace

TrainStatus train(const TrainOptions& options, bool resume) {
  ScopedTrainingRanks ranks(options.ranks);  // what the models' own reductions use
  return Loop(options, resume).run();
}

}  // namespace tame
