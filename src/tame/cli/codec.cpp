// tame compress   RUN_DIR INPUT... --out FILE   (PNG/PGM/PPM files)
// tame compress   RUN_DIR --data SPEC --split test [--limit N] --out FILE
// tame decompress RUN_DIR FILE --out DIR
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <memory>
#include <set>

#include "tame/cli/cli.h"
#include "tame/codec/baselines.h"
#include "tame/codec/model_codec.h"
#include "tame/common.h"
#include "tame/data/datasets.h"
#include "tame/dist/likelihood.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/io/pnm.h"
#include "tame/models/autoregressive/autoregressive_model.h"
#include "tame/train/run.h"

namespace tame::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The model of a run as a step engine; an Error when it has none.
std::unique_ptr<StepEngine> load_engine(const std::string& run_dir, RunConfig* cfg) {
  auto model =
      std::dynamic_pointer_cast<AutoregressiveModel>(load_trained_model(run_dir, cfg, "cpu"));
  auto engine = model ? model->step_engine() : nullptr;
  if (!engine)
    throw Error(run_dir + ": model " + cfg->model + " cannot be used as a codec (no step engine)");
  return engine;
}

}  // namespace

void add_compress(CLI::App& app) {
  struct Args {
    std::string run_dir, out, data, split = "test";
    std::vector<std::string> inputs;
    int64_t limit = 0, block = 64;
    int threads = 0;
    bool verify = false, json = false, compare = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("compress",
                               "losslessly compress images with a trained autoregressive model");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option("inputs", a->inputs, "PNG, PGM or PPM files");
  c->add_option("--out", a->out, "compressed file to write")->required();
  c->add_option("--data", a->data,
                "compress a dataset split instead of files (e.g. fashion-mnist)");
  c->add_option("--split", a->split, "test or train (with --data)")->capture_default_str();
  c->add_option("--limit", a->limit, "first N images of the split (0 = all)");
  c->add_option("--block", a->block, "images per independently coded block")->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_flag("--verify", a->verify, "decode the file again and check every pixel");
  c->add_flag("--compare", a->compare,
              "also code the same images as PNG, WebP and JPEG-XL files (see `tame baselines`) and "
              "print a table");
  c->add_flag("--json", a->json, "print one JSON object");
  c->callback([=] {
    if (a->inputs.empty() == a->data.empty())
      throw Error("give either input files or --data, not both or neither");
    if (a->limit < 0) throw Error("--limit must be >= 0");
    if (a->block < 1 || a->block > kMaxBlock)
      throw Error("--block must be in 1.." + std::to_string(kMaxBlock));
    const int threads = set_threads(a->threads);
    RunConfig cfg;
    auto engine = load_engine(a->run_dir, &cfg);
    const ImageShape shape{engine->channels(), engine->height(), engine->width()};

    torch::Tensor images;
    std::vector<std::string> names;
    std::string source;
    if (!a->data.empty()) {
      images = load_dataset(a->data, a->split).images;
      if (a->limit > 0 && a->limit < images.size(0)) images = images.slice(0, 0, a->limit);
      source = a->data + "/" + a->split;
      try {
        check_images(images, shape, cfg.levels);
      } catch (const Error& e) {
        throw Error(source + ": " + e.what() + " (model " + cfg.model + ")");
      }
    } else {
      std::set<std::string> seen;
      std::vector<torch::Tensor> list;
      const auto out_path = std::filesystem::weakly_canonical(a->out);
      for (const auto& path : a->inputs) {
        if (std::filesystem::weakly_canonical(path) == out_path)
          throw Error(path + ": --out would overwrite an input");
        auto img = read_image(path);
        try {
          check_images(img.unsqueeze(0), shape, cfg.levels);
        } catch (const Error& e) {
          throw Error(path + ": " + e.what() + " (model " + cfg.model + ")");
        }
        std::string name = std::filesystem::path(path).stem().string() + ".png";
        if (!seen.insert(name).second)
          throw Error(path + ": two inputs would both decompress to " + name);
        names.push_back(name);
        list.push_back(img);
      }
      images = torch::stack(list);
      source = std::to_string(list.size()) + " files";
    }
    images = images.contiguous();
    const int64_t n = images.size(0);

    auto t0 = std::chrono::steady_clock::now();
    EncodeStats stats;
    std::string file = encode_images(*engine, cfg.model, images.data_ptr<uint8_t>(), n, names,
                                     a->block, threads, &stats);
    const double encode_s = seconds_since(t0);
    write_file_atomic(a->out, file);

    double decode_s = 0;
    if (a->verify) {
      t0 = std::chrono::steady_clock::now();
      auto back = decode_images(*engine, read_file(a->out), threads);
      decode_s = seconds_since(t0);
      if (std::memcmp(back.pixels.data(), images.data_ptr<uint8_t>(), back.pixels.size()) != 0)
        throw Error(a->out + ": round trip FAILED: decoded pixels differ");
    }
    const int64_t dims = n * shape.dims();
    const double bpd = stats.file_bits / dims, model_bpd = stats.model_bits / dims;
    if (a->json) {
      nlohmann::json j = {{"model", cfg.model},
                          {"source", source},
                          {"images", n},
                          {"bytes", static_cast<int64_t>(file.size())},
                          {"bpd", bpd},
                          {"model_bpd", model_bpd},
                          {"ideal_bpd", stats.ideal_bits / dims},
                          {"encode_images_per_s", n / encode_s},
                          {"threads", threads},
                          {"block", a->block}};
      if (a->verify) {
        j["round_trip"] = "ok";
        j["decode_images_per_s"] = n / decode_s;
      }
      if (a->compare)
        for (const auto& r : measure_baselines(images, threads))
          j["baselines"][r.codec] = {
              {"bytes", r.bytes}, {"bpd", r.bits_per_dim}, {"round_trip_ok", r.round_trip_ok}};
      std::printf("%s\n", j.dump().c_str());
    } else {
      std::printf("compressed %lld images (%s, %s) into %s: %lld bytes, %.4f bits/dim\n",
                  (long long)n, shape.str().c_str(), source.c_str(), a->out.c_str(),
                  (long long)file.size(), bpd);
      std::printf("  model -log2 p: %.4f bits/dim (file overhead %+.2f%%)\n", model_bpd,
                  100.0 * (bpd / model_bpd - 1.0));
      std::printf("  encode: %.1f images/s on %d threads\n", n / encode_s, threads);
      if (a->verify) std::printf("  round trip: ok, decode %.1f images/s\n", n / decode_s);
      if (a->compare) {
        // The same images, one file per image for the classical codecs.
        std::fflush(stdout);
        auto baselines = measure_baselines(images, threads);
        std::printf("\n%-22s %12s %9s %11s\n", "codec", "bytes", "bits/dim", "round trip");
        std::printf("%-22s %12lld %9.4f %11s\n", ("tame (" + cfg.model + ")").c_str(),
                    (long long)file.size(), bpd, a->verify ? "ok" : "not run");
        const std::map<std::string, std::string> label = {{"png", "PNG (optipng -o7)"},
                                                          {"webp", "WebP lossless -z 9"},
                                                          {"jxl", "JPEG-XL lossless -e 9"}};
        for (const auto& r : baselines) {
          const auto it = label.find(r.codec);
          std::printf("%-22s %12lld %9.4f %11s\n",
                      it == label.end() ? r.codec.c_str() : it->second.c_str(), (long long)r.bytes,
                      r.bits_per_dim, r.round_trip_ok ? "ok" : "FAILED");
          if (!r.round_trip_ok) g_exit_code = 1;
        }
      }
    }
  });
}

void add_decompress(CLI::App& app) {
  struct Args {
    std::string run_dir, file, out;
    int threads = 0;
    bool force = false;
  };
  auto a = std::make_shared<Args>();
  auto* c = app.add_subcommand("decompress", "decode a compressed file into PNG images");
  c->add_option("run_dir", a->run_dir, "run directory of the model that wrote the file")
      ->required();
  c->add_option("file", a->file, "compressed file")->required();
  c->add_option("--out", a->out, "folder for the PNG images")->required();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_flag("--force", a->force, "overwrite images that already exist in the folder");
  c->callback([=] {
    const int threads = set_threads(a->threads);
    RunConfig cfg;
    auto engine = load_engine(a->run_dir, &cfg);
    const std::string bytes = read_file(a->file);
    auto t0 = std::chrono::steady_clock::now();
    DecodedImages d;
    try {
      d = decode_images(*engine, bytes, threads);
    } catch (const Error& e) {
      throw Error(a->file + ": " + e.what());
    }
    const double secs = seconds_since(t0);
    const auto& h = d.header;
    std::vector<std::string> names = h.names;
    if (names.empty()) {
      const int width = std::max<int>(6, static_cast<int>(std::to_string(h.count - 1).size()));
      for (int64_t i = 0; i < h.count; ++i) {
        std::string s = std::to_string(i);
        names.push_back(std::string(width - s.size(), '0') + s + ".png");
      }
    }
    // Everything is decoded before the first file is written, and nothing the
    // user has is overwritten without --force.
    make_directories(a->out);
    if (!a->force)
      for (const auto& name : names)
        if (file_exists(join_path(a->out, name)))
          throw Error(join_path(a->out, name) + " exists (use --force to overwrite)");
    auto all =
        torch::from_blob(d.pixels.data(), {h.count, h.channels, h.height, h.width}, torch::kUInt8);
    for (int64_t i = 0; i < h.count; ++i) write_png(join_path(a->out, names[i]), all[i]);
    std::printf("decompressed %lld images into %s (%.1f images/s on %d threads)\n",
                (long long)h.count, a->out.c_str(), h.count / secs, threads);
  });
}

}  // namespace tame::cli
