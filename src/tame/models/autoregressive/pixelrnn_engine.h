// The PixelRNN of pixelrnn.h, step by step (step_engine.h): each layer keeps
// its LSTM states of the current and the previous row, so one step costs one
// position of every layer, whatever the image height.
//
// Row LSTM, at (i, j): gates = is(layer input at (i, j-k/2..j)) + ss(h at
// (i-1, j-1..j+1)), the cell from (i-1, j). Diagonal BiLSTM: the skewed
// column-by-column recurrence of the torch model reads, in image coordinates,
// the states at (i-1, j) and (i, j-1) (left to right) or (i-1, j) and (i, j+1)
// (right to left), the cell from the same row's previous step. The left-to-right
// direction runs per position; the right-to-left one reads the whole row, so it
// runs once per row when the row is known (at the first step of the row below,
// which is the row that reads it after the model's shift down).
#pragma once

#include <memory>
#include <vector>

#include "tame/models/autoregressive/step_engine.h"

namespace tame {

class PixelRNNEngine : public StepEngine {
 public:
  /// One LSTM direction: input-to-state over the layer input, state-to-state
  /// over the states (taps in image coordinates), 4h gates [i | f | o | g].
  struct Lstm {
    steps::Conv is, ss;
  };
  struct Layer {
    Lstm fwd;          // Row LSTM, or the Diagonal BiLSTM's left-to-right direction
    Lstm bwd;          // the right-to-left direction (diagonal only; is has the one tap (0, 0))
    steps::Dense out;  // 1x1, h -> h, added to the layer input
  };
  struct Net {
    bool diagonal = false;
    int64_t hidden = 0;
    steps::Conv input;  // mask A, C -> h
    std::vector<Layer> layers;
    steps::Dense out1, out2;
  };
  PixelRNNEngine(std::shared_ptr<const Net> net, int64_t channels, int64_t levels);
  std::unique_ptr<StepEngine> clone() const override;

 protected:
  Identity identity() const override;
  void hash(steps::Fingerprint& f) const override;
  int64_t input_rows() const override;
  void start(int64_t n) override;
  void compute(SubPixel p, float* params) override;
  size_t layer_bytes() const override;

 private:
  // The forward direction of layer l at (i, j), its input already in in_[l]
  // (and in cur [n][h], which the Diagonal BiLSTM's 1x1 reads directly):
  // writes the new state and cell into h_[l] and c_[l].
  void forward_state(size_t l, int64_t i, int64_t j, const float* cur);
  void right_to_left_row(int64_t r);  // every layer's right-to-left states of row r
  // gates = g_ (the input-to-state part) + ss over the state ring at (i, j);
  // then image b's cell from c_prev(b) into c(b) and h(b).
  template <class CPrev, class Out>
  void step_cells(const steps::Conv& ss, const float* h_ring, int64_t i, int64_t j, CPrev c_prev,
                  Out out);

  std::shared_ptr<const Net> net_;
  engine_parts::ColourHead head_;
  std::vector<std::vector<float>> in_;  // per layer: its input, one row [n][W][h]
  std::vector<std::vector<float>> h_;   // per layer: states, two rows [n][2][W][h]
  std::vector<std::vector<float>> c_;   // per layer: cells, two rows [n][2][W][h]
  std::vector<std::vector<float>> hb_;  // per layer: right-to-left states, two rows
  std::vector<std::vector<float>> cb_;  // per layer: right-to-left cells, one row [n][W][h]
  int64_t backward_done_ = -1;          // hb_ holds row backward_done_
  std::vector<float> cur_, rows_, g_, s_, gb_, zero_;
};

}  // namespace tame
