#include "tame/eval/evaluate.h"

#include "tame/dist/likelihood.h"

namespace tame {

EvalResult evaluate(ImageModel& model, const torch::Tensor& images, int64_t batch_size,
                    int64_t iw_samples, const std::function<void(int64_t, int64_t)>& on_batch) {
  model.check_input(images);
  EvalResult r;
  r.bound = model.bound();
  const int64_t n = images.size(0);
  r.images = n;
  if (r.bound == Bound::kNone) return r;  // nothing to score: no made-up number
  const bool was_training = model.is_training();
  model.eval();
  r.iw_samples = model.bound() == Bound::kExact ? 1 : std::max<int64_t>(1, iw_samples);
  double total = 0;
  {
    c10::InferenceMode guard;
    for (int64_t b = 0; b < n; b += batch_size) {
      auto x = images.slice(0, b, std::min(n, b + batch_size)).to(model.device());
      auto nll = r.iw_samples > 1 ? model.nll_iw(x, r.iw_samples) : model.nll(x);
      total += nll.to(torch::kDouble).sum().item<double>();
      if (on_batch) on_batch(std::min(n, b + batch_size), n);
    }
  }
  model.train(was_training);
  r.nll_nats = n > 0 ? total / static_cast<double>(n) : 0.0;
  r.bpd = bits_per_dim(r.nll_nats, model.modelled_dims(images));
  return r;
}

}  // namespace tame
