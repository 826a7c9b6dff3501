#include "tame/models/flows/glow.h"

namespace tame {

namespace {
using flows::TransformPtr;

TransformPtr glow_level(const GlowOptions& o, int64_t C, int64_t H, int64_t W, int64_t level) {
  auto squeeze = std::make_shared<flows::Squeeze>();
  std::vector<TransformPtr> parts = {squeeze};
  const int64_t c = 4 * C, h = H / 2, w = W / 2;
  for (int64_t i = 0; i < o.steps; ++i) {
    parts.push_back(std::make_shared<flows::ActNorm>(c));
    parts.push_back(std::make_shared<flows::InvConv1x1>(c));
    parts.push_back(std::make_shared<flows::AffineCoupling>(c, h, w, flows::MaskKind::kChannel,
                                                            i % 2 == 1, o.hidden, o.scale_bound));
  }
  if (level + 1 < o.levels)
    parts.push_back(std::make_shared<flows::Split>(c, glow_level(o, c / 2, h, w, level + 1),
                                                   /*learned_prior=*/true, o.hidden,
                                                   o.scale_bound));
  parts.push_back(std::make_shared<flows::Inverse>(squeeze));
  return std::make_shared<flows::Composite>(parts);
}

TransformPtr glow_transform(const GlowOptions& o, ImageShape s) {
  TORCH_CHECK(o.levels >= 1 && o.steps >= 1 && o.hidden >= 1,
              "glow: levels, steps and hidden must be positive");
  check_side("glow", "levels=" + std::to_string(o.levels), int64_t{1} << o.levels, s);
  return logit_then("glow", o.alpha, glow_level(o, s.channels, s.height, s.width, 0));
}
}  // namespace

Glow::Glow(const GlowOptions& o, ImageShape shape, int64_t levels)
    : FlowModel(shape, levels, glow_transform(o, shape), FlowBase::kNormal,
                dequantizer_for(o, shape, levels)),
      options(o) {}

}  // namespace tame
