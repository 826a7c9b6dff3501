#include "tame/codec/model_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "tame/codec/rans.h"
#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/parallel.h"

namespace tame {

namespace {

const char kMagic[8] = {'T', 'A', 'M', 'E', 'C', 'O', 'D', 'C'};

// Bounds-checked little-endian reads of the header.
class Reader {
 public:
  Reader(const std::string& s, size_t pos, size_t end) : s_(s), pos_(pos), end_(end) {}
  uint64_t uint(int bytes) {
    need(bytes);
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= uint64_t{static_cast<uint8_t>(s_[pos_ + i])} << (8 * i);
    pos_ += bytes;
    return v;
  }
  std::string str(size_t n) {
    need(n);
    std::string v = s_.substr(pos_, n);
    pos_ += n;
    return v;
  }
  size_t pos() const { return pos_; }

 private:
  void need(size_t n) const {
    if (n > end_ - pos_) throw Error("the header is truncated");
  }
  const std::string& s_;
  size_t pos_, end_;
};

std::string hex64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// A stored file name must be a plain name: decompress writes it into a folder.
void check_name(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 255 && name != "." && name != "..";
  for (unsigned char ch : name) ok = ok && ch >= 0x20 && ch != 0x7f && ch != '/' && ch != '\\';
  if (!ok) throw Error("bad stored file name");
}

}  // namespace

double logits_to_cdf(const float* logits, int64_t levels, uint32_t precision, uint32_t* cdf,
                     int64_t value) {
  float top = logits[0];
  for (int64_t k = 1; k < levels; ++k) top = logits[k] > top ? logits[k] : top;
  // e_k in (0, 1]: the maximum gives exactly 1, so the sum is >= 1.
  float e[256];
  steps::exp_shifted(logits, levels, top, e);
  double sum = 0;
  for (int64_t k = 0; k < levels; ++k) sum = sum + static_cast<double>(e[k]);
  const uint32_t total = uint32_t{1} << precision;
  const double scale = static_cast<double>(total - levels) / sum;
  uint32_t used = 0;
  int64_t best = 0;
  cdf[0] = 0;
  for (int64_t k = 0; k < levels; ++k) {
    const uint32_t f =
        1 + static_cast<uint32_t>(static_cast<double>(e[k]) * scale);  // floor: the product is >= 0
    cdf[k + 1] = f;                                                    // frequencies for now
    used += f;
    if (f > cdf[best + 1]) best = k;
  }
  // The floors leave a small remainder (under `levels`, up to rounding): give
  // it to the most probable level, or take an excess from it.
  if (used <= total)
    cdf[best + 1] += total - used;
  else
    cdf[best + 1] -= used - total;
  for (int64_t k = 0; k < levels; ++k) cdf[k + 1] += cdf[k];
  return value < 0 ? 0.0 : std::log2(sum) - std::log2(static_cast<double>(e[value]));
}

namespace {

// Steps a fresh engine through a block of n images: at every step, one table
// per image, and `code(cdf, value)` returns image b's value (value: the known
// one when encoding, else -1). This loop is the block's symbol order (step s,
// then image b), written once for the encoder and the decoder.
template <class Code>
std::vector<uint8_t> walk_block(const StepEngine& engine, int64_t n, const uint8_t* known,
                                double* model_bits, Code code) {
  auto e = engine.clone();
  e->begin(n);
  const int64_t C = e->channels(), HW = e->height() * e->width(), K = e->levels();
  const int64_t D = C * HW;
  std::vector<uint32_t> cdf(K + 1);
  std::vector<uint8_t> values(n);
  // Sub-pixel s = (i * W + j) * C + c in raster order; images are [C][H][W].
  for (int64_t s = 0; s < D; ++s) {
    const int64_t at = (s % C) * HW + s / C;
    const float* logits = e->conditional();
    for (int64_t b = 0; b < n; ++b) {
      const int64_t v = known ? known[b * D + at] : -1;
      const double bits = logits_to_cdf(logits + b * K, K, kCodecPrecision, cdf.data(), v);
      if (model_bits) *model_bits += bits;
      values[b] = static_cast<uint8_t>(code(cdf.data(), v));
    }
    e->observe(values.data());
  }
  return e->images();
}

}  // namespace

void push_block(RansMessage& m, const StepEngine& engine, const uint8_t* images, int64_t n,
                EncodeStats* stats) {
  // The pops run forward through the engine, so the pushes go last-first: the
  // tables are computed forward and pushed in reverse.
  std::vector<uint32_t> start, freq;
  double model_bits = 0, ideal_bits = 0;
  walk_block(engine, n, images, &model_bits, [&](const uint32_t* cdf, int64_t v) {
    start.push_back(cdf[v]);
    freq.push_back(cdf[v + 1] - cdf[v]);
    ideal_bits += kCodecPrecision - std::log2(static_cast<double>(freq.back()));
    return v;
  });
  for (size_t t = start.size(); t-- > 0;) rans_push(m, start[t], freq[t], kCodecPrecision);
  if (stats) {
    stats->model_bits += model_bits;
    stats->ideal_bits += ideal_bits;
  }
}

std::vector<uint8_t> pop_block(RansMessage& m, const StepEngine& engine, int64_t n) {
  const auto K = static_cast<uint32_t>(engine.levels());
  return walk_block(engine, n, nullptr, nullptr, [&](const uint32_t* cdf, int64_t) {
    return static_cast<int64_t>(pop_symbol(m, cdf, K, kCodecPrecision));
  });
}

Codec<std::vector<uint8_t>> block_codec(const StepEngine& engine, int64_t n) {
  std::shared_ptr<const StepEngine> e = engine.clone();
  return {[e, n](RansMessage& m, const std::vector<uint8_t>& x) { push_block(m, *e, x.data(), n); },
          [e, n](RansMessage& m) { return pop_block(m, *e, n); }};
}

std::string encode_images(const StepEngine& engine, const std::string& model_name,
                          const uint8_t* images, int64_t n, const std::vector<std::string>& names,
                          int64_t block, int threads, EncodeStats* stats) {
  const int64_t C = engine.channels(), H = engine.height(), W = engine.width(), K = engine.levels();
  const int64_t D = C * H * W;
  if (n < 1) throw Error("nothing to compress");
  if (block < 1 || block > kMaxBlock)
    throw Error("block size must be in 1.." + std::to_string(kMaxBlock));
  if (!names.empty() && static_cast<int64_t>(names.size()) != n)
    throw Error("one name per image expected");
  for (const auto& name : names) check_name(name);
  if (model_name.size() > 255) throw Error("model name too long");
  for (int64_t i = 0; i < n * D; ++i)
    if (images[i] >= K)
      throw Error("image " + std::to_string(i / D) + " has value " + std::to_string(images[i]) +
                  ", outside the model's " + std::to_string(K) + " levels");

  const int64_t blocks = (n + block - 1) / block;
  std::vector<std::string> payload(blocks);
  std::vector<EncodeStats> part(blocks);
  run_parallel(blocks, threads, [&](int64_t bi) {
    const int64_t first = bi * block, m = std::min(block, n - first);
    RansMessage message;
    push_block(message, engine, images + first * D, m, &part[bi]);
    payload[bi] = rans_serialize(message);
  });

  std::string meta;
  put_u64(meta, engine.fingerprint());
  meta.push_back(static_cast<char>(model_name.size()));
  meta += model_name;
  for (int64_t v : {C, H, W, K}) put_u32(meta, static_cast<uint32_t>(v));
  put_u32(meta, kCodecPrecision);
  put_u64(meta, static_cast<uint64_t>(n));
  put_u32(meta, static_cast<uint32_t>(block));
  put_u32(meta, names.empty() ? 0u : 1u);
  for (const auto& p : payload) {
    put_u32(meta, static_cast<uint32_t>(p.size()));
    put_u32(meta, crc32_of(p));
  }
  for (const auto& name : names) {
    meta.push_back(static_cast<char>(name.size() & 0xff));
    meta.push_back(static_cast<char>(name.size() >> 8));
    meta += name;
  }
  std::string file(kMagic, 8);
  put_u32(file, kCodecVersion);
  put_u32(file, static_cast<uint32_t>(meta.size()));
  file += meta;
  put_u32(file, crc32_of(file));
  for (const auto& p : payload) file += p;
  if (stats) {
    *stats = EncodeStats{};
    stats->file_bits = 8.0 * static_cast<double>(file.size());
    for (const auto& p : part) {
      stats->ideal_bits += p.ideal_bits;
      stats->model_bits += p.model_bits;
    }
  }
  return file;
}

CodecHeader parse_header(const std::string& file) {
  if (file.size() < 8 || std::memcmp(file.data(), kMagic, 8) != 0)
    throw Error("not a tame compressed file (bad magic)");
  if (file.size() < 20) throw Error("the file is truncated");
  Reader top(file, 8, file.size());
  const uint32_t version = static_cast<uint32_t>(top.uint(4));
  if (version != kCodecVersion)
    throw Error("unsupported format version " + std::to_string(version) +
                " (this tame reads version " + std::to_string(kCodecVersion) + ")");
  const uint64_t meta_len = top.uint(4);
  if (meta_len > file.size() - 20) throw Error("the file is truncated (header)");
  const size_t meta_end = 16 + meta_len;
  const uint32_t stored_crc = static_cast<uint32_t>(Reader(file, meta_end, file.size()).uint(4));
  if (crc32_of(file.data(), meta_end) != stored_crc) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    throw Error("the header is corrupt (checksum mismatch)");
#endif
  }
  Reader r(file, 16, meta_end);
  CodecHeader h;
  h.fingerprint = r.uint(8);
  h.model_name = r.str(r.uint(1));
  h.channels = r.uint(4);
  h.height = r.uint(4);
  h.width = r.uint(4);
  h.levels = r.uint(4);
  h.precision = static_cast<uint32_t>(r.uint(4));
  const uint64_t count = r.uint(8);
  h.block = r.uint(4);
  const uint32_t flags = static_cast<uint32_t>(r.uint(4));
  if (h.channels < 1 || h.channels > 4 || h.height < 1 || h.height > 4096 || h.width < 1 ||
      h.width > 4096 || h.levels < 2 || h.levels > 256)
    throw Error("the header describes impossible images");
  if (h.precision != kCodecPrecision)
    throw Error("unsupported precision " + std::to_string(h.precision));
  if (h.block < 1 || h.block > kMaxBlock) throw Error("bad block size " + std::to_string(h.block));
  if (count < 1 || count > (uint64_t{1} << 31)) throw Error("bad image count");
  if (flags > 1) throw Error("unknown flags");
  h.count = static_cast<int64_t>(count);
  const int64_t blocks = (h.count + h.block - 1) / h.block;
  if (static_cast<uint64_t>(blocks) > (meta_end - r.pos()) / 8)
    throw Error("the header is truncated (block table)");
  uint64_t offset = meta_end + 4;
  std::vector<uint32_t> crcs;
  for (int64_t b = 0; b < blocks; ++b) {
    h.block_bytes.push_back(static_cast<uint32_t>(r.uint(4)));
    crcs.push_back(static_cast<uint32_t>(r.uint(4)));
    h.block_offset.push_back(offset);
    offset += h.block_bytes.back();
  }
  if (flags & 1) {
    for (int64_t i = 0; i < h.count; ++i) {
      h.names.push_back(r.str(r.uint(2)));
      check_name(h.names.back());
    }
  }
  if (r.pos() != meta_end) throw Error("the header has trailing bytes");
  if (offset != file.size())
    throw Error(offset > file.size() ? "the file is truncated (" + std::to_string(file.size()) +
                                           " of " + std::to_string(offset) + " bytes)"
                                     : "the file has trailing bytes");
  for (int64_t b = 0; b < blocks; ++b) {
    if (crc32_of(file.data() + h.block_offset[b], h.block_bytes[b]) != crcs[b]) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
      throw Error("block " + std::to_string(b) + " is corrupt (checksum mismatch)");
#endif
    }
  }
  return h;
}

DecodedImages decode_images(const StepEngine& engine, const std::string& file, int threads) {
  DecodedImages out;
  out.header = parse_header(file);
  const CodecHeader& h = out.header;
  const int64_t C = engine.channels(), H = engine.height(), W = engine.width(), K = engine.levels();
  if (h.channels != C || h.height != H || h.width != W || h.levels != K)
    throw Error("written for " + std::to_string(h.channels) + "x" + std::to_string(h.height) + "x" +
                std::to_string(h.width) + " images with " + std::to_string(h.levels) +
                " levels, but this model is " + std::to_string(C) + "x" + std::to_string(H) + "x" +
                std::to_string(W) + " with " + std::to_string(K));
  if (h.fingerprint != engine.fingerprint())
    throw Error("written by another model (" + h.model_name + ", fingerprint " +
                hex64(h.fingerprint) + "); this run's model has fingerprint " +
                hex64(engine.fingerprint()));
  const int64_t D = C * H * W, blocks = static_cast<int64_t>(h.block_bytes.size());
  if (h.count > kMaxDecodedBytes / D)
    throw Error("holds " + std::to_string(h.count) + " images, more than the " +
                std::to_string(kMaxDecodedBytes >> 30) + " GiB tame decodes at once");
  out.pixels.assign(h.count * D, 0);
  run_parallel(blocks, threads, [&](int64_t bi) {
    const int64_t first = bi * h.block, m = std::min(h.block, h.count - first);
    RansMessage message = rans_deserialize(
        reinterpret_cast<const uint8_t*>(file.data()) + h.block_offset[bi], h.block_bytes[bi]);
    const auto imgs = pop_block(message, engine, m);
    if (!rans_empty(message))
      throw Error("block " + std::to_string(bi) + " does not decode cleanly (corrupt data)");
    std::memcpy(out.pixels.data() + first * D, imgs.data(), imgs.size());
  });
  return out;
}

}  // namespace tame
