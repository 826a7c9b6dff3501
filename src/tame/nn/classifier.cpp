#include "tame/nn/classifier.h"

#include <sstream>

#include "tame/error.h"
#include "tame/io/container.h"

namespace tame {

namespace nn = torch::nn;

namespace {
constexpr char kMagic[8] = {'T', 'A', 'M', 'E', 'F', 'I', 'D', 'C'};
constexpr uint32_t kVersion = 1;
}  // namespace

FidClassifierImpl::FidClassifierImpl(ImageShape shape, int64_t classes) : shape_(shape) {
  TORCH_CHECK(shape.height % 4 == 0 && shape.width % 4 == 0 && classes >= 2,
              "the FID classifier needs height and width divisible by 4 and >= 2 classes");
  c1_ = register_module("c1", nn::Conv2d(nn::Conv2dOptions(shape.channels, 32, 3).padding(1)));
  c2_ = register_module("c2", nn::Conv2d(nn::Conv2dOptions(32, 64, 3).padding(1)));
  fc_ = register_module("fc", nn::Linear(64 * (shape.height / 4) * (shape.width / 4), kFeatures));
  out_ = register_module("out", nn::Linear(kFeatures, classes));
}

std::vector<torch::Tensor> FidClassifierImpl::activations(const torch::Tensor& x_unit) {
  auto a1 = torch::relu(c1_(x_unit));
  auto a2 = torch::relu(c2_(torch::max_pool2d(a1, 2)));
  return {a1, a2, torch::relu(fc_(torch::max_pool2d(a2, 2).flatten(1)))};
}

torch::Tensor FidClassifierImpl::features(const torch::Tensor& x_unit) {
  return activations(x_unit).back();
}

torch::Tensor FidClassifierImpl::forward(const torch::Tensor& x_unit) {
  return out_(features(x_unit));
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

}  // namespace tame
