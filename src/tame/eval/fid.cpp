#include "tame/eval/fid.h"

#include "tame/error.h"

namespace tame {

namespace nn = torch::nn;

namespace {
constexpr int64_t kBatch = 500;  // images per classifier batch

}  // namespace

double classifier_accuracy(FidClassifierImpl& net, const torch::Tensor& images, int64_t levels,
                           const torch::Tensor& labels) {
  c10::InferenceMode guard;
  net.eval();
  int64_t right = 0;
  const int64_t n = images.size(0);
  for (int64_t b = 0; b < n; b += kBatch) {
    const int64_t e = std::min(n, b + kBatch);
    auto guess = net.forward(classifier_input(images.slice(0, b, e), levels)).argmax(1);
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
      auto x = classifier_input(train.images.index_select(0, rows), train.levels);
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
        net.features(classifier_input(
                         images.slice(0, b, std::min(images.size(0), b + kBatch)).cpu(), levels))
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
                    const std::function<void(int64_t, int64_t)>& progress, double min_confidence) {
  if (n < 2) throw Error("FID needs at least 2 samples");
  torch::manual_seed(seed);
  model.eval();
  FidResult r;
  torch::Tensor images;
  if (min_confidence > 0) {
    auto kept = sample_with_rejection(model, classifier, n, 1.0, min_confidence, 50 * n, batch,
                                      [&](int64_t k, int64_t) {
                                        if (progress) progress(k, n);
                                      });
    if (kept.images.size(0) < n)
      throw Error("FID: " + std::to_string(n) +
                  " samples at confidence >= " + std::to_string(min_confidence) +
                  " were not found in " + std::to_string(kept.drawn) + " draws");
    images = kept.images;
    r.drawn = kept.drawn;
  } else {
    std::vector<torch::Tensor> samples;
    for (int64_t done = 0; done < n;) {
      const int64_t m = std::min(batch, n - done);
      samples.push_back(model.sample(m, 1.0).cpu());
      done += m;
      if (progress) progress(done, n);
    }
    images = torch::cat(samples);
    r.drawn = n;
  }
  r.samples = n;
  r.reference = reference.size(0);
  r.fid = frechet_distance(fid_features(classifier, images, model.levels()),
                           fid_features(classifier, reference, model.levels()));
  return r;
}

torch::Tensor classifier_confidence(FidClassifierImpl& net, const torch::Tensor& images,
                                    int64_t levels) {
  c10::InferenceMode guard;
  net.eval();
  const auto device = net.parameters().front().device();
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < images.size(0); i += 256) {
    auto x = images.slice(0, i, std::min(images.size(0), i + 256)).to(device);
    out.push_back(std::get<0>(torch::softmax(net.forward(classifier_input(x, levels)), 1).max(1))
                      .to(torch::kCPU, torch::kFloat));
  }
  return torch::cat(out);
}

RejectionResult sample_with_rejection(ImageModel& model, FidClassifierImpl& classifier, int64_t n,
                                      double temperature, double min_confidence, int64_t max_draws,
                                      int64_t batch,
                                      const std::function<void(int64_t, int64_t)>& progress) {
  if (n < 1 || batch < 1 || max_draws < 1)
    throw Error("rejection sampling: n, batch and draws must be positive");
  if (!(min_confidence >= 0 && min_confidence <= 1))
    throw Error("the minimum confidence must be in [0, 1], got " + std::to_string(min_confidence));
  model.eval();
  RejectionResult r;
  std::vector<torch::Tensor> kept;
  int64_t count = 0;
  while (count < n && r.drawn < max_draws) {
    const int64_t m = std::min(batch, max_draws - r.drawn);
    auto x = model.sample(m, temperature).cpu();
    r.drawn += m;
    auto keep = (classifier_confidence(classifier, x, model.levels()) >= min_confidence)
                    .nonzero()
                    .flatten();
    auto chosen = x.index_select(0, keep.slice(0, 0, n - count));
    count += chosen.size(0);
    kept.push_back(chosen);
    if (progress) progress(count, r.drawn);
  }
  r.images = torch::cat(kept);
  return r;
}

}  // namespace tame
