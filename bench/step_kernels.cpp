// The step engine's dense kernel (steps::dense, a fixed-order matrix product)
// at each vector width this CPU runs, on shapes the engines use: one row (one
// image or tile, the photo codec), 2 to 6 rows (a few tiles) and 64 (a
// block of images). Prints
// one JSON line per shape and width: seconds per call (the median of --reps
// timed repeats of enough calls to take a few milliseconds), GFLOP/s, the
// speed-up over the baseline width, and whether its output has the baseline's
// bits. Then the same for the discretized logistic's bin masses and the gate.
// One thread.
//
//   build/bench_step_kernels [--reps 15]
#include "tame/nn/step_kernels.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "flags.h"

int main(int argc, char** argv) {
  tame::bench::Flags flags(argc, argv, 1);
  const int reps = static_cast<int>(flags.integer("--reps", 15));
  if (!flags.ok()) return 2;
  namespace steps = tame::steps;
  struct Shape {
    int64_t rows, in, out;
  };
  // in = taps x channels of a masked convolution; out = its output channels.
  const Shape shapes[] = {{1, 160, 160}, {1, 640, 320}, {1, 1200, 240},
                          {1, 96, 30},   {2, 640, 320}, {4, 640, 320},
                          {6, 640, 320}, {64, 288, 64}, {64, 640, 320}};
  std::mt19937 rng(7);
  std::normal_distribution<float> N;
  for (const auto& s : shapes) {
    steps::Dense d;
    d.in = s.in;
    d.out = s.out;
    d.w.resize(s.in * s.out);
    d.b.resize(s.out);
    for (auto& v : d.w) v = N(rng);
    for (auto& v : d.b) v = N(rng);
    std::vector<float> x(s.rows * s.in), y(s.rows * s.out), ref(s.rows * s.out);
    for (auto& v : x) v = N(rng);
    const double flops = 2.0 * s.rows * s.in * s.out;
    const int64_t calls = std::max<int64_t>(1, static_cast<int64_t>(2e7 / flops));
    double base = 0;
    for (auto w : steps::widths()) {
      std::vector<double> t;
      for (int r = 0; r < reps; ++r) {
        const auto t0 = std::chrono::steady_clock::now();
        for (int64_t c = 0; c < calls; ++c)
          steps::dense_at(w, d, x.data(), s.in, s.rows, y.data(), s.out);
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                    calls);
      }
      std::sort(t.begin(), t.end());
      const double sec = t[t.size() / 2];
      if (w == steps::Width::baseline) {
        base = sec;
        ref = y;
      }
      const bool same = std::memcmp(y.data(), ref.data(), sizeof(float) * y.size()) == 0;
      std::printf(
          "{\"rows\":%lld,\"in\":%lld,\"out\":%lld,\"width\":\"%s\",\"seconds\":%.3e,"
          "\"gflops\":%.2f,\"speedup\":%.2f,\"same_bits\":%s}\n",
          static_cast<long long>(s.rows), static_cast<long long>(s.in),
          static_cast<long long>(s.out), steps::name(w), sec, flops / sec * 1e-9, base / sec,
          same ? "true" : "false");
    }
  }
  // The discretized logistic's 256 bin masses (the PixelCNN++ codec writes
  // one per mixture component and sub-pixel), for a broad component and a
  // sharp one (whose far bins underflow), and the gate over 256 units.
  std::vector<float> mass(256), g(512), gated(256);
  for (auto& v : g) v = N(rng);
  const int64_t calls = 20000;
  auto median = [&](auto&& f) {
    std::vector<double> t;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int64_t c = 0; c < calls; ++c) f(c);
      t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() /
                  calls);
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
  };
  // Times kernel(w) at every width; prints one line each, with fields first,
  // and whether out (what the kernel wrote) has the baseline width's bits.
  auto compare = [&](const std::string& fields, auto&& kernel, const std::vector<float>& out) {
    double base = 0;
    std::vector<float> ref;
    for (auto w : steps::widths()) {
      const double sec = median([&](int64_t c) { kernel(w, c); });
      if (w == steps::Width::baseline) {
        base = sec;
        ref = out;
      }
      std::printf(
          "{%s,\"width\":\"%s\",\"seconds\":%.3e,\"speedup\":%.2f,\"same_bits\":%s}\n",
          fields.c_str(), steps::name(w), sec, base / sec,
          std::memcmp(out.data(), ref.data(), sizeof(float) * out.size()) == 0 ? "true" : "false");
    }
  };
  for (float inv_scale : {30.0f, 1000.0f})
    compare(
        "\"kernel\":\"logistic_masses\",\"levels\":256,\"inv_scale\":" +
            std::to_string(static_cast<int>(inv_scale)),
        [&](steps::Width w, int64_t c) {
          steps::logistic_masses_at(w, 0.001f * static_cast<float>(c % 100), inv_scale, 256,
                                    mass.data());
        },
        mass);
  compare(
      "\"kernel\":\"gate\",\"units\":256",
      [&](steps::Width w, int64_t) { steps::gate_at(w, g.data(), 256, gated.data()); }, gated);
  return 0;
}
