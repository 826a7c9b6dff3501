#include "tame/codec/model_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "tame/codec/rans.h"
#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/parallel.h"

namespace tame {

namespace {

// Counts coded units (images, or tiles) across the worker threads and reports
// them, one call at a time.
class BlockCounter {
 public:
  BlockCounter(const CodecProgress& progress, int64_t units, int64_t images)
      : progress_(progress), total_(units), unit_(units > images ? "tiles" : "images") {}
  void add(int64_t units) {
    if (!progress_) return;
    std::lock_guard<std::mutex> lock(mutex_);
    done_ += units;
    progress_(done_, total_, unit_);
  }

 private:
  const CodecProgress& progress_;
  int64_t total_, done_ = 0;
  const char* unit_;
  std::mutex mutex_;
};

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
  size_t left() const { return end_ - pos_; }

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

// Consecutive images of one size.
struct Run {
  int64_t images = 0;
  ImageSize size;
};

std::vector<Run> runs_of(const std::vector<ImageSize>& sizes) {
  std::vector<Run> runs;
  for (const auto& s : sizes) {
    if (runs.empty() || runs.back().size != s) runs.push_back({0, s});
    ++runs.back().images;
  }
  return runs;
}

// The units a file codes, in order: whole images, and for tile > 0 the
// tiles (raster order) of each image wider or taller than `tile`.
std::vector<Tile> tiles_of(const std::vector<ImageSize>& sizes, int64_t tile) {
  std::vector<Tile> units;
  for (int64_t i = 0; i < static_cast<int64_t>(sizes.size()); ++i) {
    const ImageSize& s = sizes[i];
    if (tile == 0 || (s.height <= tile && s.width <= tile)) {
      units.push_back({i, 0, 0, s, false});
      continue;
    }
    for (int64_t y = 0; y < s.height; y += tile)
      for (int64_t x = 0; x < s.width; x += tile)
        units.push_back({i,
                         y,
                         x,
                         {s.channels, std::min(tile, s.height - y), std::min(tile, s.width - x)},
                         true});
  }
  return units;
}

// The blocks of a file: runs of consecutive units of one size cut into blocks
// of `block`; every tile of a split image is a block of its own, so that the
// threads share a large image.
void cut_blocks(const std::vector<Tile>& units, int64_t block, std::vector<int64_t>* first,
                std::vector<int64_t>* count) {
  for (int64_t u = 0; u < static_cast<int64_t>(units.size()); ++u) {
    const bool join = !first->empty() && !units[u].part && !units[first->back()].part &&
                      count->back() < block && units[first->back()].size == units[u].size;
    if (join) {
      ++count->back();
    } else {
      first->push_back(u);
      count->push_back(1);
    }
  }
}

// Unit t's values [C][h][w] from its image's [C][H][W], and back.
void take_tile(const Tile& t, const ImageSize& of, const uint16_t* image, uint16_t* tile) {
  for (int64_t c = 0; c < t.size.channels; ++c)
    for (int64_t r = 0; r < t.size.height; ++r)
      std::copy_n(image + (c * of.height + t.y + r) * of.width + t.x, t.size.width,
                  tile + (c * t.size.height + r) * t.size.width);
}

void put_tile(const Tile& t, const ImageSize& of, const uint16_t* tile, uint16_t* image) {
  for (int64_t c = 0; c < t.size.channels; ++c)
    for (int64_t r = 0; r < t.size.height; ++r)
      std::copy_n(tile + (c * t.size.height + r) * t.size.width, t.size.width,
                  image + (c * of.height + t.y + r) * of.width + t.x);
}

}  // namespace

std::string ImageSize::str() const {
  return std::to_string(channels) + "x" + std::to_string(height) + "x" + std::to_string(width);
}

ImageList image_list(const uint8_t* values, int64_t n, ImageSize size,
                     std::vector<std::string> names) {
  ImageList list;
  list.sizes.assign(n, size);
  list.values.assign(values, values + n * size.dims());
  list.names = std::move(names);
  return list;
}

// ------------------------------------------------------------- block codec

namespace {

// Steps a fresh engine through a block of n images: at every step the engine
// names, `code(engine, b, value)` codes image b's value (value: the known one
// when encoding, else -1) and returns it. This loop is the block's symbol
// order, written once for the encoder and the decoder.
template <class Code>
std::vector<uint16_t> walk_block(const StepEngine& engine, int64_t n, ImageSize size,
                                 const float* context, const uint16_t* known, Code code) {
  auto e = engine.clone();
  e->begin(n, size.height, size.width, context);
  const int64_t D = size.dims(), HW = size.height * size.width;
  std::vector<uint16_t> values(n);
  while (!e->done()) {
    const SubPixel p = e->next();
    const int64_t at = p.c * HW + p.i * size.width + p.j;
    for (int64_t b = 0; b < n; ++b)
      values[b] = code(*e, b, known ? int64_t{known[b * D + at]} : -1);
    e->observe(values.data());
  }
  return e->images();
}

}  // namespace

void push_block(RansMessage& m, const StepEngine& engine, const ImageBlock& block,
                EncodeStats* stats, const float* context) {
  // The pops run forward through the engine, so the pushes go last-first: the
  // tables are computed forward and pushed in reverse.
  std::vector<uint32_t> start, freq;
  double model_bits = 0, ideal_bits = 0;
  walk_block(engine, block.n, block.size, context, block.values.data(),
             [&](StepEngine& e, int64_t b, int64_t v) {
               const Symbol s = e.symbol(b, kCodecPrecision, v, 0, 1.0, &model_bits);
               start.push_back(s.start);
               freq.push_back(s.freq);
               ideal_bits += kCodecPrecision - std::log2(static_cast<double>(s.freq));
               return s.value;
             });
  for (size_t t = start.size(); t-- > 0;) rans_push(m, start[t], freq[t], kCodecPrecision);
  if (stats) {
    stats->model_bits += model_bits;
    stats->ideal_bits += ideal_bits;
  }
}

ImageBlock pop_block(RansMessage& m, const StepEngine& engine, int64_t n, ImageSize size,
                     const float* context) {
  ImageBlock block{size, n, {}};
  block.values =
      walk_block(engine, n, size, context, nullptr, [&](StepEngine& e, int64_t b, int64_t) {
        const Symbol s = e.symbol(b, kCodecPrecision, -1, rans_peek(m, kCodecPrecision));
        rans_pop(m, s.start, s.freq, kCodecPrecision);
        return s.value;
      });
  return block;
}

Codec<ImageBlock> block_codec(const StepEngine& engine, int64_t n, ImageSize size) {
  std::shared_ptr<const StepEngine> e = engine.clone();
  return {[e](RansMessage& m, const ImageBlock& b) { push_block(m, *e, b); },
          [e, n, size](RansMessage& m) { return pop_block(m, *e, n, size); }};
}

int64_t StepEngine::max_block() const { return kMaxBlock; }

void StepEngine::push_images(RansMessage& m, const ImageBlock& block, EncodeStats* stats,
                             const UnitsDone& done) const {
  push_block(m, *this, block, stats);
  if (done) done(block.n);  // the images are stepped together: all finish at once
}

ImageBlock StepEngine::pop_images(RansMessage& m, int64_t n, ImageSize size,
                                  const UnitsDone& done) const {
  ImageBlock block = pop_block(m, *this, n, size);
  if (done) done(n);
  return block;
}

// ----------------------------------------------------------------- encoder

namespace {

void check_inputs(const ImageCoder& coder, const std::string& model_name, const ImageList& x,
                  int64_t block) {
  const int64_t n = static_cast<int64_t>(x.sizes.size()), K = coder.levels();
  if (n < 1) throw Error("nothing to compress");
  if (block < 1 || block > coder.max_block())
    throw Error("block size must be in 1.." + std::to_string(coder.max_block()) +
                " for this model");
  if (!x.names.empty() && static_cast<int64_t>(x.names.size()) != n)
    throw Error("one name per image expected");
  for (const auto& name : x.names) check_name(name);
  if (model_name.size() > 255) throw Error("model name too long");
  int64_t total = 0;
  for (int64_t i = 0; i < n; ++i) {
    const ImageSize& s = x.sizes[i];
    if (s.channels != coder.channels())
      throw Error("image " + std::to_string(i) + " has " + std::to_string(s.channels) +
                  " channels, but the model takes " + std::to_string(coder.channels()));
    if (s.height < 1 || s.width < 1 || s.height > kMaxSide || s.width > kMaxSide)
      throw Error("image " + std::to_string(i) + " is " + s.str() + ": sides must be in 1.." +
                  std::to_string(kMaxSide));
    for (int64_t k = 0; k < s.dims(); ++k)
      if (x.values.at(total + k) >= K)
        throw Error("image " + std::to_string(i) + " has value " +
                    std::to_string(x.values[total + k]) + ", outside the model's " +
                    std::to_string(K) + " levels");
    total += s.dims();
  }
  if (static_cast<int64_t>(x.values.size()) != total)
    throw Error("the image values don't match their sizes");
}

// A stored block's bytes: each value in one byte (levels <= 256) or two.
std::string raw_values(const std::vector<uint16_t>& values, int64_t levels) {
  std::string out;
  out.reserve(values.size() * (levels <= 256 ? 1 : 2));
  for (uint16_t v : values) {
    out.push_back(static_cast<char>(v & 0xff));
    if (levels > 256) out.push_back(static_cast<char>(v >> 8));
  }
  return out;
}

std::string container(const ImageCoder& coder, const std::string& model_name, const ImageList& x,
                      int64_t block, int64_t tile, const std::vector<std::string>& payload,
                      const std::vector<uint8_t>& stored) {
  const bool any_stored = std::find(stored.begin(), stored.end(), 1) != stored.end();
  std::string meta;
  put_u64(meta, coder.fingerprint());
  meta.push_back(static_cast<char>(model_name.size()));
  meta += model_name;
  put_u32(meta, static_cast<uint32_t>(coder.levels()));
  put_u32(meta, kCodecPrecision);
  put_u64(meta, static_cast<uint64_t>(x.sizes.size()));
  put_u32(meta, static_cast<uint32_t>(block));
  put_u32(meta, (x.names.empty() ? 0u : 1u) | (any_stored ? 2u : 0u) | (tile > 0 ? 4u : 0u));
  if (tile > 0) put_u32(meta, static_cast<uint32_t>(tile));
  const auto runs = runs_of(x.sizes);
  put_u32(meta, static_cast<uint32_t>(runs.size()));
  for (const auto& r : runs) {
    put_u64(meta, static_cast<uint64_t>(r.images));
    for (int64_t v : {r.size.channels, r.size.height, r.size.width})
      put_u32(meta, static_cast<uint32_t>(v));
  }
  for (const auto& p : payload) {
    put_u32(meta, static_cast<uint32_t>(p.size()));
    put_u32(meta, crc32_of(p));
  }
  if (any_stored)
    for (uint8_t mode : stored) meta.push_back(static_cast<char>(mode));
  for (const auto& name : x.names) {
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
  return file;
}

}  // namespace

std::string encode_images(const ImageCoder& coder, const std::string& model_name,
                          const ImageList& images, const EncodeOptions& o, EncodeStats* stats) {
  if (o.tile != 0 && (o.tile < kMinTile || o.tile > kMaxSide))
    throw Error("tile side must be 0 or in " + std::to_string(kMinTile) + ".." +
                std::to_string(kMaxSide));
  std::vector<Tile> units = tiles_of(images.sizes, o.tile);
  const int64_t block =
      o.block != 0
          ? o.block
          : std::min(coder.max_block(), coder.default_block(static_cast<int64_t>(units.size())));
  check_inputs(coder, model_name, images, block);
  // A file records its tile side only when some image was split.
  const bool split = std::any_of(units.begin(), units.end(), [](const Tile& t) { return t.part; });
  std::vector<int64_t> first, count, offset(1, 0);
  cut_blocks(units, block, &first, &count);
  for (const auto& s : images.sizes) offset.push_back(offset.back() + s.dims());
  const int64_t blocks = static_cast<int64_t>(first.size());
  std::vector<std::string> payload(blocks);
  std::vector<EncodeStats> part(blocks);
  std::vector<uint8_t> stored(blocks, 0);
  BlockCounter counter{o.progress, static_cast<int64_t>(units.size()),
                       static_cast<int64_t>(images.sizes.size())};
  run_parallel(blocks, o.threads, [&](int64_t bi) {
    const ImageSize size = units[first[bi]].size;
    ImageBlock b{size, count[bi], std::vector<uint16_t>(count[bi] * size.dims())};
    for (int64_t k = 0; k < count[bi]; ++k) {
      const Tile& t = units[first[bi] + k];
      take_tile(t, images.sizes[t.image], images.values.data() + offset[t.image],
                b.values.data() + k * size.dims());
    }
    RansMessage m;
    coder.push_images(m, b, &part[bi], [&](int64_t k) { counter.add(k); });
    payload[bi] = rans_serialize(m);
    if (o.allow_stored) {
      std::string raw = raw_values(b.values, coder.levels());
      if (raw.size() <= payload[bi].size()) {
        payload[bi] = std::move(raw);
        stored[bi] = 1;
      }
    }
  });
  std::string file =
      container(coder, model_name, images, block, split ? o.tile : 0, payload, stored);
  if (stats) {
    *stats = EncodeStats{};
    stats->file_bits = 8.0 * static_cast<double>(file.size());
    for (const auto& p : part) {
      stats->ideal_bits += p.ideal_bits;
      stats->model_bits += p.model_bits;
      stats->chain_bits += p.chain_bits;
    }
  }
  return file;
}

std::string encode_images(const ImageCoder& coder, const std::string& model_name,
                          const ImageList& images, int64_t block, int threads, EncodeStats* stats,
                          bool allow_stored) {
  EncodeOptions o;
  o.block = block;
  o.threads = threads;
  o.allow_stored = allow_stored;
  return encode_images(coder, model_name, images, o, stats);
}

// ------------------------------------------------------------------ parser

namespace {

// Magic, version, meta length and the header checksum; returns the meta's end.
size_t check_top(const std::string& file, uint32_t* version) {
  if (file.size() < 8 || std::memcmp(file.data(), kMagic, 8) != 0)
    throw Error("not a tame compressed file (bad magic)");
  if (file.size() < 20) throw Error("the file is truncated");
  Reader top(file, 8, file.size());
  *version = static_cast<uint32_t>(top.uint(4));
  if (*version != 1 && *version != kCodecVersion)
    throw Error("unsupported format version " + std::to_string(*version) +
                " (this tame reads versions 1 and " + std::to_string(kCodecVersion) + ")");
  const uint64_t meta_len = top.uint(4);
  if (meta_len > file.size() - 20) throw Error("the file is truncated (header)");
  const size_t meta_end = 16 + meta_len;
  const uint32_t stored_crc = static_cast<uint32_t>(Reader(file, meta_end, file.size()).uint(4));
  if (crc32_of(file.data(), meta_end) != stored_crc) {
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
    throw Error("the header is corrupt (checksum mismatch)");
#endif
  }
  return meta_end;
}

void check_size(const ImageSize& s) {
  if (s.channels < 1 || s.channels > 4 || s.height < 1 || s.height > kMaxSide || s.width < 1 ||
      s.width > kMaxSide)
    throw Error("the header describes impossible images");
}

// The fields after the model name, up to the block table; the image runs.
std::vector<Run> read_geometry(Reader& r, CodecHeader& h, uint32_t* flags) {
  Run one;
  if (h.version == 1)
    for (int64_t* v : {&one.size.channels, &one.size.height, &one.size.width})
      *v = static_cast<int64_t>(r.uint(4));
  h.levels = static_cast<int64_t>(r.uint(4));
  h.precision = static_cast<uint32_t>(r.uint(4));
  const uint64_t count = r.uint(8);
  h.block = static_cast<int64_t>(r.uint(4));
  *flags = static_cast<uint32_t>(r.uint(4));
  if (h.version > 1 && (*flags & 4)) {
    h.tile = static_cast<int64_t>(r.uint(4));
    if (h.tile < kMinTile || h.tile > kMaxSide) throw Error("bad tile side");
  }
  if (h.levels < 2 || h.levels > (h.version == 1 ? 256 : 65536))
    throw Error("the header describes impossible images");
  if (h.precision != kCodecPrecision)
    throw Error("unsupported precision " + std::to_string(h.precision));
  if (h.block < 1 || h.block > kMaxFileBlock)
    throw Error("bad block size " + std::to_string(h.block));
  if (count < 1 || count > (uint64_t{1} << 31)) throw Error("bad image count");
  if (*flags > (h.version == 1 ? 1u : 7u)) throw Error("unknown flags");
  h.count = static_cast<int64_t>(count);
  if (h.version == 1) {
    check_size(one.size);
    one.images = h.count;
    return {one};
  }
  const uint64_t n_runs = r.uint(4);
  if (n_runs < 1 || n_runs > count || n_runs > r.left() / 20) throw Error("bad image runs");
  std::vector<Run> runs(n_runs);
  uint64_t total = 0;
  for (auto& run : runs) {
    const uint64_t images = r.uint(8);
    for (int64_t* v : {&run.size.channels, &run.size.height, &run.size.width})
      *v = static_cast<int64_t>(r.uint(4));
    check_size(run.size);
    if (images < 1 || images > count - total) throw Error("bad image runs");
    total += images;
    run.images = static_cast<int64_t>(images);
  }
  if (total != count) throw Error("bad image runs");
  return runs;
}

// Everything after the runs: the block table, the names, the payloads' extent
// and checksums.
void read_blocks(const std::string& file, Reader& r, size_t meta_end, uint32_t flags,
                 CodecHeader& h) {
  const int64_t blocks = static_cast<int64_t>(h.block_first.size());
  uint64_t offset = meta_end + 4;
  std::vector<uint32_t> crcs;
  for (int64_t b = 0; b < blocks; ++b) {
    h.block_bytes.push_back(static_cast<uint32_t>(r.uint(4)));
    crcs.push_back(static_cast<uint32_t>(r.uint(4)));
    h.block_offset.push_back(offset);
    offset += h.block_bytes.back();
  }
  h.block_stored.assign(blocks, 0);
  if (flags & 2) {
    for (int64_t b = 0; b < blocks; ++b) {
      h.block_stored[b] = static_cast<uint8_t>(r.uint(1));
      if (h.block_stored[b] > 1) throw Error("block " + std::to_string(b) + " has an unknown mode");
      const uint64_t want = static_cast<uint64_t>(h.block_images[b]) *
                            static_cast<uint64_t>(h.units[h.block_first[b]].size.dims()) *
                            (h.levels <= 256 ? 1 : 2);
      if (h.block_stored[b] && h.block_bytes[b] != want)
        throw Error("stored block " + std::to_string(b) + " has the wrong size");
    }
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
}

}  // namespace

CodecHeader parse_header(const std::string& file) {
  CodecHeader h;
  const size_t meta_end = check_top(file, &h.version);
  Reader r(file, 16, meta_end);
  h.fingerprint = r.uint(8);
  h.model_name = r.str(r.uint(1));
  uint32_t flags = 0;
  const auto runs = read_geometry(r, h, &flags);
  // Refuse what would not fit in memory before anything is allocated for it.
  uint64_t bytes = 0;
  for (const auto& run : runs) {
    bytes += static_cast<uint64_t>(run.images) * run.size.dims() * sizeof(uint16_t);
    if (bytes > static_cast<uint64_t>(kMaxDecodedBytes))
      throw Error("holds " + std::to_string(h.count) + " images, more than the " +
                  std::to_string(kMaxDecodedBytes >> 30) + " GiB tame decodes at once");
  }
  // Every block takes 8 bytes of the table, and a split image's tiles are
  // blocks of their own: count them before making the list.
  uint64_t blocks = 0;
  for (const auto& run : runs) {
    const ImageSize& z = run.size;
    const bool split = h.tile > 0 && (z.height > h.tile || z.width > h.tile);
    blocks += split ? static_cast<uint64_t>(run.images) * ((z.height + h.tile - 1) / h.tile) *
                          ((z.width + h.tile - 1) / h.tile)
                    : (run.images + h.block - 1) / h.block;
    if (blocks > r.left() / 8) throw Error("the header is truncated (block table)");
  }
  for (const auto& run : runs) h.sizes.insert(h.sizes.end(), run.images, run.size);
  h.units = tiles_of(h.sizes, h.tile);
  cut_blocks(h.units, h.block, &h.block_first, &h.block_images);
  read_blocks(file, r, meta_end, flags, h);
  return h;
}

// ----------------------------------------------------------------- decoder

namespace {

void check_model(const ImageCoder& coder, const CodecHeader& h) {
  if (h.levels != coder.levels())
    throw Error("written for images with " + std::to_string(h.levels) +
                " levels, but this model has " + std::to_string(coder.levels()));
  for (const auto& s : h.sizes)
    if (s.channels != coder.channels())
      throw Error("written for " + s.str() + " images, but this model takes " +
                  std::to_string(coder.channels()) + "-channel images");
  const uint64_t expected = h.version == 1
                                ? coder.fingerprint_v1(h.sizes[0].height, h.sizes[0].width)
                                : coder.fingerprint();
  if (h.fingerprint != expected)
    throw Error("written by another model (" + h.model_name + ", fingerprint " +
                hex64(h.fingerprint) + "); this run's model has fingerprint " + hex64(expected));
  if (h.block > coder.max_block())
    throw Error("blocks of " + std::to_string(h.block) + " images are more than this model codes " +
                "at once (" + std::to_string(coder.max_block()) + ")");
}

// A stored block's values (their count the parser checked), each < levels.
void read_stored(const uint8_t* data, size_t bytes, int64_t levels, int64_t block,
                 std::vector<uint16_t>::iterator to) {
  const size_t width = levels <= 256 ? 1 : 2;
  for (size_t k = 0; k < bytes; k += width) {
    const uint16_t v = static_cast<uint16_t>(data[k] | (width == 2 ? data[k + 1] << 8 : 0));
    if (v >= levels)
      throw Error("stored block " + std::to_string(block) + " has a value outside the levels");
    *to++ = v;
  }
}

}  // namespace

DecodedImages decode_images(const ImageCoder& coder, const std::string& file, int threads,
                            const CodecProgress& progress) {
  DecodedImages out;
  out.header = parse_header(file);
  const CodecHeader& h = out.header;
  // A file of this model written under an earlier frequency rule decodes
  // with the coder of that rule.
  std::shared_ptr<const ImageCoder> earlier;
  if (h.version > 1 && h.fingerprint != coder.fingerprint())
    earlier = coder.earlier_rule(h.fingerprint);
  const ImageCoder& use = earlier ? *earlier : coder;
  check_model(use, h);
  std::vector<int64_t> offset(1, 0);
  for (const auto& s : h.sizes) offset.push_back(offset.back() + s.dims());
  out.images.sizes = h.sizes;
  out.images.names = h.names;
  out.images.values.assign(offset.back(), 0);
  const int64_t blocks = static_cast<int64_t>(h.block_first.size());
  BlockCounter counter{progress, static_cast<int64_t>(h.units.size()),
                       static_cast<int64_t>(h.sizes.size())};
  run_parallel(blocks, threads, [&](int64_t bi) {
    const auto* data = reinterpret_cast<const uint8_t*>(file.data()) + h.block_offset[bi];
    const ImageSize size = h.units[h.block_first[bi]].size;
    std::vector<uint16_t> values;
    if (h.block_stored[bi]) {
      values.resize(h.block_images[bi] * size.dims());
      read_stored(data, h.block_bytes[bi], h.levels, bi, values.begin());
      counter.add(h.block_images[bi]);
    } else {
      RansMessage m = rans_deserialize(data, h.block_bytes[bi]);
      values =
          use.pop_images(m, h.block_images[bi], size, [&](int64_t k) { counter.add(k); }).values;
      if (!rans_empty(m))
        throw Error("block " + std::to_string(bi) + " does not decode cleanly (corrupt data)");
    }
    for (int64_t k = 0; k < h.block_images[bi]; ++k) {
      const Tile& t = h.units[h.block_first[bi] + k];
      put_tile(t, h.sizes[t.image], values.data() + k * size.dims(),
               out.images.values.data() + offset[t.image]);
    }
  });
  return out;
}

}  // namespace tame
