// The rANS stack: exact round trips, a size at -log2 p plus a few bytes,
// pushes and pops interleaved in any order, the stream bytes of a finished
// message, and refusal of truncated or malformed streams.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "tame/codec/codec.h"
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

// A symbol drawn from its own pmf.
uint32_t draw(std::mt19937& rng, const std::vector<uint32_t>& cdf, uint32_t precision) {
  const uint32_t slot = static_cast<uint32_t>(rng() & ((uint64_t{1} << precision) - 1));
  return find_symbol(cdf.data(), static_cast<uint32_t>(cdf.size() - 1), slot);
}

double bits_of(const std::vector<uint32_t>& cdf, uint32_t s, uint32_t precision) {
  return -std::log2((cdf[s + 1] - cdf[s]) / std::ldexp(1.0, precision));
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
      symbols.push_back(draw(rng, cdfs.back(), precision));
      ideal_bits += bits_of(cdfs.back(), symbols.back(), precision);
    }
    RansMessage m;
    for (int t = count - 1; t >= 0; --t) push_symbol(m, cdfs[t].data(), symbols[t], precision);
    const std::string bytes = rans_serialize(m);
    RansMessage d = rans_deserialize(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    for (int t = 0; t < count; ++t)
      ASSERT_EQ(pop_symbol(d, cdfs[t].data(), n, precision), symbols[t])
          << "symbol " << t << " precision " << precision;
    EXPECT_TRUE(rans_empty(d));
    // Overhead: the 8-byte final state plus under 0.1% of the ideal size.
    const double coded_bits = 8.0 * bytes.size();
    EXPECT_LT(coded_bits, ideal_bits * 1.001 + 64 + 32) << "precision " << precision;
    EXPECT_GT(coded_bits, ideal_bits - 1);
  }
}

// A codec may pop between pushes (bits-back coding pops its latents from the
// message it is writing): pop symbols with one table, push others, then undo
// everything in reverse, and the message is back where it started.
TEST(Rans, InterleavedPushAndPopUndoToTheInitialState) {
  std::mt19937 rng(3);
  RansMessage m;
  std::vector<uint32_t> base_cdf = random_cdf(rng, 16, 16);
  for (int t = 0; t < 300; ++t) push_symbol(m, base_cdf.data(), draw(rng, base_cdf, 16), 16);
  const RansMessage initial = m;
  struct Op {
    bool popped;
    std::vector<uint32_t> cdf;
    uint32_t symbol;
  };
  std::vector<Op> ops;
  for (int round = 0; round < 50; ++round) {
    Op pop{true, random_cdf(rng, 7, 12), 0};  // read "free bits" with a table of its own
    pop.symbol = pop_symbol(m, pop.cdf.data(), 7, 12);
    ops.push_back(pop);
    for (int k = 0; k < 3; ++k) {
      Op push{false, random_cdf(rng, 256, 24), 0};
      push.symbol = draw(rng, push.cdf, 24);
      push_symbol(m, push.cdf.data(), push.symbol, 24);
      ops.push_back(push);
    }
  }
  for (auto it = ops.rbegin(); it != ops.rend(); ++it) {
    if (it->popped) {
      push_symbol(m, it->cdf.data(), it->symbol, 12);
    } else {
      const uint32_t n = static_cast<uint32_t>(it->cdf.size() - 1);
      ASSERT_EQ(pop_symbol(m, it->cdf.data(), n, 24), it->symbol);
    }
  }
  EXPECT_EQ(m.head, initial.head);
  EXPECT_EQ(m.tail, initial.tail);
}

// Codecs compose: a sequence of symbol codecs pops what it pushed, first-first.
TEST(Rans, SequenceOfCodecsRoundTrips) {
  std::mt19937 rng(5);
  std::vector<Codec<uint32_t>> parts;
  std::vector<uint32_t> values;
  for (int t = 0; t < 40; ++t) {
    auto cdf = random_cdf(rng, 10, 16);
    values.push_back(draw(rng, cdf, 16));
    parts.push_back(symbol_codec(cdf, 16));
  }
  auto seq = sequence_codec(parts);
  auto twice = repeat_codec(seq, 2);
  RansMessage m;
  twice.push(m, {values, values});
  const auto back = twice.pop(m);
  EXPECT_EQ(back, (std::vector<std::vector<uint32_t>>{values, values}));
  EXPECT_TRUE(rans_empty(m));
}

// The stream of a message: head, then the words in the order pops take them.
TEST(Rans, SerializedLayout) {
  RansMessage m;
  m.head = 0x0123456789abcdefull;
  m.tail = {0x11111111u, 0x22222222u};  // top: 0x22222222
  const std::string s = rans_serialize(m);
  ASSERT_EQ(s.size(), 16u);
  EXPECT_EQ(static_cast<uint8_t>(s[0]), 0xef);
  EXPECT_EQ(static_cast<uint8_t>(s[7]), 0x01);
  EXPECT_EQ(static_cast<uint8_t>(s[8]), 0x22);
  EXPECT_EQ(static_cast<uint8_t>(s[12]), 0x11);
  const auto back = rans_deserialize(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  EXPECT_EQ(back.head, m.head);
  EXPECT_EQ(back.tail, m.tail);
}

TEST(Rans, EmptyMessageIsEightBytes) {
  RansMessage m;
  EXPECT_TRUE(rans_empty(m));
  auto bytes = rans_serialize(m);
  EXPECT_EQ(bytes.size(), 8u);
  EXPECT_TRUE(rans_empty(rans_deserialize(reinterpret_cast<const uint8_t*>(bytes.data()), 8)));
}

TEST(Rans, RefusesBadStreamsAndSymbols) {
  RansMessage m;
  EXPECT_THROW(rans_push(m, 0, 0, 16), Error);      // zero mass
  EXPECT_THROW(rans_push(m, 65535, 2, 16), Error);  // past the total
  EXPECT_THROW(rans_push(m, 0, 1, 32), Error);      // precision too high
  for (int t = 0; t < 1000; ++t) rans_push(m, t % 200, 3, 8);
  auto bytes = rans_serialize(m);
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  EXPECT_THROW(rans_deserialize(p, 7), Error);
  EXPECT_THROW(rans_deserialize(p, bytes.size() - 1), Error);
  // Truncated by one word: the pops run out (an Error, never a read past the
  // end), or end in the wrong state.
  RansMessage d = rans_deserialize(p, bytes.size() - 4);
  bool threw = false;
  try {
    for (int t = 0; t < 1000; ++t) rans_pop(d, rans_peek(d, 8), 1, 8);  // always a valid symbol
  } catch (const Error& e) {
    threw = true;
    EXPECT_NE(std::string(e.what()).find("truncated"), std::string::npos);
  }
  EXPECT_TRUE(threw || !rans_empty(d));
  // Popping the empty message needs a word it doesn't have.
  RansMessage empty;
  EXPECT_THROW(rans_pop(empty, 0, 1, 8), Error);
  const std::string zeros(16, '\0');
  EXPECT_THROW(rans_deserialize(reinterpret_cast<const uint8_t*>(zeros.data()), zeros.size()),
               Error);
}

TEST(Rans, FindSymbol) {
  const uint32_t cdf[] = {0, 1, 5, 5 + 10, 16};
  EXPECT_EQ(find_symbol(cdf, 4, 0), 0u);
  EXPECT_EQ(find_symbol(cdf, 4, 1), 1u);
  EXPECT_EQ(find_symbol(cdf, 4, 4), 1u);
  EXPECT_EQ(find_symbol(cdf, 4, 5), 2u);
  EXPECT_EQ(find_symbol(cdf, 4, 15), 3u);
}
