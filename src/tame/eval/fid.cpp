#include "tame/eval/fid.h"

#include <sstream>

#include "tame/error.h"
#include "tame/io/container.h"
#include "tame/train/checkpoint.h"

namespace tame {

namespace nn = torch::nn;

namespace {
constexpr char kMagic[8] = {'T', 'A', 'M', 'E', 'F', 'I', 'D', 'C'};
constexpr uint32_t kVersion = 1;
constexpr int64_t kBatch = 500;  // images per classifier batch

torch::Tensor unit(const torch::Tensor& x, int64_t levels) {
  return x.to(torch::kFloat) / static_cast<double>(levels - 1);
}
}  // namespace

FidClassifierImpl::FidClassifierImpl(ImageShape shape, int64_t classes) : shape_(shape) {
  TORCH_CHECK(shape.height % 4 == 0 && shape.width % 4 == 0 && classes >= 2,
              "the FID classifier needs height and width divisible by 4 and >= 2 classes");
  c1_ = register_module("c1", nn::Conv2d(nn::Conv2dOptions(shape.channels, 32, 3).padding(1)));
  c2_ = register_module("c2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  fc_ = register_module("fc", nn::Linear(64 * (shape.height / 4) * (shape.width / 4), kFeatures));
  out_ = register_module("out", nn::Linear(kFeatures, classes));
}

torch::Tensor FidClassifierImpl::features(const torch::Tensor& x_unit) {
  auto h = torch::max_pool2d(torch::relu(c1_(x_unit)), 2);
  h = torch::max_pool2d(torch::relu(c2_(h)), 2);
  return torch::relu(fc_(h.flatten(1)));
}

torch::Tensor FidClassifierImpl::forward(const torch::Tensor& x_unit) {
  return out_(features(x_unit));
}

double classifier_accuracy(FidClassifierImpl& net, const torch::Tensor& images, int64_t levels,
                           const torch::Tensor& labels) {
  c10::InferenceMode guard;
  net.eval();
  int64_t right = 0;
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += kBatch) {
    const int64_t e = std::min(n, b + kBatch);
    auto guess = net.forward(unit(images.slice(0, b, e), levels)).argmax(1);
    right += (guess == labels.slice(0, b, e)).sum().item<int64_t>();
  }
  return n ? static_cast<double>(right) / static_cast<double>(n) : 0.0;
}

TrainedClassifier train_classifier(const Dataset& train, const Dataset& test,
                                   const ClassifierOptions& o,
                                   const std::function<void(int64_t, int64_t, int64_t)>& progress) {
  if (!train.labels.defined() || !test.labels.defined())
    throw Error(train.name + " has no labels to train a classifier on");
  if (o.epochs < 1 || o.batch_size < 1 || !(o.lr > 0))
    throw Error("the classifier needs epochs and batch size >= 1 and a positive learning rate");
  const int64_t classes =
      std::max(train.labels.max().item<int64_t>(), test.labels.max().item<int64_t>()) + 1;
  torch::manual_seed(o.seed);
  TrainedClassifier c;
  c.net = FidClassifier(train.shape(), classes);
  torch::optim::Adam adam(c.net->parameters(), torch::optim::AdamOptions(o.lr));
  const int64_t n = train.size(), batches = (n + o.batch_size - 1) / o.batch_size;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    c.net->train();
    auto order = epoch_permutation(n, o.seed, epoch);
    auto index = torch::tensor(order, torch::kLong);
    for (int64_t b = 0; b < batches; ++b) {
      auto rows = index.slice(0, b * o.batch_size, std::min(n, (b + 1) * o.batch_size));
      auto x = unit(train.images.index_select(0, rows), train.levels);
      auto loss = torch::cross_entropy_loss(c.net->forward(x), train.labels.index_select(0, rows));
      adam.zero_grad();
      loss.backward();
      adam.step();
      if (progress) progress(epoch, b + 1, batches);
    }
  }
  const double accuracy = classifier_accuracy(*c.net, test.images, test.levels, test.labels);
  c.meta = {{"data", train.name},
            {"classes", classes},
            {"image_shape", {train.shape().channels, train.shape().height, train.shape().width}},
            {"seed", o.seed},
            {"epochs", o.epochs},
            {"batch_size", o.batch_size},
            {"lr", o.lr},
            {"test_accuracy", accuracy}};
  return c;
}

void save_classifier(const std::string& path, const TrainedClassifier& c) {
  torch::serialize::OutputArchive archive;
  write_weights(archive, *c.net);
  std::ostringstream payload;
  archive.save_to(payload);
  write_container(path, kMagic, kVersion, c.meta, payload.str());
}

TrainedClassifier load_classifier(const std::string& path) {
  const Container file = read_container(path, kMagic, "FID classifier", kVersion, kVersion);
  TrainedClassifier c;
  c.meta = file.meta;
  try {
    const auto& s = c.meta.at("image_shape");
    c.net = FidClassifier(
        ImageShape{s.at(0).get<int64_t>(), s.at(1).get<int64_t>(), s.at(2).get<int64_t>()},
        c.meta.at("classes").get<int64_t>());
    c.meta.at("data").get<std::string>();
    c.meta.at("test_accuracy").get<double>();
  } catch (const std::exception& e) {
    throw Error(path + ": FID classifier metadata is incomplete or invalid");
  }
  torch::serialize::InputArchive archive;
  try {
    std::istringstream in(file.payload);
    archive.load_from(in);
  } catch (const std::exception& e) {
    throw Error(path + ": corrupt FID classifier payload");
  }
  read_weights(archive, *c.net, path);
  c.net->eval();
  return c;
}

void check_classifier_fits(const TrainedClassifier& c, const std::string& data, ImageShape shape) {
  const std::string own = c.meta.at("data").get<std::string>();
  if (data != own && data != own + "-bin")
    throw Error("the FID classifier was trained on " + own + ", not on " + data);
  if (!(c.net->shape() == shape))
    throw Error("the FID classifier takes " + c.net->shape().str() + " images, not " + shape.str());
}

torch::Tensor fid_features(FidClassifierImpl& net, const torch::Tensor& images, int64_t levels) {
  c10::InferenceMode guard;
  net.eval();
  std::vector<torch::Tensor> parts;
  for (int64_t b = 0; b < images.size(0); b += kBatch)
    parts.push_back(
        net.features(unit(images.slice(0, b, std::min(images.size(0), b + kBatch)).cpu(), levels))
            .to(torch::kDouble));
  return torch::cat(parts);
}

namespace {
// The symmetric positive semi-definite square root V diag(sqrt(max(l, 0))) V^T.
torch::Tensor psd_sqrt(const torch::Tensor& s) {
  auto [values, vectors] = torch::linalg::eigh(s, "L");
  return torch::matmul(vectors * values.clamp_min(0).sqrt().unsqueeze(0), vectors.t());
}
}  // namespace

double frechet_distance(const torch::Tensor& mu1, const torch::Tensor& s1, const torch::Tensor& mu2,
                        const torch::Tensor& s2) {
  auto a = s1.to(torch::kDouble), b = s2.to(torch::kDouble);
  auto root = psd_sqrt(a);
  auto m = torch::matmul(torch::matmul(root, b), root);
  m = 0.5 * (m + m.t());  // symmetric up to rounding
  const double cross = torch::linalg::eigvalsh(m, "L").clamp_min(0).sqrt().sum().item<double>();
  const double mean = (mu1.to(torch::kDouble) - mu2.to(torch::kDouble)).pow(2).sum().item<double>();
  return mean + a.trace().item<double>() + b.trace().item<double>() - 2 * cross;
}

double frechet_distance(const torch::Tensor& f1, const torch::Tensor& f2) {
  TORCH_CHECK(f1.size(0) >= 2 && f2.size(0) >= 2 && f1.size(1) == f2.size(1),
              "frechet_distance: two sets of at least two feature vectors of one size");
  auto stats = [](const torch::Tensor& f) {
    auto x = f.to(torch::kDouble);
    auto mu = x.mean(0);
    auto c = x - mu;
    return std::make_pair(mu, torch::matmul(c.t(), c) / static_cast<double>(x.size(0) - 1));
  };
  auto [mu1, s1] = stats(f1);
  auto [mu2, s2] = stats(f2);
  return frechet_distance(mu1, s1, mu2, s2);
}

FidResult model_fid(ImageModel& model, FidClassifierImpl& classifier,
                    const torch::Tensor& reference, int64_t n, uint64_t seed, int64_t batch,
                    const std::function<void(int64_t, int64_t)>& progress) {
  if (n < 2) throw Error("FID needs at least 2 samples");
  torch::manual_seed(seed);
  model.eval();
  std::vector<torch::Tensor> samples;
  for (int64_t done = 0; done < n;) {
    const int64_t m = std::min(batch, n - done);
    samples.push_back(model.sample(m, 1.0).cpu());
    done += m;
    if (progress) progress(done, n);
  }
  FidResult r;
  r.samples = n;
  r.reference = reference.size(0);
  r.fid = frechet_distance(fid_features(classifier, torch::cat(samples), model.levels()),
                           fid_features(classifier, reference, model.levels()));
  return r;
}

}  // namespace tame
