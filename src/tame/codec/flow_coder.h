// Local bits-back coding of a normalizing flow (Ho, Lohn & Abbeel 2019,
// "Compression with Flows via Local Bits-Back Coding"), over uniform or
// variational dequantization, chained over a block's images like BB-ANS
// (codec/bits_back.h).
//
// A flow maps dequantized y = (x + u) / K to z = f(y) ~ N(0, I) through steps
// that each change some coordinates of a state by an elementwise map given the
// coordinates that stay: y_b = a x_b + t, with (a, t) from the others (an
// affine or additive coupling, ActNorm, NICE's scale, a split's learned prior,
// one row of Glow's 1x1 convolution in LU form), or y = g(x) (the logit), with
// permutations (squeezes, the LU form's P) between them. Each such map is
// invertible given what stays, so local bits-back coding applies to it one
// coordinate at a time, with no Jacobian beyond the coordinate's own slope.
//
// Grids. Every value the coder handles lies on a grid: the state on
// multiples of 2^-16, the dequantized pixels y on cells of 2^-Q / K (Q = 24 -
// floor(log2 K), or 28 - floor(log2 K) under variational dequantization, whose
// logit of u is steep near 0 and 1), the noise u on cells of 2^-Q. A Gaussian on a grid is coded
// with the integer frequencies of its cells (24-bit tables, every cell >= 1,
// computed where the coder needs them from det_normal_cdf), over a window of
// standard deviations around its mean; a window of more than 4096 cells is
// coded as its group of cells, then the cell in the group, so that no table
// has more than 4096 entries. A window that may miss a value has an escape,
// after which the value's offset is coded raw (48 bits).
//
// One step, one coordinate x -> y = a x + t. The encoder, which has x,
//   1. pops y with q = N(a x + t, s_q^2) on y's grid (bits back),
//   2. pushes x with p = N((y - t) / a, s_p^2) on x's grid, s_p = s_q / |a|;
// the decoder, which has y and the coordinates that stay (so a and t), pops x
// with p and pushes y with q. Net: log q(y) - log p(x) = -log|a| plus the
// cells' sizes, which cancel along the chain of steps. s_q is the noise
// (2^-12 for the image's flow, 2^-9 for the dequantizer's), raised where a
// cell would be wider than s_p / 2. For the logit, q = N(g(x), s_q^2) and
// p = N(g^-1(y), (s_q / g'(g^-1(y)))^2), -log g'(x) to first order.
// At the end, z is pushed with N(0, 1) on the state's grid.
//
// One image x. The encoder pops u: uniform (Q bits a sub-pixel) or, with
// variational dequantization, by running q(u|x)'s own flow as a decoder (pop
// eps with N(0, 1), then its steps backwards), then pushes y = (x + u) / K
// through the flow. The decoder pops y through the flow backwards, which gives
// x = floor(K y) and u, then pushes u back. The image costs
//   -log p(y) + log q(u|x) + D log K,
// the one-draw bound `tame eval` reports, up to the grids and the noise's
// perturbation of the path (second order in the noise).
//
// Determinism: the networks run on the fixed-order kernels
// (nn/feedforward.h), the elementwise maps on det_exp_double and
// det_log_double, the tables on det_normal_cdf, all in + - * / with
// -ffp-contract=off: the encoder and decoder compute every frequency bit for
// bit, in any process and with any thread count. Free of LibTorch.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "tame/codec/image_coder.h"
#include "tame/nn/feedforward.h"

namespace tame {

/// One step of a flow program, from the data side to the latent side. The
/// state is C H W coordinates, channels first; a step acts on the first
/// channels x height x width of them (a split's inner flow on the leading
/// half of the channels).
struct FlowStep {
  enum class Kind {
    kPermute,   // new[i] = old[from[i]]: free
    kScale,     // y = a[i] x + t[i] for every coordinate (ActNorm, NICE's scale)
    kCoupling,  // the coordinates with mask 0 and channel >= first change, by
                // y = x e^s + t (or, inverse, (x - t) e^-s) with (s, t) from
                // `net` over the coordinates that stay and the context map
    kRow,       // channel `row` at every pixel: y = sum_j w[j] x_j (a = w[row])
    kLogit,     // every coordinate: y = logit(alpha + (1 - 2 alpha) x)
  };
  Kind kind = Kind::kPermute;
  int64_t channels = 0, height = 0, width = 0;
  std::vector<int64_t> from;  // kPermute
  std::vector<double> a, t;   // kScale
  std::vector<uint8_t> mask;  // kCoupling: 1 = conditions; empty: every coordinate changes
  int64_t reads = 0;          // kCoupling: leading channels net reads (masked to 0)
  bool context = false;       // kCoupling: net also reads the program's context map
  int64_t first = 0;          // kCoupling: the first channel that changes
  bool additive = false;      // kCoupling: net gives t alone (a = 1)
  bool shift_first = false;   // kCoupling: net gives t then s (else s then t)
  bool inverse = false;       // kCoupling: y = (x - t) e^-s
  double bound = 0;           // kCoupling: s = bound tanh(raw / bound); 0: s = raw
  steps::Feedforward net;     // kCoupling: [H][W][reads + context] -> [H][W][(1|2)(C - first)]
  int64_t row = 0;            // kRow
  std::vector<double> w;      // kRow: C weights
  double alpha = 0;           // kLogit
};

/// A step of `kind` on the state's first channels x height x width coordinates.
inline FlowStep flow_step(FlowStep::Kind kind, int64_t channels, int64_t height, int64_t width) {
  FlowStep s;
  s.kind = kind;
  s.channels = channels;
  s.height = height;
  s.width = width;
  return s;
}

/// A flow from the data side (y in [0, 1)^D, or u in (0, 1)^D) to N(0, I).
struct FlowProgram {
  int64_t channels = 0, height = 0, width = 0;
  std::vector<FlowStep> steps;
  /// The map the couplings with `context` read, computed once per image from
  /// the image (unit_image levels): [H][W][C] -> [H][W][n]; absent: none.
  std::optional<steps::Feedforward> context;
  void hash(steps::Fingerprint& f) const;
};

/// The program's map on plain values, without coding or grids: the data side
/// y (D values) to z, adding log|det dz/dy| (nats) to *log_det; `context` is
/// the context network's map of the image (or null). What the coder's steps
/// compute, for tests against the torch flow.
std::vector<double> flow_map(const FlowProgram& p, std::vector<double> y, const float* context,
                             double* log_det);

/// A flow model for its coder: the flow over y, and with variational
/// dequantization q(u|x)'s flow from u to its noise (its context reads x).
struct FlowNets {
  FlowProgram flow;
  std::optional<FlowProgram> dequantizer;
};

class FlowCoder : public ImageCoder {
 public:
  /// A coder of `size` images with values < levels; throws Error when the
  /// programs do not fit them.
  FlowCoder(FlowNets nets, ImageSize size, int64_t levels);
  int64_t channels() const override { return size_.channels; }
  int64_t levels() const override { return levels_; }
  uint64_t fingerprint() const override;
  int64_t max_block() const override;
  int64_t default_block(int64_t images) const override;
  void push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                   const UnitsDone& done) const override;
  ImageBlock pop_images(RansMessage& m, int64_t n, ImageSize size,
                        const UnitsDone& done) const override;
  /// Bits of u per sub-pixel: the grids' Q.
  int noise_bits() const { return noise_bits_; }

 private:
  void push_image(RansMessage& m, const uint16_t* x, double& ideal, double& model) const;
  void pop_image(RansMessage& m, uint16_t* x) const;
  void check_size(ImageSize size) const;

  FlowNets nets_;
  ImageSize size_;
  int64_t levels_;
  int noise_bits_;
};

}  // namespace tame
