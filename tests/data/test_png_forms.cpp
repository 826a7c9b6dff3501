// The PNG reader's conversions: the forms tame does not code (palette, 1-bit
// gray, alpha, tRNS, 16-bit) become gray or RGB when nothing is lost, and are
// refused with one clear error when something would be; a header that
// declares a huge image is refused before anything is allocated.
#include <gtest/gtest.h>
#include <png.h>

#include <cstring>

#include "tame/error.h"
#include "tame/io/file.h"
#include "tame/io/png.h"

namespace {

// A PNG of any form, written by libpng from rows of raw samples (16-bit ones
// big-endian, as PNG stores them).
struct Form {
  int color_type = PNG_COLOR_TYPE_RGB, bit_depth = 8;
  std::vector<png_color> palette;
  std::vector<png_byte> trns;  // palette alpha
};

void append(png_structp png, png_bytep data, png_size_t n) {
  static_cast<std::string*>(png_get_io_ptr(png))->append(reinterpret_cast<char*>(data), n);
}

std::string write_form(const Form& f, uint32_t w, uint32_t h, std::vector<uint8_t> pixels) {
  std::string out;
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
  png_infop info = png_create_info_struct(png);
  if (setjmp(png_jmpbuf(png))) {
    png_destroy_write_struct(&png, &info);
    ADD_FAILURE() << "libpng failed to write the test image";
    return out;
  }
  png_set_write_fn(png, &out, append, nullptr);
  png_set_IHDR(png, info, w, h, f.bit_depth, f.color_type, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (!f.palette.empty())
    png_set_PLTE(png, info, f.palette.data(), static_cast<int>(f.palette.size()));
  if (!f.trns.empty())
    png_set_tRNS(png, info, f.trns.data(), static_cast<int>(f.trns.size()), nullptr);
  png_write_info(png, info);
  const size_t stride = pixels.size() / h;
  for (uint32_t y = 0; y < h; ++y) png_write_row(png, pixels.data() + y * stride);
  png_write_end(png, nullptr);
  png_destroy_write_struct(&png, &info);
  return out;
}

std::string error_of(const std::string& bytes) {
  try {
    tame::decode_png(bytes, "x.png");
  } catch (const tame::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(PngForms, OpaqueAlphaIsDroppedAndTransparencyRefused) {
  // RGBA 3x1, every alpha 255: the RGB image.
  Form rgba{PNG_COLOR_TYPE_RGB_ALPHA};
  auto img = tame::decode_png(write_form(rgba, 3, 1, {1, 2, 3, 255, 4, 5, 6, 255, 7, 8, 9, 255}));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_EQ(img[0][0][1].item<int>(), 4);
  EXPECT_EQ(img[2][0][2].item<int>(), 9);
  // Gray + alpha, opaque: gray.
  Form ga{PNG_COLOR_TYPE_GRAY_ALPHA};
  img = tame::decode_png(write_form(ga, 2, 1, {10, 255, 20, 255}));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(img[0][0][1].item<int>(), 20);
  // One transparent pixel: refused, naming the file.
  const std::string e = error_of(write_form(rgba, 2, 1, {1, 2, 3, 255, 4, 5, 6, 128}));
  EXPECT_NE(e.find("x.png"), std::string::npos) << e;
  EXPECT_NE(e.find("transparent"), std::string::npos) << e;
}

TEST(PngForms, PalettesExpandAndTheirTransparencyIsChecked) {
  Form pal{PNG_COLOR_TYPE_PALETTE};
  pal.palette = {{10, 20, 30}, {40, 50, 60}};
  auto img = tame::decode_png(write_form(pal, 3, 1, {0, 1, 1}));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 1, 3}));
  EXPECT_EQ(img[1][0][0].item<int>(), 20);
  EXPECT_EQ(img[2][0][2].item<int>(), 60);
  pal.trns = {255, 255};  // tRNS present, every entry opaque: fine
  EXPECT_TRUE(torch::equal(tame::decode_png(write_form(pal, 3, 1, {0, 1, 1})), img));
  pal.trns = {255, 0};  // entry 1 is transparent
  EXPECT_NE(error_of(write_form(pal, 3, 1, {0, 1, 1})).find("transparent"), std::string::npos);
  // 1-bit gray: 0 and 255.
  Form bits{PNG_COLOR_TYPE_GRAY, 1};
  img = tame::decode_png(write_form(bits, 8, 1, {0b10100000}));
  EXPECT_EQ(img[0][0][0].item<int>(), 255);
  EXPECT_EQ(img[0][0][1].item<int>(), 0);
}

TEST(PngForms, SixteenBitNarrowsOnlyWhenLossless) {
  Form g16{PNG_COLOR_TYPE_GRAY, 16};
  // 8-bit values widened (v * 257 = v in both bytes): the 8-bit image.
  auto img = tame::decode_png(write_form(g16, 2, 1, {7, 7, 200, 200}));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{1, 1, 2}));
  EXPECT_EQ(img[0][0][0].item<int>(), 7);
  EXPECT_EQ(img[0][0][1].item<int>(), 200);
  // A sample that needs 16 bits: refused.
  EXPECT_NE(error_of(write_form(g16, 2, 1, {7, 8, 200, 200})).find("16-bit"), std::string::npos);
  // RGBA 16-bit, opaque (65535), widened values: RGB.
  Form rgba16{PNG_COLOR_TYPE_RGB_ALPHA, 16};
  img = tame::decode_png(write_form(rgba16, 1, 1, {1, 1, 2, 2, 3, 3, 255, 255}));
  ASSERT_EQ(img.sizes(), (std::vector<int64_t>{3, 1, 1}));
  EXPECT_EQ(img[2][0][0].item<int>(), 3);
}

TEST(PngForms, HugeDeclaredSizesAreRefusedBeforeReading) {
  // A valid header declaring 60000 x 60000 pixels, with a tiny body.
  Form gray{PNG_COLOR_TYPE_GRAY};
  std::string small = write_form(gray, 1, 1, {0});
  // IHDR data starts at byte 16: width, height (big-endian); its CRC follows.
  auto put32 = [&](size_t at, uint32_t v) {
    for (int k = 0; k < 4; ++k) small[at + k] = static_cast<char>((v >> (24 - 8 * k)) & 255);
  };
  put32(16, 60000);
  put32(20, 60000);
  put32(29, tame::crc32_of(small.data() + 12, 17));  // the CRC of "IHDR" and its data
  const std::string e = error_of(small);
  EXPECT_NE(e.find("60000x60000"), std::string::npos) << e;
}
