#include "tame/models/image_model.h"

#include <cmath>

#include "tame/dist/likelihood.h"
#include "tame/parallel.h"
#include "tame/random.h"

namespace tame {

const char* bound_name(Bound b) { return b == Bound::kExact ? "exact" : "upper"; }

torch::Device ImageModel::device() const {
  auto params = parameters();
  return params.empty() ? torch::Device(torch::kCPU) : params.front().device();
}

}  // namespace tame
