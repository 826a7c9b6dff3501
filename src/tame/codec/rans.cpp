#include "tame/codec/rans.h"

#include "tame/error.h"

namespace tame {

namespace {
constexpr uint64_t kL = uint64_t{1} << 31;  // lower bound of the normalized state
constexpr uint64_t kUpper = kL << 32;       // exclusive upper bound

void check_symbol(uint32_t start, uint32_t freq, uint32_t precision) {
  if (precision == 0 || precision > kMaxPrecision || freq == 0 ||
      uint64_t{start} + freq > (uint64_t{1} << precision))
    throw Error("rans: invalid symbol (start " + std::to_string(start) + ", freq " +
                std::to_string(freq) + ", precision " + std::to_string(precision) + ")");
}
}  // namespace

void RansEncoder::put(uint32_t start, uint32_t freq, uint32_t precision) {
  check_symbol(start, freq, precision);
  // Renormalize so that the coded state stays below kUpper.
  const uint64_t x_max = ((kL >> precision) << 32) * freq;
  if (x_ >= x_max) {
    words_.push_back(static_cast<uint32_t>(x_));
    x_ >>= 32;
  }
  x_ = ((x_ / freq) << precision) + (x_ % freq) + start;
}

std::string RansEncoder::finish() {
  std::string out;
  out.reserve(8 + 4 * words_.size());
  for (int b = 0; b < 8; ++b) out.push_back(static_cast<char>((x_ >> (8 * b)) & 0xff));
  for (auto it = words_.rbegin(); it != words_.rend(); ++it)
    for (int b = 0; b < 4; ++b) out.push_back(static_cast<char>((*it >> (8 * b)) & 0xff));
  words_.clear();
  x_ = kL;
  return out;
}

RansDecoder::RansDecoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
  if (size < 8 || (size - 8) % 4 != 0)
    throw Error("rans: stream of " + std::to_string(size) + " bytes is malformed");
  for (int b = 0; b < 8; ++b) x_ |= uint64_t{data[b]} << (8 * b);
  pos_ = 8;
  if (x_ < kL || x_ >= kUpper) throw Error("rans: stream starts from an impossible state");
}

void RansDecoder::advance(uint32_t start, uint32_t freq, uint32_t precision) {
  check_symbol(start, freq, precision);
  const uint64_t mask = (uint64_t{1} << precision) - 1;
  const uint64_t slot = x_ & mask;
  if (slot < start || slot >= uint64_t{start} + freq)
    throw Error("rans: symbol does not contain the slot");
  x_ = freq * (x_ >> precision) + slot - start;
  if (x_ < kL) {
    if (pos_ + 4 > size_) throw Error("rans: stream is truncated");
    uint64_t w = 0;
    for (int b = 0; b < 4; ++b) w |= uint64_t{data_[pos_ + b]} << (8 * b);
    pos_ += 4;
    x_ = (x_ << 32) | w;
  }
}

void RansDecoder::finish() const {
  if (x_ != kL || pos_ != size_)
    throw Error("rans: stream does not end where its symbols do (corrupt data)");
}

uint32_t find_symbol(const uint32_t* cdf, uint32_t n, uint32_t slot) {
  uint32_t lo = 0, hi = n;  // invariant: cdf[lo] <= slot < cdf[hi]
  while (hi - lo > 1) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (cdf[mid] <= slot)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

}  // namespace tame
