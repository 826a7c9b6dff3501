#include "tame/models/autoregressive/transformer.h"

#include <cmath>

#include "tame/nn/masked_conv.h"

namespace tame {

namespace nn = torch::nn;

namespace {

constexpr float kLayerNormEps = 1e-5f;  // torch::nn::LayerNorm's default

struct Norm {
  std::vector<float> g, b;
};

Norm to_norm(const nn::LayerNorm& ln) { return {to_floats(ln->weight), to_floats(ln->bias)}; }

// Layer norm of one row in a fixed order: mean, then the biased variance, then
// (x - mean) / sqrt(var + eps) * g + b (sqrt and / are exactly rounded).
void layer_norm(const float* x, int64_t n, const Norm& p, float* out) {
  float mean = 0.0f, var = 0.0f;
  for (int64_t i = 0; i < n; ++i) mean = mean + x[i];
  mean = mean / static_cast<float>(n);
  for (int64_t i = 0; i < n; ++i) var = var + (x[i] - mean) * (x[i] - mean);
  const float inv = 1.0f / std::sqrt(var / static_cast<float>(n) + kLayerNormEps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * p.g[i] + p.b[i];
}

// The transformer step by step: every layer's keys and values of the positions
// seen so far per image (the KV cache), so step d costs one position of every
// layer and attends over d + 1 cached positions.
class TransformerEngine : public DenseEngine {
 public:
  struct Block {
    Norm ln1, ln2;
    steps::Dense qkv, proj, fc1, fc2;
  };
  struct Net {
    int64_t width = 0, heads = 0, mlp = 0;
    std::vector<float> tokens;    // [K + 1][width]
    std::vector<float> position;  // [D][width]
    std::vector<Block> blocks;
    Norm ln_out;
    steps::Dense head;
  };
  TransformerEngine(std::shared_ptr<const Net> net, ImageShape shape, int64_t levels)
      : DenseEngine(shape, levels), net_(std::move(net)) {}
  std::unique_ptr<StepEngine> clone() const override {
    return std::make_unique<TransformerEngine>(net_, shape_, K_);
  }

 protected:
  void hash(steps::Fingerprint& f) const override {
    f.add(int64_t{204});
    f.add(net_->heads);
    f.add(net_->tokens.data(), sizeof(float) * net_->tokens.size());
    f.add(net_->position.data(), sizeof(float) * net_->position.size());
    auto norm = [&](const Norm& p) {
      f.add(p.g.data(), sizeof(float) * p.g.size());
      f.add(p.b.data(), sizeof(float) * p.b.size());
    };
    for (const auto& b : net_->blocks) {
      norm(b.ln1);
      norm(b.ln2);
      for (const auto* d : {&b.qkv, &b.proj, &b.fc1, &b.fc2}) f.add(*d);
    }
    norm(net_->ln_out);
    f.add(net_->head);
  }
  void reset(int64_t n) override {
    const int64_t E = net_->width, L = static_cast<int64_t>(net_->blocks.size());
    keys_.assign(L * n * D_ * E, 0.0f);
    values_.assign(L * n * D_ * E, 0.0f);
    h_.assign(n * E, 0.0f);
    u_.assign(n * E, 0.0f);
    qkv_.assign(n * 3 * E, 0.0f);
    att_.assign(n * E, 0.0f);
    hidden_.assign(n * net_->mlp, 0.0f);
    scores_.assign(D_, 0.0f);
    weights_.assign(D_, 0.0f);
    out_.assign(n * outputs_, 0.0f);
  }
  void compute_dim(int64_t d, float* params) override {
    const Net& net = *net_;
    const int64_t E = net.width;
    for (int64_t b = 0; b < n_; ++b) {
      const int64_t token = d == 0 ? K_ : value(b, d - 1);
      const float* t = net.tokens.data() + token * E;
      const float* p = net.position.data() + d * E;
      for (int64_t i = 0; i < E; ++i) h_[b * E + i] = t[i] + p[i];
    }
    for (size_t l = 0; l < net.blocks.size(); ++l) block(static_cast<int64_t>(l), d);
    for (int64_t b = 0; b < n_; ++b) layer_norm(&h_[b * E], E, net.ln_out, &u_[b * E]);
    steps::dense(net.head, u_.data(), E, n_, out_.data(), outputs_);
    write_logits(out_.data(), params);
  }
  size_t layer_bytes() const override {
    return sizeof(float) * (keys_.size() + values_.size() + h_.size() + u_.size() + qkv_.size() +
                            att_.size() + hidden_.size() + out_.size());
  }

 private:
  void add_to_stream(const float* delta) {
    for (size_t i = 0; i < h_.size(); ++i) h_[i] = h_[i] + delta[i];
  }
  void block(int64_t l, int64_t d) {
    const Block& blk = net_->blocks[l];
    const int64_t E = net_->width;
    for (int64_t b = 0; b < n_; ++b) layer_norm(&h_[b * E], E, blk.ln1, &u_[b * E]);
    steps::dense(blk.qkv, u_.data(), E, n_, qkv_.data(), 3 * E);
    for (int64_t b = 0; b < n_; ++b) {
      const int64_t at = ((l * n_ + b) * D_ + d) * E;
      std::copy_n(&qkv_[b * 3 * E + E], E, &keys_[at]);
      std::copy_n(&qkv_[b * 3 * E + 2 * E], E, &values_[at]);
      attend(l, b, d);
    }
    steps::dense(blk.proj, att_.data(), E, n_, u_.data(), E);
    add_to_stream(u_.data());
    for (int64_t b = 0; b < n_; ++b) layer_norm(&h_[b * E], E, blk.ln2, &u_[b * E]);
    steps::dense(blk.fc1, u_.data(), E, n_, hidden_.data(), net_->mlp);
    steps::relu_inplace(hidden_.data(), n_ * net_->mlp);
    steps::dense(blk.fc2, hidden_.data(), net_->mlp, n_, u_.data(), E);
    add_to_stream(u_.data());
  }
  // Image b's attention output at position d of layer l, every head.
  void attend(int64_t l, int64_t b, int64_t d) {
    const int64_t E = net_->width, dh = E / net_->heads;
    const float scale = 1.0f / std::sqrt(static_cast<float>(dh));
    const float* q = &qkv_[b * 3 * E];
    const float* keys = &keys_[(l * n_ + b) * D_ * E];
    const float* values = &values_[(l * n_ + b) * D_ * E];
    for (int64_t hd = 0; hd < net_->heads; ++hd) {
      const int64_t o = hd * dh;
      float top = -INFINITY;
      for (int64_t t = 0; t <= d; ++t) {
        float s = 0.0f;
        for (int64_t i = 0; i < dh; ++i) s = s + q[o + i] * keys[t * E + o + i];
        scores_[t] = s * scale;
        top = std::max(top, scores_[t]);
      }
      steps::exp_shifted(scores_.data(), d + 1, top, weights_.data());
      float total = 0.0f;
      for (int64_t t = 0; t <= d; ++t) total = total + weights_[t];
      float* out = &att_[b * E + o];
      for (int64_t i = 0; i < dh; ++i) out[i] = 0.0f;
      for (int64_t t = 0; t <= d; ++t) {
        const float w = weights_[t] / total;
        for (int64_t i = 0; i < dh; ++i) out[i] = out[i] + w * values[t * E + o + i];
      }
    }
  }

  std::shared_ptr<const Net> net_;
  std::vector<float> keys_, values_;  // [layer][image][position][width]
  std::vector<float> h_, u_, qkv_, att_, hidden_, scores_, weights_, out_;
};

}  // namespace

Transformer::Transformer(const TransformerOptions& o, ImageShape shape, int64_t levels)
    : DenseAutoregressiveModel(shape, levels), options(o) {
  TORCH_CHECK(o.width >= 1 && o.layers >= 1 && o.heads >= 1 && o.mlp >= 1,
              "transformer: width, layers, heads and mlp must be >= 1");
  TORCH_CHECK(o.width % o.heads == 0, "transformer: width (", o.width,
              ") must be a multiple of heads (", o.heads, ")");
  const int64_t E = o.width;
  tokens_ = register_module("tokens", nn::Embedding(levels + 1, E));
  position_ = register_parameter("position", torch::randn({D_, E}) * 0.02);
  {
    torch::NoGradGuard g;
    tokens_->weight.normal_(0.0, 0.02);
  }
  for (int64_t l = 0; l < o.layers; ++l) {
    const std::string p = "block" + std::to_string(l) + "_";
    Block b;
    b.ln1 = register_module(p + "ln1", nn::LayerNorm(nn::LayerNormOptions({E})));
    b.qkv = register_module(p + "qkv", nn::Linear(E, 3 * E));
    b.proj = register_module(p + "proj", nn::Linear(E, E));
    b.ln2 = register_module(p + "ln2", nn::LayerNorm(nn::LayerNormOptions({E})));
    b.fc1 = register_module(p + "fc1", nn::Linear(E, o.mlp));
    b.fc2 = register_module(p + "fc2", nn::Linear(o.mlp, E));
    blocks_.push_back(b);
  }
  ln_out_ = register_module("ln_out", nn::LayerNorm(nn::LayerNormOptions({E})));
  head_ = register_module("head", nn::Linear(E, outputs_));
}

torch::Tensor Transformer::attention(Block& b, const torch::Tensor& h) {
  const int64_t B = h.size(0), T = h.size(1), E = options.width, H = options.heads, dh = E / H;
  auto qkv = b.qkv(b.ln1(h)).view({B, T, 3, H, dh}).permute({2, 0, 3, 1, 4});  // [3, B, H, T, dh]
  auto scores = torch::matmul(qkv[0], qkv[1].transpose(-2, -1)) / std::sqrt(double(dh));
  auto future =
      torch::ones({T, T}, torch::TensorOptions().dtype(torch::kBool).device(h.device())).triu(1);
  auto p = torch::softmax(scores.masked_fill(future, -INFINITY), -1);
  return b.proj(torch::matmul(p, qkv[2]).transpose(1, 2).reshape({B, T, E}));
}

torch::Tensor Transformer::flat_logits(const torch::Tensor& x) {
  // Unit values back to levels; the input at d is the token at d - 1.
  auto tokens = torch::round((x + 1.0) * (0.5 * static_cast<double>(levels_ - 1))).to(torch::kLong);
  auto start = torch::full({x.size(0), 1}, levels_, tokens.options());
  auto h = tokens_(torch::cat({start, tokens.slice(1, 0, D_ - 1)}, 1)) + position_;
  for (auto& b : blocks_) {
    h = h + attention(b, h);
    h = h + b.fc2(torch::relu(b.fc1(b.ln2(h))));
  }
  return head_(ln_out_(h));
}

std::unique_ptr<StepEngine> Transformer::step_engine() {
  torch::NoGradGuard g;
  auto net = std::make_shared<TransformerEngine::Net>();
  net->width = options.width;
  net->heads = options.heads;
  net->mlp = options.mlp;
  net->tokens = to_floats(tokens_->weight);
  net->position = to_floats(position_);
  for (auto& b : blocks_)
    net->blocks.push_back({to_norm(b.ln1), to_norm(b.ln2), to_step_dense(*b.qkv),
                           to_step_dense(*b.proj), to_step_dense(*b.fc1), to_step_dense(*b.fc2)});
  net->ln_out = to_norm(ln_out_);
  net->head = to_step_dense(*head_);
  return std::make_unique<TransformerEngine>(net, shape_, levels_);
}

}  // namespace tame
