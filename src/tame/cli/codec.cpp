// tame compress   RUN_DIR INPUT... --out FILE   (PNG/PGM/PPM files, or folders of them)
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
#include "tame/train/progress.h"
#include "tame/train/run.h"

namespace tame::cli {

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Progress of long coding work on stderr: nothing in the first 2 seconds (so
// short runs and their errors print no more than before), then the units
// done (images, or tiles when an image is split), the rate and the time left.
CodecProgress show_progress(Progress& progress, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  return [&progress, what, start](int64_t done, int64_t total, const char* unit) {
    const double s = seconds_since(start);
    if (s < 2.0) return;
    const double rate = static_cast<double>(done) / s;
    char line[192];
    std::snprintf(line, sizeof line, "%s: %lld/%lld %s (%.0f%%), %.*f %s/s, ETA %s", what,
                  static_cast<long long>(done), static_cast<long long>(total), unit,
                  100.0 * static_cast<double>(done) / static_cast<double>(total), rate < 10 ? 2 : 0,
                  rate, unit, format_duration(static_cast<double>(total - done) / rate).c_str());
    progress.update(line, done == total);
  };
}

// A run's model as a codec: its coder, and the image sizes it takes.
struct CodecModel {
  RunConfig cfg;
  std::unique_ptr<ImageCoder> coder;
  ImageShape shape;  // the training images' shape
  bool any_size = false;
};

CodecModel load_codec_model(const std::string& run_dir, const std::vector<std::string>& prior) {
  CodecModel c;
  auto model = load_run_model(run_dir, prior, &c.cfg, "cpu");
  c.coder = model->coder();
  if (!c.coder) throw Error(run_dir + ": model " + c.cfg.model + " cannot be used as a codec");
  c.shape = model->shape();
  c.any_size = model->any_size();
  return c;
}

// Images the model can code: its channels and levels, and its size unless it
// is fully convolutional.
void check_codable(const torch::Tensor& x, const CodecModel& m, const std::string& what) {
  try {
    check_images(x, m.shape, m.cfg.levels, m.any_size);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what() + " (model " + m.cfg.model + ")");
  }
}

struct CompressArgs {
  std::string run_dir, out, data, split = "test";
  std::vector<std::string> prior;
  std::vector<std::string> inputs;
  int64_t limit = 0, block = 0, tile = 256;
  int threads = 0;
  bool verify = false, json = false, compare = false, quiet = false;
};

// The images to compress, as tensors [1, C, H, W] each, with their names (for
// files) and a description of the source.
struct Inputs {
  std::vector<torch::Tensor> images;
  std::vector<std::string> names;
  std::string source;
};

// The classical codecs run in their bilevel forms on binary images.
int64_t baseline_levels(const CodecModel& m, const Inputs& in) {
  if (m.cfg.levels != 2) return 256;
  for (const auto& x : in.images)
    if (x.max().item<int>() > 1) return 256;
  return 2;
}

Inputs read_split(const CompressArgs& a, const CodecModel& m) {
  Inputs in;
  auto x = load_dataset(a.data, a.split).images;
  if (a.limit > 0 && a.limit < x.size(0)) x = x.slice(0, 0, a.limit);
  in.source = a.data + "/" + a.split;
  check_codable(x, m, in.source);
  for (int64_t i = 0; i < x.size(0); ++i) in.images.push_back(x.slice(0, i, i + 1));
  return in;
}

// The input paths with each folder replaced by the PNG, PGM and PPM files
// directly inside it, in name order.
std::vector<std::string> expand_folders(const std::vector<std::string>& inputs) {
  std::vector<std::string> paths;
  for (const auto& path : inputs) {
    if (!is_directory(path)) {
      paths.push_back(path);
      continue;
    }
    const auto& ext = image_extensions();
    const auto inside = files_in_directory(path, ext);
    if (inside.empty()) {
      std::string names = ext[0];
      for (size_t i = 1; i < ext.size(); ++i)
        names += (i + 1 < ext.size() ? ", " : " or ") + ext[i];
      throw Error(path + ": no " + names + " files in this folder");
    }
    paths.insert(paths.end(), inside.begin(), inside.end());
  }
  return paths;
}

Inputs read_files(const CompressArgs& a, const CodecModel& m) {
  Inputs in;
  std::set<std::string> seen;
  const auto out_path = std::filesystem::weakly_canonical(a.out);
  for (const auto& path : expand_folders(a.inputs)) {
    if (std::filesystem::weakly_canonical(path) == out_path)
      throw Error(path + ": --out would overwrite an input");
    auto img = read_image(path).unsqueeze(0);
    check_codable(img, m, path);
    std::string name = std::filesystem::path(path).stem().string() + ".png";
    if (!seen.insert(name).second)
      throw Error(path + ": two inputs would both decompress to " + name);
    in.names.push_back(name);
    in.images.push_back(img);
  }
  in.source = std::to_string(in.images.size()) + " files";
  return in;
}

// Any integer image type (uint8, or int32 above 256 levels) to the codec's values.
ImageList to_list(const Inputs& in) {
  ImageList list;
  list.names = in.names;
  for (const auto& t : in.images) {
    auto x = t.to(torch::kInt32).contiguous();
    list.sizes.push_back({x.size(1), x.size(2), x.size(3)});
    list.values.insert(list.values.end(), x.data_ptr<int32_t>(), x.data_ptr<int32_t>() + x.numel());
  }
  return list;
}

int64_t total_dims(const ImageList& list) { return static_cast<int64_t>(list.values.size()); }

std::string sizes_str(const ImageList& list) {
  std::set<std::string> sizes;
  for (const auto& s : list.sizes) sizes.insert(s.str());
  return sizes.size() == 1 ? *sizes.begin() : std::to_string(sizes.size()) + " sizes";
}

struct Outcome {
  int64_t bytes = 0, block = 0, blocks = 0;
  EncodeStats stats;
  double encode_s = 0, decode_s = 0;
};

void print_json(const CompressArgs& a, const CodecModel& m, const Inputs& in, const ImageList& list,
                const Outcome& r, int threads) {
  const int64_t n = static_cast<int64_t>(list.sizes.size()), dims = total_dims(list);
  nlohmann::json j = {{"model", m.cfg.model},
                      {"source", in.source},
                      {"images", n},
                      {"bytes", r.bytes},
                      {"bpd", r.stats.file_bits / dims},
                      {"model_bpd", r.stats.model_bits / dims},
                      {"ideal_bpd", r.stats.ideal_bits / dims},
                      {"chain_bpd", r.stats.chain_bits / dims},
                      {"encode_images_per_s", n / r.encode_s},
                      {"threads", threads},
                      {"block", r.block}};
  if (a.verify) {
    j["round_trip"] = "ok";
    j["decode_images_per_s"] = n / r.decode_s;
  }
  if (a.compare)
    for (const auto& b : measure_baselines(torch::cat(in.images), threads, baseline_levels(m, in)))
      j["baselines"][b.codec] = {
          {"bytes", b.bytes}, {"bpd", b.bits_per_dim}, {"round_trip_ok", b.round_trip_ok}};
  std::printf("%s\n", j.dump().c_str());
}

// The same images, one file per image for the classical codecs, in a table.
void print_comparison(const CodecModel& m, const Inputs& in, const Outcome& r, double bpd,
                      bool verified, int threads) {
  std::fflush(stdout);
  auto baselines = measure_baselines(torch::cat(in.images), threads, baseline_levels(m, in));
  std::printf("\n%-22s %12s %9s %11s\n", "codec", "bytes", "bits/dim", "round trip");
  std::printf("%-22s %12lld %9.4f %11s\n", ("tame (" + m.cfg.model + ")").c_str(),
              (long long)r.bytes, bpd, verified ? "ok" : "not run");
  const std::map<std::string, std::string> label = {{"png", "PNG (optipng -o7)"},
                                                    {"webp", "WebP lossless -z 9"},
                                                    {"jxl", "JPEG-XL lossless -e 9"},
                                                    {"jbig", "JBIG1 (jbigkit)"}};
  for (const auto& b : baselines) {
    const auto it = label.find(b.codec);
    std::printf("%-22s %12lld %9.4f %11s\n",
                it == label.end() ? b.codec.c_str() : it->second.c_str(), (long long)b.bytes,
                b.bits_per_dim, b.round_trip_ok ? "ok" : "FAILED");
    if (!b.round_trip_ok) g_exit_code = 1;
  }
}

void print_text(const CompressArgs& a, const CodecModel& m, const Inputs& in, const ImageList& list,
                const Outcome& r, int threads) {
  const int64_t n = static_cast<int64_t>(list.sizes.size()), dims = total_dims(list);
  const double bpd = r.stats.file_bits / dims, model_bpd = r.stats.model_bits / dims;
  std::printf("compressed %lld images (%s, %s) into %s: %lld bytes, %.4f bits/dim\n", (long long)n,
              sizes_str(list).c_str(), in.source.c_str(), a.out.c_str(), (long long)r.bytes, bpd);
  std::printf("  model -log2 p: %.4f bits/dim (file overhead %+.2f%%)\n", model_bpd,
              100.0 * (bpd / model_bpd - 1.0));
  if (r.stats.chain_bits > 0)
    std::printf("  of the file, the bits-back chains' start: %.4f bits/dim (%lld blocks)\n",
                r.stats.chain_bits / dims, static_cast<long long>(r.blocks));
  std::printf("  encode: %.1f images/s on %d threads\n", n / r.encode_s, threads);
  if (a.verify) std::printf("  round trip: ok, decode %.1f images/s\n", n / r.decode_s);
  if (a.compare) print_comparison(m, in, r, bpd, a.verify, threads);
}

void run_compress(const CompressArgs& a) {
  if (a.inputs.empty() == a.data.empty())
    throw Error("give either input files or --data, not both or neither");
  if (a.limit < 0) throw Error("--limit must be >= 0");
  if (a.block < 0) throw Error("--block must be >= 0 (0: the model's default)");
  if (a.tile != 0 && (a.tile < kMinTile || a.tile > kMaxSide))
    throw Error("--tile must be 0 or in " + std::to_string(kMinTile) + ".." +
                std::to_string(kMaxSide));
  const int threads = set_threads(a.threads);
  const CodecModel m = load_codec_model(a.run_dir, a.prior);
  const Inputs in = a.data.empty() ? read_files(a, m) : read_split(a, m);
  const ImageList list = to_list(in);
  // The classical codecs of --compare take a batch of one size.
  if (a.compare && sizes_str(list).find(" sizes") != std::string::npos)
    throw Error("--compare needs images of one size");
  Outcome r;
  Progress progress(30.0, a.quiet);
  auto t0 = std::chrono::steady_clock::now();
  EncodeOptions options;
  options.block = a.block;
  options.threads = threads;
  options.allow_stored = true;
  options.tile = m.any_size ? a.tile : 0;  // a dense model takes its one shape only
  options.progress = show_progress(progress, "compress");
  const std::string file = encode_images(*m.coder, m.cfg.model, list, options, &r.stats);
  const CodecHeader header = parse_header(file);
  r.block = header.block;
  r.blocks = static_cast<int64_t>(header.block_first.size());
  progress.finish();
  r.encode_s = seconds_since(t0);
  r.bytes = static_cast<int64_t>(file.size());
  write_file_atomic(a.out, file);
  if (a.verify) {
    t0 = std::chrono::steady_clock::now();
    auto back =
        decode_images(*m.coder, read_file(a.out), threads, show_progress(progress, "verify"));
    progress.finish();
    r.decode_s = seconds_since(t0);
    if (back.images.values != list.values)
      throw Error(a.out + ": round trip FAILED: decoded pixels differ");
  }
  if (a.json)
    print_json(a, m, in, list, r, threads);
  else
    print_text(a, m, in, list, r, threads);
}

}  // namespace

void add_compress(CLI::App& app) {
  auto a = std::make_shared<CompressArgs>();
  auto* c = app.add_subcommand("compress",
                               "losslessly compress images with a trained autoregressive model");
  c->add_option("run_dir", a->run_dir, "run directory")->required();
  c->add_option("--prior", a->prior,
                "a prior trained on codes:RUN_DIR: code with the pair (each image's codes with the "
                "prior, the image given them)");
  c->add_option("inputs", a->inputs,
                "PNG, PGM or PPM files (any size for a fully convolutional model), or folders: "
                "a folder stands for the .png, .pgm, .ppm and .pnm files directly inside it");
  c->add_option("--out", a->out, "compressed file to write")->required();
  c->add_option("--data", a->data,
                "compress a dataset split instead of files (e.g. fashion-mnist)");
  c->add_option("--split", a->split, "test or train (with --data)")->capture_default_str();
  c->add_option("--limit", a->limit, "first N images of the split (0 = all)");
  c->add_option("--block", a->block,
                "images per independently coded block (0: the model's default, 64 for "
                "autoregressive models, 8 chains a file for bits-back coding)")
      ->capture_default_str();
  c->add_option("--tile", a->tile,
                "code images wider or taller than T as independent T x T tiles, in parallel "
                "(0 = whole images)")
      ->capture_default_str();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_flag("--verify", a->verify, "decode the file again and check every pixel");
  c->add_flag("--compare", a->compare,
              "also code the same images as PNG, WebP and JPEG-XL files (see `tame baselines`) and "
              "print a table");
  c->add_flag("--json", a->json, "print one JSON object");
  c->add_flag("--quiet", a->quiet, "no progress output");
  c->callback([a] { run_compress(*a); });
}

namespace {

struct DecompressArgs {
  std::string run_dir, file, out;
  std::vector<std::string> prior;
  int threads = 0;
  bool force = false, quiet = false;
};

std::vector<std::string> output_names(const CodecHeader& h) {
  if (!h.names.empty()) return h.names;
  std::vector<std::string> names;
  const int width = std::max<int>(6, static_cast<int>(std::to_string(h.count - 1).size()));
  for (int64_t i = 0; i < h.count; ++i) {
    std::string s = std::to_string(i);
    names.push_back(std::string(width - s.size(), '0') + s + ".png");
  }
  return names;
}

void run_decompress(const DecompressArgs& a) {
  const int threads = set_threads(a.threads);
  const CodecModel m = load_codec_model(a.run_dir, a.prior);
  const std::string bytes = read_file(a.file);
  auto t0 = std::chrono::steady_clock::now();
  DecodedImages d;
  Progress progress(30.0, a.quiet);
  try {
    d = decode_images(*m.coder, bytes, threads, show_progress(progress, "decompress"));
  } catch (const Error& e) {
    progress.finish();
    throw Error(a.file + ": " + e.what());
  }
  progress.finish();
  const double secs = seconds_since(t0);
  const auto& h = d.header;
  if (h.levels > 256) throw Error(a.file + ": PNG output holds at most 256 levels");
  const std::vector<std::string> names = output_names(h);
  // Everything is decoded before the first file is written, and nothing the
  // user has is overwritten without --force.
  make_directories(a.out);
  if (!a.force)
    for (const auto& name : names)
      if (file_exists(join_path(a.out, name)))
        throw Error(join_path(a.out, name) + " exists (use --force to overwrite)");
  int64_t at = 0;
  for (int64_t i = 0; i < h.count; ++i) {
    const ImageSize& s = h.sizes[i];
    auto img = torch::empty({s.channels, s.height, s.width}, torch::kUInt8);
    std::copy(d.images.values.begin() + at, d.images.values.begin() + at + s.dims(),
              img.data_ptr<uint8_t>());
    at += s.dims();
    write_png(join_path(a.out, names[i]), img);
  }
  std::printf("decompressed %lld images into %s (%.1f images/s on %d threads)\n",
              (long long)h.count, a.out.c_str(), h.count / secs, threads);
}

}  // namespace

void add_decompress(CLI::App& app) {
  auto a = std::make_shared<DecompressArgs>();
  auto* c = app.add_subcommand("decompress", "decode a compressed file into PNG images");
  c->add_option("run_dir", a->run_dir, "run directory of the model that wrote the file")
      ->required();
  c->add_option("file", a->file, "compressed file")->required();
  c->add_option("--prior", a->prior, "the prior the file was written with (compress --prior)");
  c->add_option("--out", a->out, "folder for the PNG images")->required();
  c->add_option("--threads", a->threads, "CPU threads (0 = all)");
  c->add_flag("--force", a->force, "overwrite images that already exist in the folder");
  c->add_flag("--quiet", a->quiet, "no progress output");
  c->callback([a] { run_decompress(*a); });
}

}  // namespace tame::cli
