// Counter-based hashing for reproducible randomness: binarization, data order,
// per-image sampling streams. Free of LibTorch.
#pragma once

#include <cstdint>

namespace tame {

/// splitmix64 (Steele, Lea & Flood 2014): a bijective 64-bit mix, the hash
/// behind binarization and every seed derived from (seed, index).
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace tame
