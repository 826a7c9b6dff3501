// The variance of the two gradient estimators of a VAE's encoder: pathwise
// (reparameterized) and score-function (likelihood ratio, with the running-mean
// baseline the model trains with). Prints JSON lines:
//   1. the toy problem of the tests, d/dmu E_{N(mu, sigma^2)} (z - 3)^2, per-sample
//      variance of each estimator;
//   2. a VAE's encoder gradient of the one-sample loss on one fixed batch,
//      re-drawn `repeats` times: the mean over encoder weights of each weight's
//      variance across draws, for both estimators, and their ratio. With a
//      RUN_DIR of a trained `vae` the weights and data are the run's; without,
//      a fresh VAE on Fashion-MNIST.
//
//   bench_gradient_variance [RUN_DIR] [--repeats 50] [--batch 64]
#include <cstdio>
#include <cstring>

#include "tame/data/datasets.h"
#include "tame/models/latent/estimators.h"
#include "tame/models/latent/vae.h"
#include "tame/registry.h"
#include "tame/train/run.h"

namespace {

// Mean over the encoder's weights of the variance across draws of their gradient.
double encoder_gradient_variance(tame::ImageModel& model, const torch::Tensor& x, int64_t repeats) {
  std::vector<torch::Tensor> params;
  for (const auto& p : model.named_parameters())
    if (p.key().rfind("encoder.", 0) == 0) params.push_back(p.value());
  std::vector<torch::Tensor> draws;
  for (int64_t r = 0; r < repeats; ++r) {
    model.zero_grad();
    model.loss(x).backward();
    std::vector<torch::Tensor> flat;
    for (auto& p : params) flat.push_back(p.grad().flatten().clone());
    draws.push_back(torch::cat(flat));
  }
  return torch::stack(draws).to(torch::kDouble).var(0).mean().item<double>();
}

}  // namespace

int main(int argc, char** argv) {
  std::string run_dir;
  int64_t repeats = 50, batch = 64;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--repeats") && i + 1 < argc)
      repeats = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc)
      batch = std::atoll(argv[++i]);
    else
      run_dir = argv[i];
  }
  tame::set_threads(0);
  try {
    // 1. Toy problem: per-sample gradients w.r.t. mu at mu = 1, sigma = 0.5.
    torch::manual_seed(0);
    const int64_t n = 100000;
    auto mu = torch::full({n}, 1.0, torch::kDouble).requires_grad_(true);
    auto eps = torch::randn({n}, torch::kDouble);
    (mu + 0.5 * eps - 3.0).pow(2).sum().backward();
    auto pathwise = mu.grad().clone();
    mu.grad().zero_();
    auto z = (mu + 0.5 * eps).detach();
    auto f = (z - 3.0).pow(2);
    auto log_q = tame::latent::gaussian_log_prob(
        z.unsqueeze(-1), mu.unsqueeze(-1), torch::full({n, 1}, 2 * std::log(0.5), torch::kDouble));
    tame::latent::score_function_surrogate(f, log_q, f.mean()).sum().backward();
    auto score = mu.grad().clone();
    std::printf(
        "{\"bench\":\"gradient_variance\",\"problem\":\"toy d/dmu E(z-3)^2\",\"exact\":%.4f,"
        "\"pathwise_mean\":%.4f,\"pathwise_var\":%.4f,\"score_mean\":%.4f,\"score_var\":%.4f,"
        "\"ratio\":%.1f}\n",
        2 * (1.0 - 3.0), pathwise.mean().item<double>(), pathwise.var().item<double>(),
        score.mean().item<double>(), score.var().item<double>(),
        score.var().item<double>() / pathwise.var().item<double>());
    std::fflush(stdout);

    // 2. A VAE's encoder.
    tame::RunConfig cfg;
    std::shared_ptr<tame::ImageModel> model;
    if (run_dir.empty()) {
      cfg.model = "vae";
      cfg.data = "fashion-mnist";
      cfg.hparams = tame::resolve_hparams("vae", nlohmann::json::object());
      torch::manual_seed(1);
      model = tame::make_model("vae", cfg.hparams, {1, 28, 28}, 256);
      cfg.levels = 256;
    } else {
      model = tame::load_trained_model(run_dir, &cfg, "cpu");
    }
    if (cfg.model != "vae") throw tame::Error("the run must hold a vae, not " + cfg.model);
    auto hp = cfg.hparams;
    hp["estimator"] = "score";
    auto score_model = tame::make_model("vae", hp, model->shape(), cfg.levels);
    {
      torch::NoGradGuard g;
      auto src = model->named_parameters();
      for (auto& p : score_model->named_parameters()) p.value().copy_(src[p.key()]);
    }
    auto x = tame::load_dataset(cfg.data, "test").images.slice(0, 0, batch);
    score_model->train();
    score_model->loss(x);  // starts the baseline at this batch's mean
    const double vp = encoder_gradient_variance(*model, x, repeats);
    const double vs = encoder_gradient_variance(*score_model, x, repeats);
    std::printf(
        "{\"bench\":\"gradient_variance\",\"problem\":\"vae encoder\",\"run\":\"%s\","
        "\"batch\":%lld,\"repeats\":%lld,\"pathwise_var\":%.4g,\"score_var\":%.4g,\"ratio\":%.1f}"
        "\n",
        run_dir.empty() ? "(fresh)" : run_dir.c_str(), (long long)batch, (long long)repeats, vp, vs,
        vs / vp);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gradient_variance: error: %s\n", tame::first_line(e).c_str());
    return 1;
  }
  return 0;
}
