// rANS entropy coder with a 64-bit state and 32-bit output words (Duda 2013;
// the layout follows ryg_rans). Free of LibTorch: the fuzz target links it.
//
// Rules:
//  1. A symbol is coded as (start, freq) in a table of integer frequencies that
//     sums to 2^precision (precision <= kMaxPrecision). freq >= 1 always: no
//     symbol has zero mass, so every image is codable under any model.
//  2. The encoder runs in reverse. Symbols are put last-first, and its words
//     come out in reverse. finish() returns them in the order the decoder reads,
//     so the decoder gets the symbols first-first.
//  3. Between symbols the state x lies in [L, L * 2^32) with L = 2^31. The
//     encoder starts at x = L and ends by writing x as 8 bytes. The decoder
//     starts from those 8 bytes, reads one 32-bit word whenever x falls below L,
//     and must finish at exactly x = L with every byte used. Anything else means
//     the stream is corrupt or belongs to other frequencies, and it throws
//     tame::Error.
//  4. All words are little-endian. A stream is 8 + 4k bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace tame {

constexpr uint32_t kMaxPrecision = 31;

class RansEncoder {
 public:
  /// Codes one symbol (encoder order: the reverse of decoding order).
  void put(uint32_t start, uint32_t freq, uint32_t precision);
  /// The stream, in decoder order. The encoder is spent afterwards.
  std::string finish();

 private:
  uint64_t x_ = uint64_t{1} << 31;
  std::vector<uint32_t> words_;  // in the order they were emitted
};

class RansDecoder {
 public:
  /// data must outlive the decoder. Throws Error if the stream is shorter than
  /// 8 bytes, not 8 + 4k bytes long, or starts from an impossible state.
  RansDecoder(const uint8_t* data, size_t size);
  /// The slot in [0, 2^precision) that identifies the next symbol.
  uint32_t peek(uint32_t precision) const {
    return static_cast<uint32_t>(x_ & ((uint64_t{1} << precision) - 1));
  }
  /// Consumes the symbol (start, freq) that contains peek()'s slot.
  void advance(uint32_t start, uint32_t freq, uint32_t precision);
  /// Throws Error unless the state is back at L and every byte was read.
  void finish() const;

 private:
  const uint8_t* data_;
  size_t size_, pos_ = 0;
  uint64_t x_ = 0;
};

/// The symbol s with cdf[s] <= slot < cdf[s + 1], by binary search; cdf has
/// n + 1 entries, cdf[0] = 0 and cdf[n] = 2^precision, strictly increasing.
uint32_t find_symbol(const uint32_t* cdf, uint32_t n, uint32_t slot);

}  // namespace tame
