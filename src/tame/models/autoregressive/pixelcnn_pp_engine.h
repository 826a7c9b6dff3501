// The PixelCNN++ of pixelcnn_pp.h, step by step (step_engine.h): cache-every,
// run-every (Ramachandran et al. 2017) for a network with strided and
// upsampling layers.
//
// The network is a list of nodes, one per feature map the torch model computes
// (a stream's first layer, each gated resnet's inner map and output, each
// strided and transposed convolution), each at its own resolution (level l:
// ceil(H / 2^l) x ceil(W / 2^l)), in the order the model computes them. A node
// is a sum of terms, each a convolution over the channel concatenation of some
// earlier nodes (or the image with its channel of ones), optionally through
// concat_elu, with a stride, or transposed (x2) with one set of taps per
// output parity, and optionally shifted (the model's down_shift and
// right_shift, which zero the first row or column, bias included). A gated
// node adds x + a * sigmoid(b) over its terms' 2F outputs.
//
// Each step pulls: the head needs the last node at (i, j); a position of a
// node is computed once, when first needed, after the positions it reads
// (which are computed in turn). So a whole image costs one pass of the network,
// and each strided or upsampling layer runs at its own resolution when its
// output is first read. A node keeps a ring of rows; the rows a node must hold
// while the head works on image row i are found, before a block starts, by
// carrying each row interval back through the terms' taps (exact, for this
// height), so memory grows with the width and not the height. Every read
// checks that its row is still held and that an image pixel it reads is
// already known (a logic error otherwise, never a silent wrong value).
//
// The head writes the pixel's mixture parameters (mixture_features(C, M)) once,
// at colour 0; each colour's conditional is the mixture given the colours
// before it in the pixel, so the network runs once per pixel, not once per
// sub-pixel. Its tables follow dist/integer_cdf.h's MixtureEdges (rule 2), so
// a symbol costs a few CDF entries and not the whole table; files written
// under the masses of logistic_mixture_cdf (rule 1, before revision 2) carry
// another fingerprint and decode through earlier_rule().
#pragma once

#include <array>
#include <memory>
#include <vector>

#include "tame/dist/integer_cdf.h"
#include "tame/models/autoregressive/step_engine.h"

namespace tame {

class PixelCnnPPEngine : public StepEngine {
 public:
  /// The image with its channel of ones, as a term's input node.
  static constexpr int64_t kImage = -1;
  struct Term {
    std::vector<int64_t> inputs;       // node indices (or kImage), channels concatenated
    bool concat_elu = false;           // reads elu([x, -x]) of the concatenation
    int64_t stride = 1;                // reads input (stride i + dy, stride j + dx)
    bool up = false;                   // transposed x2: reads input (i / 2 + dy, j / 2 + dx)
    int64_t shift_y = 0, shift_x = 0;  // output (i, j) is the convolution at (i + shift_y,
                                       // j + shift_x); zero (no bias) where that is < 0
    std::vector<steps::Conv> convs;    // one; four when up: output parity (i % 2) 2 + j % 2
  };
  struct Node {
    int64_t level = 0;     // resolution: ceil(H / 2^level) rows
    int64_t channels = 0;  // F
    std::vector<Term> terms;
    int64_t residual = -1;  // >= 0: out = node[residual] + a * sigmoid(b), [a | b] = sum of terms
  };
  struct Net {
    int64_t mixtures = 0;
    std::vector<Node> nodes;  // every input of a node comes before it; the last feeds the head
    steps::Dense head;        // elu(last node) -> mixture_features(C, M)
  };
  /// The most colours an image may have.
  static constexpr int64_t kMaxChannels = 16;
  /// The frequency rules of the tables (see above).
  static constexpr int kMassRule = 1, kEdgeRule = 2;
  PixelCnnPPEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels,
                   int rule = kEdgeRule);
  std::unique_ptr<StepEngine> clone() const override;
  std::shared_ptr<const ImageCoder> earlier_rule(uint64_t fingerprint) const override;
  /// A fresh engine of these weights under another frequency rule.
  std::unique_ptr<PixelCnnPPEngine> with_rule(int rule) const;
  int rule() const { return rule_; }

 protected:
  Identity identity() const override;
  void hash(steps::Fingerprint& f) const override;
  int64_t input_rows() const override;
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  size_t layer_bytes() const override;
  double write_cdf(int64_t b, SubPixel p, const float* params, uint32_t precision,
                   double temperature, uint32_t* cdf, int64_t value) const override;
  Symbol code_symbol(int64_t b, SubPixel p, const float* params, uint32_t precision,
                     double temperature, int64_t value, uint32_t slot, double* bits) const override;

 private:
  struct Cache {
    int64_t height = 0, width = 0, rows = 0;
    std::vector<float> data;   // [n][rows][width][channels], row r in slot r % rows
    std::vector<float> elu;    // [n][rows][width][2 channels]: elu([x, -x]), if a term reads it
    std::vector<int64_t> tag;  // per slot: the row it holds (-1: none)
    std::vector<char> done;    // per slot and column: computed
  };
  // Rows each node (and, last, the image) must hold: max over the head's rows.
  std::vector<int64_t> ring_rows(int64_t height) const;
  void ensure(int64_t node, int64_t i, int64_t j);
  void run(int64_t node, int64_t i, int64_t j);
  // The raw channels of input node `in` at (y, x) for image b: its ring, or the
  // image (unknown pixels refused), zeros outside the map.
  const float* read(int64_t in, int64_t b, int64_t y, int64_t x, bool elu = false) const;
  // The size of input node `in`'s map (the image's for kImage), once start() ran.
  int64_t map_height(int64_t in) const;
  int64_t map_width(int64_t in) const;

  // Image b's colours of pixel p before colour p.c (the rest 0).
  std::array<uint16_t, kMaxChannels> earlier(int64_t b, SubPixel p) const;
  // edges_ for image b's sub-pixel p (rule 2).
  void prepare_edges(int64_t b, SubPixel p, const float* params, uint32_t precision,
                     double temperature) const;

  std::shared_ptr<const Net> net_;
  int rule_;
  mutable MixtureEdges edges_;
  std::vector<char> elu_read_;  // per node: some term reads it through concat_elu
  std::vector<Cache> cache_;
  int64_t pixel_ = 0;  // raster index of the pixel the head is computing
  std::vector<float> pix_, rows_, acc_, out_, t_, gate_;
};

}  // namespace tame
