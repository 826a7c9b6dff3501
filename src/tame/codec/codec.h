// Codecs as (push, pop) pairs over an ANS message (rans.h), in the manner of
// craystack (Townsend et al. 2019): pop(m) after push(m, v) returns v and
// leaves m as it was before the push. Codecs compose: a sequence of codecs is
// a codec, pushed last-first so that it pops first-first, and the block codec
// of model_codec.h is a sequence of per-sub-pixel symbol codecs whose tables
// come from a step engine. A bits-back codec (pop z with q(z|x), push x with
// p(x|z), push z with p(z)) is three codecs composed the same way.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "tame/codec/rans.h"

namespace tame {

template <class T>
struct Codec {
  std::function<void(RansMessage&, const T&)> push;
  std::function<T(RansMessage&)> pop;
};

/// One symbol of a fixed table, its cdf (levels + 1 entries, summing to 2^precision).
inline Codec<uint32_t> symbol_codec(std::vector<uint32_t> cdf, uint32_t precision) {
  auto table = std::make_shared<const std::vector<uint32_t>>(std::move(cdf));
  return {[=](RansMessage& m, const uint32_t& v) { push_symbol(m, table->data(), v, precision); },
          [=](RansMessage& m) {
            return pop_symbol(m, table->data(), static_cast<uint32_t>(table->size() - 1),
                              precision);
          }};
}

/// Values one after another, each with its own codec: pops them in order.
template <class T>
Codec<std::vector<T>> sequence_codec(std::vector<Codec<T>> parts) {
  auto p = std::make_shared<const std::vector<Codec<T>>>(std::move(parts));
  return {[p](RansMessage& m, const std::vector<T>& v) {
            for (size_t k = p->size(); k-- > 0;) (*p)[k].push(m, v.at(k));
          },
          [p](RansMessage& m) {
            std::vector<T> v;
            for (const auto& c : *p) v.push_back(c.pop(m));
            return v;
          }};
}

/// n values with the same codec.
template <class T>
Codec<std::vector<T>> repeat_codec(Codec<T> c, size_t n) {
  return sequence_codec(std::vector<Codec<T>>(n, std::move(c)));
}

}  // namespace tame
