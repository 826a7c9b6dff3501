// tame reconstruct RUN_DIR [--split S] [-n N] [--out FILE.png] [--latent-grid [--side S]]
// For latent-variable models: test images beside their reconstructions (the
// posterior's most likely z, decoded to the mean of p(x|z)), or, for a
// 2-D Gaussian latent space, the decoded grid of z over the prior's quantiles.
#include <cstdio>
#include <memory>

#include "tame/cli/cli.h"
#include "tame/data/datasets.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/models/latent/latent_model.h"
#include "tame/train/run.h"

namespace tame::cli {

namespace {
// Level-unit values [0, K-1] (means may fall between levels) as 8-bit gray.
torch::Tensor to_8bit(const torch::Tensor& v, int64_t levels) {
  return torch::round(v * (255.0 / static_cast<double>(levels - 1)))
      .clamp(0, 255)
      .to(torch::kUInt8);
}
}  // namespace

void add_reconstruct(CLI::App& app) {
  struct Args {
    std::string run_dir, out, split = "test", device;
    int64_t n = 32, columns = 8, side = 15;
    bool latent_grid = false;
    uint64_t seed = 0;
    int threads = 0;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand(
      "reconstruct", "latent models: inputs beside their reconstructions, or a latent-space grid");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option("--split", a->split, "test or train")->capture_default_str();
  c->add_option("-n", a->n, "images to reconstruct (the first N of the split)")
      ->capture_default_str();
  c->add_option("--columns", a->columns,
                "images per row; each row of inputs is followed by its "
                "row of reconstructions")
      ->capture_default_str();
  c->add_option("--out", a->out,
                "PNG file (default RUN_DIR/reconstructions.png or latent_grid.png)");
  c->add_flag(
      "--latent-grid", a->latent_grid,
      "decode a side x side grid over the prior's 5%..95% quantiles (2-D Gaussian latents)");
  c->add_option("--side", a->side, "latent grid side")->capture_default_str();
  c->add_option("--seed", a->seed, "random seed")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_option("--device", a->device, "cpu or cuda (default: the run's)");
  c->callback([=] {
    if (a->n < 1 || a->columns < 1 || a->side < 2)
      throw Error("-n and --columns must be >= 1, --side >= 2");
    set_threads(a->threads);
    RunConfig cfg;
    auto model = load_trained_model(a->run_dir, &cfg, a->device);
    auto* latent = dynamic_cast<LatentModel*>(model.get());
    if (!latent)
      throw Error("reconstruct needs a latent-variable model (vae, iwae, gumbel-vae); " +
                  a->run_dir + " holds a " + cfg.model);
    torch::manual_seed(a->seed);
    model->eval();
    if (a->latent_grid) {
      if (cfg.model == "gumbel-vae" || latent->latent_dims() != 2)
        throw Error("--latent-grid needs a 2-D Gaussian latent space (--set latent=2); " +
                    a->run_dir + " has " + std::to_string(latent->latent_dims()) + " latent units");
      // Quantiles of N(0, 1): sqrt(2) erfinv(2p - 1), p from 5% to 95%.
      auto p = torch::linspace(0.05, 0.95, a->side);
      auto q = std::sqrt(2.0) * torch::erfinv(2.0 * p - 1.0);
      auto grid = torch::stack(torch::meshgrid({q.flip(0), q}, "ij"), -1).view({-1, 2});
      auto x = to_8bit(latent->decode_mean(grid).cpu(), cfg.levels);
      std::string out = a->out.empty() ? join_path(a->run_dir, "latent_grid.png") : a->out;
      write_png(out, image_grid(x, 256, 1, a->side));
      std::printf("wrote a %lldx%lld latent grid to %s\n", (long long)a->side, (long long)a->side,
                  out.c_str());
      return;
    }
    Dataset ds = load_run_data(cfg.data, a->split);
    const int64_t n = std::min<int64_t>(a->n, ds.images.size(0));
    auto x = to_8bit(ds.images.slice(0, 0, n).to(torch::kFloat), cfg.levels);
    auto r = to_8bit(latent->reconstruct(ds.images.slice(0, 0, n)).cpu(), cfg.levels);
    std::vector<torch::Tensor> rows;
    for (int64_t b = 0; b < n; b += a->columns) {
      const int64_t e = std::min(n, b + a->columns);
      auto pad = [&](torch::Tensor t) {  // a short last row keeps the grid rectangular
        if (t.size(0) == a->columns) return t;
        auto blank =
            torch::zeros({a->columns - t.size(0), t.size(1), t.size(2), t.size(3)}, t.options());
        return torch::cat({t, blank});
      };
      rows.push_back(pad(x.slice(0, b, e)));
      rows.push_back(pad(r.slice(0, b, e)));
    }
    std::string out = a->out.empty() ? join_path(a->run_dir, "reconstructions.png") : a->out;
    write_png(out, image_grid(torch::cat(rows), 256, 2, a->columns));
    std::printf("wrote %lld images and their reconstructions to %s\n", (long long)n, out.c_str());
  });
}

}  // namespace tame::cli
