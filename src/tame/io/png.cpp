#include "tame/io/png.h"

#include <png.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>

#include "tame/common.h"
#include "tame/io/file.h"

// libpng reports errors by longjmp; the error paths only free and throw, so
// GCC's -Wclobbered warnings about locals set before setjmp are false alarms.
#pragma GCC diagnostic ignored "-Wclobbered"

namespace tame {
namespace {

struct ReadState {
  const std::string* bytes;
  size_t pos = 0;
};

void read_cb(png_structp png, png_bytep out, png_size_t n) {
  auto* st = static_cast<ReadState*>(png_get_io_ptr(png));
  if (st->pos + n > st->bytes->size()) png_error(png, "file is truncated");
  std::memcpy(out, st->bytes->data() + st->pos, n);
  st->pos += n;
}

void write_cb(png_structp png, png_bytep data, png_size_t n) {
  auto* out = static_cast<std::string*>(png_get_io_ptr(png));
  out->append(reinterpret_cast<const char*>(data), n);
}

void flush_cb(png_structp) {}

struct ErrorText {
  char text[256] = {0};
};

void error_cb(png_structp png, png_const_charp msg) {
  auto* et = static_cast<ErrorText*>(png_get_error_ptr(png));
  std::snprintf(et->text, sizeof(et->text), "%s", msg);
  longjmp(png_jmpbuf(png), 1);
}

void warning_cb(png_structp, png_const_charp) {}

}  // namespace

torch::Tensor read_png(const std::string& path) { return decode_png(read_file(path), path); }

namespace {

// Samples as read, [H][W][channels] of `bytes` (1 or 2) each, native order.
struct RawPng {
  int64_t h = 0, w = 0, channels = 0, bytes = 1;
  bool alpha = false;
  std::vector<uint8_t> data;
  uint32_t sample(size_t i) const {
    if (bytes == 1) return data[i];
    uint16_t v;
    std::memcpy(&v, data.data() + 2 * i, 2);
    return v;
  }
};

RawPng read_raw(const std::string& bytes, const std::string& name) {
  ErrorText et;
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &et, error_cb, warning_cb);
  png_infop info = png_create_info_struct(png);
  ReadState st{&bytes, 0};
  RawPng raw;
  std::vector<png_bytep> rows;
  // Variables touched after setjmp must not live in registers; keep them in objects above.
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(name + ": corrupt PNG (" + et.text + ")");
  }
  png_set_read_fn(png, &st, read_cb);
  png_read_info(png, info);
  raw.w = png_get_image_width(png, info);
  raw.h = png_get_image_height(png, info);
  const int depth = png_get_bit_depth(png, info), type = png_get_color_type(png, info);
  if (raw.w > kMaxImageSide || raw.h > kMaxImageSide || raw.w * raw.h > kMaxImagePixels) {
    png_destroy_read_struct(&png, &info, nullptr);
    throw Error(name + ": " + std::to_string(raw.w) + "x" + std::to_string(raw.h) +
                " pixels is more than tame reads (at most " + std::to_string(kMaxImageSide) +
                " a side and " + std::to_string(kMaxImagePixels) + " pixels)");
  }
  // Palette, low-bit gray and tRNS transparency become plain gray/RGB(A).
  if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
  if (depth == 16) png_set_swap(png);  // PNG is big-endian; read native uint16
  png_read_update_info(png, info);
  raw.channels = png_get_channels(png, info);
  raw.bytes = png_get_bit_depth(png, info) == 16 ? 2 : 1;
  raw.alpha = (png_get_color_type(png, info) & PNG_COLOR_MASK_ALPHA) != 0;
  const size_t stride = png_get_rowbytes(png, info);
  raw.data.resize(stride * raw.h);
  rows.resize(raw.h);
  for (int64_t y = 0; y < raw.h; ++y) rows[y] = raw.data.data() + y * stride;
  png_read_image(png, rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return raw;
}

}  // namespace

torch::Tensor decode_png(const std::string& bytes, const std::string& name) {
  if (bytes.size() < 8 || png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) != 0)
    throw Error(name + ": not a PNG file");
  const RawPng raw = read_raw(bytes, name);
  // What tame codes is 8-bit gray or RGB; other forms convert only when no
  // information is lost: alpha that is opaque everywhere is dropped, 16-bit
  // samples that are 8-bit values times 257 (an 8-bit image widened) narrow.
  const int64_t colours = raw.channels - (raw.alpha ? 1 : 0), n = raw.h * raw.w;
  const uint32_t opaque = raw.bytes == 2 ? 65535 : 255;
  auto hwc = torch::empty({raw.h, raw.w, colours}, torch::kUInt8);
  uint8_t* out = hwc.data_ptr<uint8_t>();
  for (int64_t p = 0; p < n; ++p) {
    const size_t at = static_cast<size_t>(p) * raw.channels;
    if (raw.alpha && raw.sample(at + colours) != opaque)
      throw Error(name + ": PNG with transparent pixels (alpha < " + std::to_string(opaque) +
                  "), which gray or RGB cannot hold");
    for (int64_t c = 0; c < colours; ++c) {
      const uint32_t v = raw.sample(at + c);
      if (raw.bytes == 2 && v % 257 != 0)
        throw Error(name +
                    ": 16-bit PNG whose samples 8 bits cannot hold (tame codes 8-bit images)");
      out[p * colours + c] = static_cast<uint8_t>(raw.bytes == 2 ? v / 257 : v);
    }
  }
  return hwc.permute({2, 0, 1}).contiguous();
}

std::string encode_png(const torch::Tensor& image, const PngOptions& options) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3),
              "encode_png: expected [1|3, H, W], got ", image.sizes());
  TORCH_CHECK(options.level >= 0 && options.level <= 9 && options.mem_level >= 1 &&
                  options.mem_level <= 9 && options.strategy >= -1 && options.strategy <= 3 &&
                  options.filter >= -1 && options.filter <= 5 &&
                  (options.bit_depth == 8 || options.bit_depth == 1),
              "encode_png: bad options (level ", options.level, ", mem_level ", options.mem_level,
              ", strategy ", options.strategy, ", filter ", options.filter, ")");
  static constexpr int kFilters[6] = {PNG_FILTER_NONE, PNG_FILTER_SUB,   PNG_FILTER_UP,
                                      PNG_FILTER_AVG,  PNG_FILTER_PAETH, PNG_ALL_FILTERS};
  auto hwc = image.to(torch::kCPU, torch::kUInt8).permute({1, 2, 0}).contiguous();
  const int64_t c = image.size(0), h = image.size(1), w = image.size(2);
  TORCH_CHECK(options.bit_depth == 8 || (c == 1 && hwc.max().item<int>() <= 1),
              "encode_png: bit depth 1 takes gray images of values 0 and 1");
  // One IDAT chunk: the compressed data never exceeds the raw rows by much.
  const size_t raw = static_cast<size_t>(h) * (w * c + 1);
  const size_t idat = std::min<size_t>(std::max<size_t>(raw + raw / 100 + 1024, 8192), 1 << 26);
  std::string out;
  ErrorText et;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &et, error_cb, warning_cb);
  png_infop info = png_create_info_struct(png);
  std::vector<png_bytep> rows(h);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    throw Error(std::string("PNG encoding failed: ") + et.text);
  }
  png_set_write_fn(png, &out, write_cb, flush_cb);
  png_set_compression_buffer_size(png, idat);
  png_set_compression_level(png, options.level);
  png_set_compression_mem_level(png, options.mem_level);
  if (options.strategy >= 0) png_set_compression_strategy(png, options.strategy);
  if (options.filter >= 0) png_set_filter(png, PNG_FILTER_TYPE_BASE, kFilters[options.filter]);
  png_set_IHDR(png, info, w, h, options.bit_depth,
               c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(png, info);
  if (options.bit_depth < 8) png_set_packing(png);  // rows of one byte per pixel, packed by libpng
  for (int64_t y = 0; y < h; ++y) rows[y] = hwc.data_ptr<uint8_t>() + y * w * c;
  png_write_image(png, rows.data());
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string encode_png(const torch::Tensor& image, int level) {
  PngOptions options;
  options.level = level;
  return encode_png(image, options);
}

void write_png(const std::string& path, const torch::Tensor& image) {
  write_file_atomic(path, encode_png(image));
}

torch::Tensor image_grid(const torch::Tensor& images, int64_t levels, int64_t pad,
                         int64_t columns) {
  TORCH_CHECK(images.dim() == 4, "image_grid: expected [N, C, H, W]");
  const int64_t n = images.size(0), c = images.size(1), h = images.size(2), w = images.size(3);
  if (columns <= 0)
    columns = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(double(n)))));
  const int64_t rows = (n + columns - 1) / columns;
  auto scaled = (images.to(torch::kCPU, torch::kFloat) * (255.0 / double(levels - 1)))
                    .round()
                    .to(torch::kUInt8);
  auto grid =
      torch::full({c, rows * (h + pad) + pad, columns * (w + pad) + pad}, 64, torch::kUInt8);
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / columns, col = i % columns;
    grid.slice(1, pad + r * (h + pad), pad + r * (h + pad) + h)
        .slice(2, pad + col * (w + pad), pad + col * (w + pad) + w)
        .copy_(scaled[i]);
  }
  return grid;
}

}  // namespace tame
