// A causal transformer over sub-pixels — Vaswani et al. 2017, "Attention Is
// All You Need" (the decoder), as the autoregressive image model of Parmar et
// al. 2018 ("Image Transformer") and the code-map prior of Esser et al. 2021
// ("Taming Transformers", VQGAN).
//
// Implements: the image as a sequence of D = C H W tokens in tame's sub-pixel
// order (dense_autoregressive.h), each a level in [0, K); the input at step d
// is the token at d - 1 (a start token at d = 0) embedded, plus a learned
// position embedding; `layers` pre-norm blocks of causal multi-head
// self-attention and a two-layer ReLU MLP, each with a residual; a final
// layer norm and a linear head (one logit for K = 2, K logits otherwise).
// The step engine keeps every layer's keys and values of the positions seen
// (a KV cache), so one step costs one position of every layer, and codes
// with the same conditionals in any process.
// Leaves out: dropout, GELU (ReLU keeps the engine's kernels exact), local
// attention windows; the position embedding fixes the image shape.
#pragma once

#include <nlohmann/json.hpp>

#include "tame/models/autoregressive/dense_autoregressive.h"

namespace tame {

struct TransformerOptions {
  int64_t width = 64;
  int64_t layers = 2;
  int64_t heads = 4;
  int64_t mlp = 128;
  /// What each hyper-parameter does: `tame models` prints it.
  static nlohmann::json help() {
    return {
        {"width", "model width: embeddings, attention and residual stream"},
        {"layers", "transformer blocks"},
        {"heads", "attention heads (width must be a multiple)"},
        {"mlp", "hidden units of each block's MLP"},
    };
  }
};
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TransformerOptions, width, layers, heads, mlp)

class Transformer : public DenseAutoregressiveModel {
 public:
  Transformer(const TransformerOptions& options, ImageShape shape, int64_t levels);
  torch::Tensor flat_logits(const torch::Tensor& x) override;
  std::unique_ptr<StepEngine> step_engine() override;
  const TransformerOptions options;

 private:
  struct Block {
    torch::nn::LayerNorm ln1{nullptr}, ln2{nullptr};
    torch::nn::Linear qkv{nullptr}, proj{nullptr}, fc1{nullptr}, fc2{nullptr};
  };
  torch::Tensor attention(Block& b, const torch::Tensor& h);
  torch::nn::Embedding tokens_{nullptr};  // K levels and the start token
  torch::Tensor position_;                // [D, width]
  std::vector<Block> blocks_;
  torch::nn::LayerNorm ln_out_{nullptr};
  torch::nn::Linear head_{nullptr};
};

}  // namespace tame
