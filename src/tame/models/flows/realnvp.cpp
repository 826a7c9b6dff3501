#include "tame/models/flows/realnvp.h"

namespace tame {

namespace {
using flows::MaskKind;
using flows::TransformPtr;

TransformPtr scale_level(const RealNvpOptions& o, int64_t C, int64_t H, int64_t W, int64_t level) {
  std::vector<TransformPtr> parts;
  auto coupling = [&](int64_t c, int64_t h, int64_t w, MaskKind kind, bool parity) {
    return std::make_shared<flows::AffineCoupling>(c, h, w, kind, parity, o.hidden, o.scale_bound);
  };
  if (level == o.scales - 1) {
    for (int64_t i = 0; i < 4; ++i)
      parts.push_back(coupling(C, H, W, MaskKind::kCheckerboard, i % 2));
    return std::make_shared<flows::Composite>(parts);
  }
  for (int64_t i = 0; i < 3; ++i)
    parts.push_back(coupling(C, H, W, MaskKind::kCheckerboard, i % 2));
  auto squeeze = std::make_shared<flows::Squeeze>();
  parts.push_back(squeeze);
  for (int64_t i = 0; i < 3; ++i)
    parts.push_back(coupling(4 * C, H / 2, W / 2, MaskKind::kChannel, i % 2));
  parts.push_back(std::make_shared<flows::Split>(
      4 * C, scale_level(o, 2 * C, H / 2, W / 2, level + 1), /*learned_prior=*/false, 0, 0.0));
  parts.push_back(std::make_shared<flows::Inverse>(squeeze));
  return std::make_shared<flows::Composite>(parts);
}

TransformPtr realnvp_transform(const RealNvpOptions& o, ImageShape s) {
  TORCH_CHECK(o.scales >= 1 && o.hidden >= 1, "realnvp: scales and hidden must be positive");
  check_side("realnvp", "scales=" + std::to_string(o.scales), int64_t{1} << (o.scales - 1), s);
  return logit_then("realnvp", o.alpha, scale_level(o, s.channels, s.height, s.width, 0));
}
}  // namespace

RealNvp::RealNvp(const RealNvpOptions& o, ImageShape shape, int64_t levels)
    : FlowModel(shape, levels, realnvp_transform(o, shape), FlowBase::kNormal,
                dequantizer_for(o, shape, levels)),
      options(o) {}

}  // namespace tame
