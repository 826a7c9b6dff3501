#include "tame/codec/flow_coder.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <tuple>

#include "tame/codec/bits_back.h"    // det_normal_cdf, det_exp_double, det_log_double, the chain
#include "tame/codec/model_codec.h"  // kMaxFileBlock
#include "tame/error.h"

namespace tame {

namespace {

constexpr uint32_t kTableBits = 24;        // the Gaussians' tables sum to 2^24
constexpr uint32_t kEscapeFreq = 1u << 4;  // a coding table's escape: 2^-20 of its mass
constexpr int64_t kMaxEntries = 4096;      // entries of one table (a window: two tables)
constexpr int kStateBits = 16;             // the state's grid: multiples of 2^-16
constexpr int kFlowNoiseBits = 12;         // s_q of the image's flow: 2^-12
constexpr int kDequantizerNoiseBits = 9;   // s_q of q(u|x)'s flow: 2^-9
constexpr int kDataBits = 24;              // y's cells: 2^-Q / K, about 2^-24 ...
constexpr int kDequantizerDataBits =
    28;  // ... and 2^-28 under q(u|x), whose logit is steep at 0 and 1
// Windows in standard deviations: a table the encoder pops ("draws") from has
// no escape, and a table it pushes onto is wider, so that the value it pushes
// is inside in all but rare cases, and has an escape for those.
constexpr double kDrawRadius = 6, kCodeRadius = 8;
constexpr int64_t kMaxCells = int64_t{1} << 24;
constexpr uint64_t kRawHalf = uint64_t{1} << 47;  // an escaped offset, 48 bits
constexpr int64_t kUnbounded = int64_t{1} << 50;
constexpr double kLog2E = 1.4426950408889634;

double log2_det(double x) { return det_log_double(x) * kLog2E; }

struct Grid {
  double step = 1, offset = 0;
  int64_t lo = -kUnbounded, hi = kUnbounded;
  double value(int64_t k) const { return (static_cast<double>(k) + offset) * step; }
};

const Grid kStateGrid{std::ldexp(1.0, -kStateBits), 0.0, -kUnbounded, kUnbounded};

// Phi^-1(p), p in (0, 1), to about 1e-9 relative (Acklam's rational
// approximation, libm's log and sqrt): a search's starting point only, so its
// last bits never reach a table.
double approximate_inverse_normal(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  p = std::min(std::max(p, 1e-300), 1.0 - 1e-16);
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log1p(-p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  const double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// N(mu, s^2) over cells first .. first + n - 1 of a grid near mu (the cells
// within `radius` deviations, cut to the grid's range). A window of more than
// 4096 cells is coded in two tables: its groups of S cells (S a power of 2,
// at most 4096 groups), then the cell within its group, so that no table has
// more than 4096 entries and the frequency of 1 every entry is given costs
// little. Each table sums to 2^24: cdf(i) = floor(F_i M) + i, F_i the
// normalized mass below entry i, M = 2^24 - entries (- the escape); the mass
// between two edges is a difference of Phi on the edges' side of the mean, so
// that tail cells keep their relative precision. Entries are computed on demand.
class CellGaussian {
 public:
  CellGaussian(double mu, double s, const Grid& g, bool draw) : g_(g), mu_(mu), escape_(!draw) {
    if (!std::isfinite(mu) || !std::isfinite(s) || !(s > 0) || std::fabs(mu / g.step) > 1e15)
      throw Error("flow coder: the flow gives a value out of range (not finite, or too large)");
    inv_s_ = 1.0 / s;
    const double radius = draw ? kDrawRadius : kCodeRadius;
    const int64_t half =
        std::min<int64_t>(kMaxCells / 2, static_cast<int64_t>(std::ceil(radius * s / g.step)) + 1);
    centre_ =
        std::clamp(static_cast<int64_t>(std::floor(mu / g.step - g.offset + 0.5)), g.lo, g.hi);
    first_ = std::max(g.lo, centre_ - half);
    n_ = std::min(g.hi, centre_ + half) - first_ + 1;
    while ((n_ + group_ - 1) / group_ > kMaxEntries) group_ *= 2;
    top_.emplace(this, 0, n_, group_, escape_);
  }
  CellGaussian(const CellGaussian&) = delete;  // its table points back at it
  CellGaussian& operator=(const CellGaussian&) = delete;
  // Pushes cell k (by the escape when outside the window); returns its bits.
  double push(RansMessage& m, int64_t k) const {
    const int64_t i = k - first_;
    if (i >= 0 && i < n_) {
      const int64_t j = i / group_;
      double bits = 0;
      if (group_ > 1)
        bits += push_entry(m, Table{this, j * group_, std::min(n_, (j + 1) * group_), 1, false},
                           i - j * group_);
      return bits + push_entry(m, *top_, j);
    }
    const int64_t d = k - centre_;
    if (!escape_ || d <= -static_cast<int64_t>(kRawHalf) || d >= static_cast<int64_t>(kRawHalf))
      throw Error("flow coder: a value outside its table");
    const uint64_t r = static_cast<uint64_t>(d) + kRawHalf;
    for (int s = 0; s < 3; ++s)
      rans_push(m, static_cast<uint32_t>((r >> (16 * s)) & 0xffff), 1, 16);
    rans_push(m, top_->cdf(top_->entries()), kEscapeFreq, kTableBits);
    return kTableBits - std::log2(static_cast<double>(kEscapeFreq)) + 48;
  }
  // Pops a cell; takes its bits off `ideal`.
  int64_t pop(RansMessage& m, double& ideal) const {
    const Table& t = *top_;
    const uint32_t escape_start = t.cdf(t.entries());
    if (rans_peek(m, kTableBits) >= escape_start) {  // only a coding table has slots there
      rans_pop(m, escape_start, kEscapeFreq, kTableBits);
      uint64_t r = 0;
      for (int i = 3; i-- > 0;) {
        const uint32_t v = rans_peek(m, 16);
        rans_pop(m, v, 1, 16);
        r |= static_cast<uint64_t>(v) << (16 * i);
      }
      const int64_t k = centre_ + static_cast<int64_t>(r - kRawHalf);
      if (k < g_.lo || k > g_.hi)
        throw Error("flow coder: an escaped value off its grid (corrupt data)");
      ideal -= kTableBits - std::log2(static_cast<double>(kEscapeFreq)) + 48;
      return k;
    }
    const int64_t j = pop_entry(m, t, ideal);
    if (group_ == 1) return first_ + j;
    const Table c{this, j * group_, std::min(n_, (j + 1) * group_), 1, false};
    return first_ + j * group_ + pop_entry(m, c, ideal);
  }

 private:
  // One table: entries over cells [a, b) in steps of `step` cells. Phi at
  // its lower edge and its mass are computed once; an entry costs one Phi.
  struct Table {
    Table(const CellGaussian* owner, int64_t from, int64_t to, int64_t every, bool esc)
        : g(owner), a(from), b(to), step(every), escape(esc) {
      const double ta = g->edge(a), tb = g->edge(std::min(b, g->n_));
      upper = ta > 0;
      base = upper ? det_normal_cdf(-ta) : det_normal_cdf(ta);
      total = upper ? base - det_normal_cdf(-tb) : det_normal_cdf(tb) - base;
      space = static_cast<double>((uint32_t{1} << kTableBits) - (escape ? kEscapeFreq : 0) -
                                  static_cast<uint32_t>(entries()));
    }
    const CellGaussian* g;
    int64_t a, b, step;
    bool escape, upper = false;
    double base = 0, total = 0, space = 0;
    int64_t entries() const { return (b - a + step - 1) / step; }
    uint32_t cdf(int64_t i) const {
      const int64_t n = entries();
      if (i <= 0) return 0;
      if (i >= n) return static_cast<uint32_t>(space) + static_cast<uint32_t>(n);
      double f;
      if (total > 1e-300) {
        const double t = g->edge(a + i * step);
        f = (upper ? base - det_normal_cdf(-t) : det_normal_cdf(t) - base) / total;
      } else {
        f = static_cast<double>(i * step) / static_cast<double>(b - a);
      }
      f = std::min(1.0, std::max(0.0, f));
      return static_cast<uint32_t>(std::floor(f * space)) + static_cast<uint32_t>(i);
    }
    // Where slot s should lie, from an approximate inverse of Phi: only a
    // starting point for find(), which settles on the entry by the table itself.
    int64_t guess(uint32_t s) const {
      const double m = static_cast<double>(s) / std::ldexp(1.0, kTableBits) * total;
      if (!(total > 1e-300))
        return static_cast<int64_t>(static_cast<double>(s) / space * entries());
      const double t =
          upper ? -approximate_inverse_normal(base - m) : approximate_inverse_normal(base + m);
      const double x = (t / g->inv_s_ + g->mu_) / g->g_.step - g->g_.offset + 0.5 -
                       static_cast<double>(g->first_ + a);
      if (!(x > 0)) return 0;
      return static_cast<int64_t>(std::min(x / static_cast<double>(step), 1e15));
    }
    // The entry i with cdf(i) <= s < cdf(i + 1), and those two values: from
    // the guess, a few steps to either side, or else bisection.
    std::tuple<int64_t, uint32_t, uint32_t> find(uint32_t s) const {
      const int64_t n = entries();
      int64_t i = std::min(std::max<int64_t>(guess(s), 0), n - 1);
      uint32_t lo = cdf(i);
      for (int walk = 0; walk < 6; ++walk) {
        if (lo > s) {  // above the slot: one entry down (cdf(0) = 0, so i > 0)
          const uint32_t hi = lo;
          lo = cdf(--i);
          if (lo <= s) return {i, lo, hi};
          continue;
        }
        const uint32_t hi = cdf(i + 1);
        if (hi > s) return {i, lo, hi};
        lo = hi;  // below it: one entry up
        ++i;
      }
      int64_t l = 0, h = n;  // cdf(l) <= s < cdf(h)
      while (h - l > 1) {
        const int64_t mid = l + (h - l) / 2;
        (cdf(mid) <= s ? l : h) = mid;
      }
      return {l, cdf(l), cdf(l + 1)};
    }
  };
  static double push_entry(RansMessage& m, const Table& t, int64_t i) {
    const uint32_t start = t.cdf(i), end = t.cdf(i + 1);
    if (end <= start) throw Error("flow coder: a cell without mass");
    rans_push(m, start, end - start, kTableBits);
    return kTableBits - std::log2(static_cast<double>(end - start));
  }
  static int64_t pop_entry(RansMessage& m, const Table& t, double& ideal) {
    const auto [i, start, end] = t.find(rans_peek(m, kTableBits));
    if (end <= start) throw Error("flow coder: a cell without mass");
    rans_pop(m, start, end - start, kTableBits);
    ideal -= kTableBits - std::log2(static_cast<double>(end - start));
    return i;
  }
  // The standardized lower edge of cell i.
  double edge(int64_t i) const { return (g_.value(first_ + i) - 0.5 * g_.step - mu_) * inv_s_; }

  Grid g_;
  double mu_, inv_s_ = 1;
  bool escape_;
  int64_t centre_ = 0, first_ = 0, n_ = 0, group_ = 1;
  std::optional<Table> top_;  // the window's groups (its cells when group_ = 1)
};

// What one run of a program adds up: the ideal bits (pushes less pops) and
// log2 of the density of the data side along the coded path.
struct Tally {
  double bits = 0, log2_density = 0;
};

// A program as one image's run sees it: its grids and noise, whether the
// encoder draws from p (q(u|x)'s flow, which the encoder runs backwards) or
// from q (the image's flow), and the image's context map.
struct Run {
  const FlowProgram& program;
  Grid data;
  double noise;
  bool p_draws;
  const float* context;  // the program's context map, or null
};

// The coordinates an affine step changes and their (a, t), from the state's
// values v (the coordinates that change are never read).
struct Affine {
  std::vector<int64_t> coord;
  std::vector<double> a, t;
};

double bounded(double raw, double bound) {
  if (bound <= 0) return raw;
  const double e = det_exp_double(-2.0 * raw / bound);  // tanh(r) = (1 - e^-2r) / (1 + e^-2r)
  return bound * (1.0 - e) / (1.0 + e);
}

bool changes(const FlowStep& s, int64_t c, int64_t i) {
  return c >= s.first && (s.mask.empty() || s.mask[i] == 0);
}

Affine coupling_of(const Run& r, const FlowStep& s, const std::vector<double>& v) {
  const int64_t P = s.height * s.width, C = s.channels,
                ctx = s.context ? r.program.context->output().channels : 0, in_ch = s.reads + ctx,
                n = C - s.first, out_ch = (s.additive ? 1 : 2) * n;
  std::vector<float> in(P * in_ch), out(P * out_ch);
  for (int64_t p = 0; p < P; ++p) {
    for (int64_t c = 0; c < s.reads; ++c) {
      const int64_t i = c * P + p;
      in[p * in_ch + c] = s.mask.empty() || s.mask[i] ? static_cast<float>(v[i]) : 0.0f;
    }
    for (int64_t c = 0; c < ctx; ++c) in[p * in_ch + s.reads + c] = r.context[p * ctx + c];
  }
  s.net.run(in.data(), out.data());
  Affine f;
  for (int64_t c = s.first; c < C; ++c)
    for (int64_t p = 0; p < P; ++p) {
      const int64_t i = c * P + p;
      if (!changes(s, c, i)) continue;
      const float* o = out.data() + p * out_ch;
      const int64_t j = c - s.first;
      const double shift = s.additive      ? o[j]
                           : s.shift_first ? o[j]
                                           : o[n + j],
                   ls = s.additive ? 0.0 : bounded(s.shift_first ? o[n + j] : o[j], s.bound);
      f.coord.push_back(i);
      if (s.inverse) {  // y = (x - t) e^-s
        const double a = det_exp_double(-ls);
        f.a.push_back(a);
        f.t.push_back(-shift * a);
      } else {
        f.a.push_back(det_exp_double(ls));
        f.t.push_back(shift);
      }
    }
  return f;
}

Affine affine_of(const Run& r, const FlowStep& s, const std::vector<double>& v) {
  const int64_t P = s.height * s.width, n = s.channels * P;
  Affine f;
  switch (s.kind) {
    case FlowStep::Kind::kScale:
      for (int64_t i = 0; i < n; ++i) f.coord.push_back(i);
      f.a = s.a;
      f.t = s.t;
      return f;
    case FlowStep::Kind::kCoupling:
      return coupling_of(r, s, v);
    case FlowStep::Kind::kRow:
      for (int64_t p = 0; p < P; ++p) {
        double t = 0;
        for (int64_t j = 0; j < s.channels; ++j)
          if (j != s.row) t += s.w[j] * v[j * P + p];
        f.coord.push_back(s.row * P + p);
        f.a.push_back(s.w[s.row]);
        f.t.push_back(t);
      }
      return f;
    default:
      throw Error("flow coder: not an affine step");
  }
}

std::vector<double> values_of(const std::vector<int64_t>& k, const Grid& g) {
  std::vector<double> v(k.size());
  for (size_t i = 0; i < k.size(); ++i) v[i] = g.value(k[i]);
  return v;
}

// The logit's pieces: g(x), g'(x), and g^-1(y) with its slope's inverse.
struct Logit {
  double alpha;
  double forward(double x) const {
    const double p = alpha + (1 - 2 * alpha) * x;
    return det_log_double(p) - det_log_double(1 - p);
  }
  double slope(double x) const {
    const double p = alpha + (1 - 2 * alpha) * x;
    return (1 - 2 * alpha) / (p * (1 - p));
  }
  // {g^-1(y), 1 / g'(g^-1(y))}, the sigmoid's slope from e^-|y| without cancellation.
  std::pair<double, double> inverse(double y) const {
    const double e = det_exp_double(-std::fabs(y)), sig = y >= 0 ? 1 / (1 + e) : e / (1 + e);
    return {(sig - alpha) / (1 - 2 * alpha), e / ((1 + e) * (1 + e)) / (1 - 2 * alpha)};
  }
};

// One step's map of each coordinate it changes, x -> y: the Gaussian q over
// y given x, the Gaussian p over x given y, and log2 of the slope at x. For
// y = a x + t, q = N(a x + t, s_q^2) and p = N((y - t) / a, (s_q / |a|)^2)
// with s_q = max(noise, 2 |a| cell_x); for the logit, q = N(g(x), noise^2)
// and p = N(g^-1(y), (noise / g'(g^-1(y)))^2), its scale at least 2 cells.
struct Gaussian {
  double mean, scale;
};
class CoordinateMap {
 public:
  // The step's map over the state's values v, with x on `old_grid`.
  CoordinateMap(const Run& r, const FlowStep& s, const std::vector<double>& v, const Grid& old_grid)
      : logit_(s.kind == FlowStep::Kind::kLogit),
        g_{s.alpha},
        noise_(r.noise),
        cell_(old_grid.step),
        n_(s.channels * s.height * s.width) {
    if (logit_) return;
    f_ = affine_of(r, s, v);
    for (double a : f_.a)
      if (a == 0) throw Error("flow coder: a step with slope 0");
  }
  int64_t size() const { return logit_ ? n_ : static_cast<int64_t>(f_.coord.size()); }
  int64_t coord(int64_t j) const { return logit_ ? j : f_.coord[j]; }
  Gaussian q(int64_t j, double x) const {
    if (logit_) return {g_.forward(x), noise_};
    return {f_.a[j] * x + f_.t[j], q_scale(j)};
  }
  Gaussian p(int64_t j, double y) const {
    if (logit_) {
      const auto [mu, inv_slope] = g_.inverse(y);
      return {mu, std::max(noise_ * inv_slope, 2 * cell_)};
    }
    return {(y - f_.t[j]) / f_.a[j], q_scale(j) / std::fabs(f_.a[j])};
  }
  double log2_slope(int64_t j, double x) const {
    return log2_det(logit_ ? g_.slope(x) : std::fabs(f_.a[j]));
  }
  // y itself, with no noise (flow_map()).
  double apply(int64_t j, double x) const { return q(j, x).mean; }

 private:
  double q_scale(int64_t j) const { return std::max(noise_, 2 * cell_ * std::fabs(f_.a[j])); }
  bool logit_;
  Logit g_;
  double noise_, cell_;
  int64_t n_;
  Affine f_;
};

// Data side to latent side (the image's flow in the encoder, q(u|x)'s in the
// decoder): per coordinate, pop y with q, push x with p.
void step_forward(const Run& r, const FlowStep& s, std::vector<int64_t>& k, const Grid& go,
                  RansMessage& m, Tally& tally) {
  const Grid& gn = kStateGrid;
  const std::vector<double> v = values_of(k, go);
  const CoordinateMap f(r, s, v, go);
  for (int64_t j = 0; j < f.size(); ++j) {
    const int64_t i = f.coord(j);
    const Gaussian q = f.q(j, v[i]);
    const int64_t y = CellGaussian(q.mean, q.scale, gn, !r.p_draws).pop(m, tally.bits);
    const Gaussian p = f.p(j, gn.value(y));
    tally.bits += CellGaussian(p.mean, p.scale, go, r.p_draws).push(m, k[i]);
    tally.log2_density += f.log2_slope(j, v[i]);
    k[i] = y;
  }
}

// Latent side to data side, the exact reverse: per coordinate, last first,
// pop x with p, push y with q.
void step_backward(const Run& r, const FlowStep& s, std::vector<int64_t>& k, const Grid& go,
                   RansMessage& m, Tally& tally) {
  const Grid& gn = kStateGrid;
  const CoordinateMap f(r, s, values_of(k, gn), go);
  for (int64_t j = f.size(); j-- > 0;) {
    const int64_t i = f.coord(j);
    const Gaussian p = f.p(j, gn.value(k[i]));
    const int64_t x = CellGaussian(p.mean, p.scale, go, r.p_draws).pop(m, tally.bits);
    const double xv = go.value(x);
    const Gaussian q = f.q(j, xv);
    tally.bits += CellGaussian(q.mean, q.scale, gn, !r.p_draws).push(m, k[i]);
    tally.log2_density += f.log2_slope(j, xv);
    k[i] = x;
  }
}

constexpr double kLog2SqrtTwoPi = 1.3257480647361593;
double log2_normal(double z) { return (-0.5 * z * z) * kLog2E - kLog2SqrtTwoPi; }

// The index of the first step that codes (a logit over the whole state, the
// constructor checks): its x side is the data grid, every later one the state's.
size_t first_coding(const FlowProgram& p) {
  size_t i = 0;
  while (i < p.steps.size() && p.steps[i].kind == FlowStep::Kind::kPermute) ++i;
  return i;
}

template <class T>
void permute(const FlowStep& s, std::vector<T>& k, bool forward) {
  const std::vector<T> old(k.begin(), k.begin() + static_cast<int64_t>(s.from.size()));
  for (size_t i = 0; i < s.from.size(); ++i)
    if (forward)
      k[i] = old[s.from[i]];
    else
      k[s.from[i]] = old[i];
}

// Pushes the data side k (cells of r.data) through the program and z with
// N(0, 1); the decoder of these bits is pop_program().
void push_program(const Run& r, std::vector<int64_t> k, RansMessage& m, Tally& tally) {
  const size_t first = first_coding(r.program);
  for (size_t i = 0; i < r.program.steps.size(); ++i) {
    const FlowStep& s = r.program.steps[i];
    if (s.kind == FlowStep::Kind::kPermute)
      permute(s, k, true);
    else
      step_forward(r, s, k, i <= first ? r.data : kStateGrid, m, tally);
  }
  for (size_t i = 0; i < k.size(); ++i) {
    tally.bits += CellGaussian(0.0, 1.0, kStateGrid, r.p_draws).push(m, k[i]);
    tally.log2_density += log2_normal(kStateGrid.value(k[i]));
  }
}

std::vector<int64_t> pop_program(const Run& r, RansMessage& m, Tally& tally) {
  const FlowProgram& p = r.program;
  std::vector<int64_t> k(p.channels * p.height * p.width);
  for (size_t i = k.size(); i-- > 0;) {
    k[i] = CellGaussian(0.0, 1.0, kStateGrid, r.p_draws).pop(m, tally.bits);
    tally.log2_density += log2_normal(kStateGrid.value(k[i]));
  }
  const size_t first = first_coding(p);
  for (size_t i = p.steps.size(); i-- > 0;) {
    const FlowStep& s = p.steps[i];
    if (s.kind == FlowStep::Kind::kPermute)
      permute(s, k, false);
    else
      step_backward(r, s, k, i <= first ? r.data : kStateGrid, m, tally);
  }
  return k;
}

}  // namespace

std::vector<double> flow_map(const FlowProgram& p, std::vector<double> v, const float* context,
                             double* log_det) {
  const Run r{p, kStateGrid, 1.0, false, context};
  for (const FlowStep& s : p.steps) {
    if (s.kind == FlowStep::Kind::kPermute) {
      permute(s, v, true);
      continue;
    }
    const CoordinateMap f(r, s, v, kStateGrid);
    for (int64_t j = 0; j < f.size(); ++j) {
      const int64_t i = f.coord(j);
      *log_det += f.log2_slope(j, v[i]) / kLog2E;
      v[i] = f.apply(j, v[i]);
    }
  }
  return v;
}

// ------------------------------------------------------------------ hashing

void FlowProgram::hash(steps::Fingerprint& f) const {
  for (int64_t v : {channels, height, width, static_cast<int64_t>(steps.size())}) f.add(v);
  auto add_vector = [&f](const auto& v) {
    f.add(static_cast<int64_t>(v.size()));
    if (!v.empty()) f.add(v.data(), v.size() * sizeof(v[0]));
  };
  for (const FlowStep& s : steps) {
    for (int64_t v : {static_cast<int64_t>(s.kind), s.channels, s.height, s.width, s.reads,
                      static_cast<int64_t>(s.context), s.first, static_cast<int64_t>(s.additive),
                      static_cast<int64_t>(s.shift_first), static_cast<int64_t>(s.inverse), s.row})
      f.add(v);
    f.add(&s.bound, sizeof s.bound);
    f.add(&s.alpha, sizeof s.alpha);
    add_vector(s.from);
    add_vector(s.a);
    add_vector(s.t);
    add_vector(s.mask);
    add_vector(s.w);
    if (s.kind == FlowStep::Kind::kCoupling) s.net.hash(f);
  }
  f.add(static_cast<int64_t>(context.has_value()));
  if (context) context->hash(f);
}

// ------------------------------------------------------------------ coder

namespace {

void check_program(const FlowProgram& p, ImageSize size, const char* what) {
  auto fail = [what](const std::string& why) {
    throw Error(std::string("flow coder: ") + what + ": " + why);
  };
  if (p.channels != size.channels || p.height != size.height || p.width != size.width)
    fail("its shape is not " + size.str());
  const int64_t D = size.dims();
  const int64_t ctx = p.context ? p.context->output().channels : 0;
  if (p.context &&
      (p.context->input().height != size.height || p.context->input().width != size.width ||
       p.context->input().channels != size.channels || p.context->output().height != size.height ||
       p.context->output().width != size.width))
    fail("its context network does not map the image");
  const size_t first = first_coding(p);
  if (first >= p.steps.size() || p.steps[first].kind != FlowStep::Kind::kLogit ||
      p.steps[first].channels * p.steps[first].height * p.steps[first].width != D)
    fail("its first step that codes must be a logit over the whole state");
  for (const FlowStep& s : p.steps) {
    const int64_t n = s.channels * s.height * s.width, C = s.channels;
    if (n <= 0 || n > D) fail("a step larger than the state");
    switch (s.kind) {
      case FlowStep::Kind::kPermute: {
        std::vector<uint8_t> seen(n, 0);
        if (static_cast<int64_t>(s.from.size()) != n) fail("a permutation of the wrong size");
        for (int64_t f : s.from) {
          if (f < 0 || f >= n || seen[f]) fail("a permutation that is not one");
          seen[f] = 1;
        }
        break;
      }
      case FlowStep::Kind::kScale:
        if (static_cast<int64_t>(s.a.size()) != n || static_cast<int64_t>(s.t.size()) != n)
          fail("a scale of the wrong size");
        break;
      case FlowStep::Kind::kCoupling: {
        const int64_t in = s.reads + (s.context ? ctx : 0),
                      out = (s.additive ? 1 : 2) * (C - s.first);
        if ((s.context && !p.context) || s.first < 0 || s.first >= C || s.reads < 0 ||
            s.reads > C || (s.mask.empty() && s.reads > s.first) ||
            (!s.mask.empty() && static_cast<int64_t>(s.mask.size()) != n))
          fail("a coupling that reads what it changes");
        const steps::MapShape i = s.net.input(), o = s.net.output();
        if (i.height != s.height || i.width != s.width || i.channels != in ||
            o.height != s.height || o.width != s.width || o.channels != out)
          fail("a coupling network of the wrong shape");
        break;
      }
      case FlowStep::Kind::kRow:
        if (s.row < 0 || s.row >= C || static_cast<int64_t>(s.w.size()) != C)
          fail("a row of the wrong size");
        break;
      case FlowStep::Kind::kLogit:
        if (!(s.alpha >= 0 && s.alpha < 0.5)) fail("a logit with alpha outside [0, 0.5)");
        break;
    }
  }
}

}  // namespace

FlowCoder::FlowCoder(FlowNets nets, ImageSize size, int64_t levels)
    : nets_(std::move(nets)), size_(size), levels_(levels) {
  if (levels < 2 || levels > 65536)
    throw Error("flow coder: levels " + std::to_string(levels) + " out of range");
  int log2_levels = 0;
  while ((int64_t{2} << log2_levels) <= levels) ++log2_levels;
  noise_bits_ = (nets_.dequantizer ? kDequantizerDataBits : kDataBits) - log2_levels;
  check_program(nets_.flow, size, "the flow");
  if (nets_.flow.context) throw Error("flow coder: the flow reads no context");
  if (nets_.dequantizer) {
    check_program(*nets_.dequantizer, size, "the dequantizer");
    if (!nets_.dequantizer->context) throw Error("flow coder: the dequantizer needs its context");
  }
}

uint64_t FlowCoder::fingerprint() const {
  steps::Fingerprint f;
  for (int64_t v : {int64_t{500}, size_.channels, size_.height, size_.width, levels_,
                    int64_t{kStateBits}, int64_t{kFlowNoiseBits}, int64_t{kDequantizerNoiseBits},
                    int64_t{kDataBits}, int64_t{kDequantizerDataBits}, int64_t{kTableBits}})
    f.add(v);
  nets_.flow.hash(f);
  f.add(static_cast<int64_t>(nets_.dequantizer.has_value()));
  if (nets_.dequantizer) nets_.dequantizer->hash(f);
  return f.value();
}

int64_t FlowCoder::max_block() const { return kMaxFileBlock; }

int64_t FlowCoder::default_block(int64_t images) const { return chained_default_block(images); }

void FlowCoder::check_size(ImageSize size) const {
  if (size != size_)
    throw Error("this model codes " + size_.str() + " images only, not " + size.str());
}

namespace {
// The grids of y = (x + u) / K and of u, Q bits of u a sub-pixel.
Grid pixel_grid(int64_t levels, int q) {
  return {1.0 / (static_cast<double>(levels) * std::ldexp(1.0, q)), 0.5, 0,
          levels * (int64_t{1} << q) - 1};
}
Grid noise_grid(int q) { return {std::ldexp(1.0, -q), 0.5, 0, (int64_t{1} << q) - 1}; }

// The image's flow as one image's run sees it, and q(u|x)'s for image x (its
// context map computed into `context`).
Run flow_run(const FlowProgram& p, int64_t levels, int q) {
  return {p, pixel_grid(levels, q), std::ldexp(1.0, -kFlowNoiseBits), false, nullptr};
}
Run dequantizer_run(const FlowProgram& p, const uint16_t* x, ImageSize size, int64_t levels, int q,
                    std::vector<float>& context) {
  context.resize(p.context->output().size());
  const std::vector<float> unit = unit_image(x, size, levels);
  p.context->run(unit.data(), context.data());
  return {p, noise_grid(q), std::ldexp(1.0, -kDequantizerNoiseBits), true, context.data()};
}
}  // namespace

void FlowCoder::push_image(RansMessage& m, const uint16_t* x, double& ideal, double& model) const {
  const int64_t D = size_.dims(), Q = noise_bits_;
  std::vector<int64_t> u(D);
  Tally deq;
  std::vector<float> context;
  // 1. u from the message: uniform, or with q(u|x) (bits back).
  if (!nets_.dequantizer) {
    for (int64_t d = 0; d < D; ++d) {
      u[d] = rans_peek(m, static_cast<uint32_t>(Q));
      rans_pop(m, static_cast<uint32_t>(u[d]), 1, static_cast<uint32_t>(Q));
    }
    deq.bits = -static_cast<double>(D * Q);
  } else {
    const Run r =
        dequantizer_run(*nets_.dequantizer, x, size_, levels_, static_cast<int>(Q), context);
    u = pop_program(r, m, deq);
  }
  // 2. y = (x + u) / K through the flow, then z.
  std::vector<int64_t> k(D);
  for (int64_t d = 0; d < D; ++d) k[d] = (static_cast<int64_t>(x[d]) << Q) + u[d];
  Tally flow;
  const Run r = flow_run(nets_.flow, levels_, static_cast<int>(Q));
  push_program(r, std::move(k), m, flow);
  ideal += deq.bits + flow.bits;
  model += -flow.log2_density + static_cast<double>(D) * std::log2(static_cast<double>(levels_)) +
           deq.log2_density;
}

void FlowCoder::pop_image(RansMessage& m, uint16_t* x) const {
  const int64_t D = size_.dims(), Q = noise_bits_;
  Tally flow;
  const Run r = flow_run(nets_.flow, levels_, static_cast<int>(Q));
  const std::vector<int64_t> k = pop_program(r, m, flow);
  std::vector<int64_t> u(D);
  for (int64_t d = 0; d < D; ++d) {
    x[d] = static_cast<uint16_t>(k[d] >> Q);
    u[d] = k[d] & ((int64_t{1} << Q) - 1);
  }
  if (!nets_.dequantizer) {
    for (int64_t d = D; d-- > 0;)
      rans_push(m, static_cast<uint32_t>(u[d]), 1, static_cast<uint32_t>(Q));
    return;
  }
  std::vector<float> context;
  const Run rq =
      dequantizer_run(*nets_.dequantizer, x, size_, levels_, static_cast<int>(Q), context);
  Tally deq;
  push_program(rq, std::move(u), m, deq);
}

void FlowCoder::push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                            const UnitsDone& done) const {
  check_size(block.size);
  // The first image pops its u before it pushes anything: Q bits a sub-pixel
  // (uniform), or about a state cell's and a step's bits (variational).
  const int64_t D = size_.dims(), bits = nets_.dequantizer ? kStateBits + 12 : noise_bits_ + 8;
  push_chained(
      m, block, (D * bits + 15) / 16 + 4,
      [this](RansMessage& t, const uint16_t* x, double& ideal, double& model) {
        push_image(t, x, ideal, model);
      },
      stats, done);
}

ImageBlock FlowCoder::pop_images(RansMessage& m, int64_t n, ImageSize size,
                                 const UnitsDone& done) const {
  check_size(size);
  return pop_chained(
      m, n, size, [this](RansMessage& t, uint16_t* x) { pop_image(t, x); }, done);
}

}  // namespace tame
