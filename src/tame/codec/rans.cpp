#include "tame/codec/rans.h"

#include "tame/error.h"

namespace tame {

namespace {
constexpr uint64_t kUpper = kRansL << 32;  // exclusive upper bound of the head

void check_symbol(uint32_t start, uint32_t freq, uint32_t precision) {
  if (precision == 0 || precision > kMaxPrecision || freq == 0 ||
      uint64_t{start} + freq > (uint64_t{1} << precision))
    throw Error("rans: invalid symbol (start " + std::to_string(start) + ", freq " +
                std::to_string(freq) + ", precision " + std::to_string(precision) + ")");
}
}  // namespace

void rans_push(RansMessage& m, uint32_t start, uint32_t freq, uint32_t precision) {
  check_symbol(start, freq, precision);
  // Renormalize so that the coded head stays below kUpper.
  const uint64_t x_max = ((kRansL >> precision) << 32) * freq;
  uint64_t x = m.head;
  if (x >= x_max) {
    m.tail.push_back(static_cast<uint32_t>(x));
    x >>= 32;
  }
  m.head = ((x / freq) << precision) + (x % freq) + start;
}

void rans_pop(RansMessage& m, uint32_t start, uint32_t freq, uint32_t precision) {
  check_symbol(start, freq, precision);
  const uint64_t mask = (uint64_t{1} << precision) - 1;
  const uint64_t slot = m.head & mask;
  if (slot < start || slot >= uint64_t{start} + freq)
    throw Error("rans: symbol does not contain the slot");
  uint64_t x = freq * (m.head >> precision) + slot - start;
  if (x < kRansL) {
    if (m.tail.empty()) throw TruncatedMessage("rans: stream is truncated");
    x = (x << 32) | m.tail.back();
    m.tail.pop_back();
  }
  m.head = x;
}

bool rans_empty(const RansMessage& m) { return m.head == kRansL && m.tail.empty(); }

std::string rans_serialize(const RansMessage& m) {
  std::string out;
  out.reserve(8 + 4 * m.tail.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((m.head >> (8 * b)) & 0xff));
  for (auto it = m.tail.rbegin(); it != m.tail.rend(); ++it)
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((*it >> (8 * b)) & 0xff));
  return out;
}

RansMessage rans_deserialize(const uint8_t* data, size_t size) {
  if (size < 8 || (size - 8) % 4 != 0)
    throw Error("rans: stream of " + std::to_string(size) + " bytes is malformed");
  RansMessage m;
  m.head = 0;
  for (int b = 0; b < 8; ++b) m.head |= uint64_t{data[b]} << (8 * b);
  if (m.head < kRansL || m.head >= kUpper)
    throw Error("rans: stream starts from an impossible state");
  const size_t words = (size - 8) / 4;
  m.tail.resize(words);
  for (size_t k = 0; k < words; ++k) {
    const uint8_t* p = data + 8 + 4 * k;
    // The first word in the stream is the first a pop takes: the top.
    m.tail[words - 1 - k] =
        uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24;
  }
  return m;
}

void push_symbol(RansMessage& m, const uint32_t* cdf, uint32_t value, uint32_t precision) {
  rans_push(m, cdf[value], cdf[value + 1] - cdf[value], precision);
}

uint32_t pop_symbol(RansMessage& m, const uint32_t* cdf, uint32_t n, uint32_t precision) {
  const uint32_t s = find_symbol(cdf, n, rans_peek(m, precision));
  rans_pop(m, cdf[s], cdf[s + 1] - cdf[s], precision);
  return s;
}

}  // namespace tame
