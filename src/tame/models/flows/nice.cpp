#include "tame/models/flows/nice.h"

namespace tame {

namespace {
flows::TransformPtr nice_transform(const NiceOptions& o, ImageShape s) {
  TORCH_CHECK(o.couplings >= 1 && o.hidden >= 1, "nice: couplings and hidden must be positive");
  TORCH_CHECK(o.alpha > 0 && o.alpha < 0.5, "nice: alpha must be in (0, 0.5), got ", o.alpha);
  // One flat list (logit first), the layout nice checkpoints have always had.
  std::vector<flows::TransformPtr> parts = {std::make_shared<flows::Logit>(o.alpha)};
  for (int64_t i = 0; i < o.couplings; ++i)
    parts.push_back(std::make_shared<flows::AdditiveCoupling>(
        s.channels, s.height, s.width, flows::MaskKind::kCheckerboard, i % 2 == 1, o.hidden));
  parts.push_back(std::make_shared<flows::DiagonalScale>(s.channels, s.height, s.width));
  return std::make_shared<flows::Composite>(parts);
}
}  // namespace

Nice::Nice(const NiceOptions& o, ImageShape shape, int64_t levels)
    : FlowModel(shape, levels, nice_transform(o, shape), FlowBase::kNormal,
                dequantizer_for(o, shape, levels)),
      options(o) {}

}  // namespace tame
