// rANS entropy coder with a 64-bit state and 32-bit words (Duda 2013; the
// layout follows ryg_rans's rans64.h), as a stack: one message value and free
// functions that push a symbol onto it and pop one off. Free of LibTorch: the
// fuzz target links it.
//
// Rules:
//  1. A symbol is coded as (start, freq) in a table of integer frequencies that
//     sums to 2^precision (precision <= kMaxPrecision). freq >= 1 always: no
//     symbol has zero mass, so every image is codable under any model.
//  2. The message is a stack. rans_pop() takes off the symbol the last
//     rans_push() put on, so a decoder pops in the reverse of the order its
//     encoder pushed: an encoder pushes last-first what its decoder pops
//     first-first. Nothing is buffered or reversed here: a codec may pop (with
//     any table) between pushes, as bits-back coding does with its latents.
//  3. The message is a head x in [L, L * 2^32), L = 2^31, and a tail of 32-bit
//     words. The empty message is x = L with no words. A push that would take
//     x out of range first moves x's low word onto the tail; a pop that leaves
//     x below L takes the top word back. A pop that needs a word when the tail
//     has none throws tame::Error ("truncated"): that message was not made by
//     these pushes.
//  4. Serialized, a message is its head as 8 bytes, then its tail words from
//     the top down (the order pops take them): 8 + 4k bytes, all little-endian.
//     A decoder that has popped every symbol must be left with the empty
//     message; anything else means corrupt data or other frequencies.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tame/dist/integer_cdf.h"  // find_symbol
#include "tame/error.h"

namespace tame {

constexpr uint32_t kMaxPrecision = 31;
constexpr uint64_t kRansL = uint64_t{1} << 31;  // lower bound of the head

/// What rans_pop() throws when a pop needs a word and the tail has none: for a
/// decoder, a truncated file; for a bits-back encoder, a chain whose start was
/// too short (it starts again with more bits).
class TruncatedMessage : public Error {
 public:
  using Error::Error;
};

/// An ANS message: the state the coder's functions push onto and pop from.
struct RansMessage {
  uint64_t head = kRansL;
  std::vector<uint32_t> tail;  // the top of the stack is tail.back()
};

/// Pushes the symbol (start, freq) of a table summing to 2^precision.
void rans_push(RansMessage& m, uint32_t start, uint32_t freq, uint32_t precision);
/// The slot in [0, 2^precision) that identifies the symbol on top.
inline uint32_t rans_peek(const RansMessage& m, uint32_t precision) {
  return static_cast<uint32_t>(m.head & ((uint64_t{1} << precision) - 1));
}
/// Pops the symbol (start, freq) that contains rans_peek()'s slot; throws
/// Error if it does not, or if the message is truncated.
void rans_pop(RansMessage& m, uint32_t start, uint32_t freq, uint32_t precision);
/// True for the empty message (x = L, no words).
bool rans_empty(const RansMessage& m);

/// The message as bytes (rule 4).
std::string rans_serialize(const RansMessage& m);
/// The message of those bytes; throws Error if they are fewer than 8, not
/// 8 + 4k, or start from an impossible head.
RansMessage rans_deserialize(const uint8_t* data, size_t size);

/// One symbol of a table given as its cdf (n + 1 entries): push `value`, or pop
/// and return it. The codec of a single sub-pixel.
void push_symbol(RansMessage& m, const uint32_t* cdf, uint32_t value, uint32_t precision);
uint32_t pop_symbol(RansMessage& m, const uint32_t* cdf, uint32_t n, uint32_t precision);

}  // namespace tame
