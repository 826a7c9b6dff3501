// The rANS coder: exact round trips, a size at -log2 p plus a few bytes, and
// refusal of truncated or malformed streams.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tame/codec/rans.h"
#include "tame/error.h"

using namespace tame;

namespace {

// A random pmf over n symbols as a cdf summing to 2^precision, every freq >= 1.
std::vector<uint32_t> random_cdf(std::mt19937& rng, uint32_t n, uint32_t precision) {
  std::vector<double> p(n);
  std::exponential_distribution<double> e(1.0);
  double total = 0;
  for (auto& v : p) total += v = std::pow(e(rng), 4.0);  // peaked
  const uint32_t total_freq = 1u << precision;
  std::vector<uint32_t> cdf(n + 1, 0);
  uint32_t sum = 0;
  for (uint32_t s = 0; s < n; ++s) {
    uint32_t f = 1 + static_cast<uint32_t>(p[s] / total * (total_freq - n));
    cdf[s + 1] = cdf[s] + f;
    sum += f;
  }
  for (uint32_t s = n; s >= 1 && sum < total_freq; --s)
    cdf[s] += total_freq - sum;  // rest to the last
  cdf[n] = total_freq;
  return cdf;
}

}  // namespace

TEST(Rans, RoundTripsAndCostsMinusLog2P) {
  for (uint32_t precision : {8u, 16u, 24u, 31u}) {
    std::mt19937 rng(precision);
    const uint32_t n = precision == 8 ? 4 : 256;
    const int count = 20000;
    std::vector<std::vector<uint32_t>> cdfs;
    std::vector<uint32_t> symbols;
    double ideal_bits = 0;
    for (int t = 0; t < count; ++t) {
      cdfs.push_back(random_cdf(rng, n, precision));
      // Draw the symbol from its own pmf.
      uint32_t slot = rng() & ((1u << precision) - 1);
      if (precision == 31) slot = rng() & 0x7fffffffu;
      uint32_t s = find_symbol(cdfs.back().data(), n, slot);
      symbols.push_back(s);
      ideal_bits -= std::log2((cdfs.back()[s + 1] - cdfs.back()[s]) / std::ldexp(1.0, precision));
    }
    RansEncoder enc;
    for (int t = count - 1; t >= 0; --t)
      enc.put(cdfs[t][symbols[t]], cdfs[t][symbols[t] + 1] - cdfs[t][symbols[t]], precision);
    std::string bytes = enc.finish();
    RansDecoder dec(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    for (int t = 0; t < count; ++t) {
      uint32_t s = find_symbol(cdfs[t].data(), n, dec.peek(precision));
      ASSERT_EQ(s, symbols[t]) << "symbol " << t << " precision " << precision;
      dec.advance(cdfs[t][s], cdfs[t][s + 1] - cdfs[t][s], precision);
    }
    EXPECT_NO_THROW(dec.finish());
    // Overhead: the 8-byte final state plus under 0.1% of the ideal size.
    const double coded_bits = 8.0 * bytes.size();
    EXPECT_LT(coded_bits, ideal_bits * 1.001 + 64 + 32) << "precision " << precision;
    EXPECT_GT(coded_bits, ideal_bits - 1);
  }
}

TEST(Rans, EmptyStreamIsEightBytes) {
  RansEncoder enc;
  auto bytes = enc.finish();
  EXPECT_EQ(bytes.size(), 8u);
  RansDecoder dec(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
  EXPECT_NO_THROW(dec.finish());
}

TEST(Rans, RefusesBadStreamsAndSymbols) {
  RansEncoder enc;
  EXPECT_THROW(enc.put(0, 0, 16), Error);      // zero mass
  EXPECT_THROW(enc.put(65535, 2, 16), Error);  // past the total
  EXPECT_THROW(enc.put(0, 1, 32), Error);      // precision too high
  for (int t = 0; t < 1000; ++t) enc.put(t % 200, 3, 8);
  auto bytes = enc.finish();
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_THROW(RansDecoder(p, 7), Error);
  EXPECT_THROW(RansDecoder(p, bytes.size() - 1), Error);
  // Truncated by one word: the decoder runs out, or ends in the wrong state.
  EXPECT_THROW(
      {
        RansDecoder dec(p, bytes.size() - 4);
        for (int t = 0; t < 1000; ++t) {
          dec.advance(dec.peek(8), 1, 8);  // the one-slot symbol at the slot: always valid
        }
        dec.finish();
      },
      Error);
  const std::string zeros(16, '\0');
  EXPECT_THROW(RansDecoder(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size()), Error);
}

TEST(Rans, FindSymbol) {
  const uint32_t cdf[] = {0, 1, 5, 5 + 10, 16};
  EXPECT_EQ(find_symbol(cdf, 4, 0), 0u);
  EXPECT_EQ(find_symbol(cdf, 4, 1), 1u);
  EXPECT_EQ(find_symbol(cdf, 4, 4), 1u);
  EXPECT_EQ(find_symbol(cdf, 4, 5), 2u);
  EXPECT_EQ(find_symbol(cdf, 4, 15), 3u);
}
