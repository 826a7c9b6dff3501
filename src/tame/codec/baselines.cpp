#include "tame/codec/baselines.h"

extern "C" {  // jbigkit's header has no C++ guard
#include <jbig.h>
}
#include <jxl/decode.h>
#include <jxl/encode.h>
#include <setjmp.h>
#include <signal.h>
#include <webp/decode.h>
#include <webp/encode.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "tame/common.h"
#include "tame/io/png.h"
#include "tame/parallel.h"

namespace tame {
namespace {

void check_image(const torch::Tensor& image, const char* who) {
  TORCH_CHECK(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) && image.size(1) > 0 &&
                  image.size(2) > 0,
              who, ": expected a non-empty image [1|3, H, W], got ", image.sizes());
  TORCH_CHECK(image.scalar_type() == torch::kUInt8, who, ": expected uint8, got ",
              image.scalar_type());
}

// uint8 [C, H, W] (C = 1 or 3) as contiguous interleaved rows [H, W, C].
torch::Tensor interleaved(const torch::Tensor& image, const char* who) {
  check_image(image, who);
  return image.to(torch::kCPU).permute({1, 2, 0}).contiguous();
}

}  // namespace

std::string encode_png_best(const torch::Tensor& image, bool bilevel) {
  check_image(image, "encode_png_best");
  TORCH_CHECK(!bilevel || image.size(0) == 1, "encode_png_best: a bilevel image is gray");
  const torch::Tensor pixels = bilevel ? (image > 127).to(torch::kUInt8) : image;
  std::string best;
  PngOptions o;
  o.bit_depth = bilevel ? 1 : 8;
  for (o.filter = 0; o.filter <= 5; ++o.filter)
    for (o.mem_level = 8; o.mem_level <= 9; ++o.mem_level)
      for (o.strategy = 0; o.strategy <= 3; ++o.strategy)
        for (o.level = 1; o.level <= 9; ++o.level) {
          // Trials zlib makes identical: Huffman-only and RLE ignore the level,
          // and levels 1-3 (deflate_fast) ignore Z_FILTERED.
          if ((o.strategy >= 2 && o.level != 9) || (o.strategy == 1 && o.level <= 3)) continue;
          std::string png = encode_png(pixels, o);
          if (best.empty() || png.size() < best.size()) best = std::move(png);
        }
  return best;
}

std::string encode_webp_lossless(const torch::Tensor& image) {
  auto hwc = interleaved(image, "encode_webp_lossless");
  const int h = static_cast<int>(image.size(1)), w = static_cast<int>(image.size(2));
  TORCH_CHECK(w <= WEBP_MAX_DIMENSION && h <= WEBP_MAX_DIMENSION,
              "encode_webp_lossless: WebP images are at most ", WEBP_MAX_DIMENSION,
              " pixels wide and high, got ", h, "x", w);
  if (image.size(0) == 1) hwc = hwc.expand({h, w, 3}).contiguous();  // cwebp reads gray as RGB

  WebPConfig config;
  if (!WebPConfigInit(&config) || !WebPConfigLosslessPreset(&config, 9))
    throw Error("WebP: libwebp version mismatch");
  config.exact = 1;  // keep the exact values (of transparent pixels, had there been any)
  WebPPicture pic;
  if (!WebPPictureInit(&pic)) throw Error("WebP: libwebp version mismatch");
  pic.use_argb = 1;
  pic.width = w;
  pic.height = h;
  WebPMemoryWriter writer;
  WebPMemoryWriterInit(&writer);
  pic.writer = WebPMemoryWrite;
  pic.custom_ptr = &writer;
  bool ok = WebPPictureImportRGB(&pic, hwc.data_ptr<uint8_t>(), 3 * w) && WebPEncode(&config, &pic);
  int code = pic.error_code;
  std::string out(reinterpret_cast<const char*>(writer.mem), writer.size);
  WebPPictureFree(&pic);
  WebPMemoryWriterClear(&writer);
  if (!ok) throw Error("WebP encoding failed (libwebp error " + std::to_string(code) + ")");
  return out;
}

torch::Tensor decode_webp(const std::string& bytes, int64_t channels) {
  TORCH_CHECK(channels == 1 || channels == 3, "decode_webp: channels must be 1 or 3, got ",
              channels);
  const auto* data = reinterpret_cast<const uint8_t*>(bytes.data());
  int w = 0, h = 0;
  uint8_t* rgb = WebPDecodeRGB(data, bytes.size(), &w, &h);
  if (!rgb)
    throw Error("corrupt or unsupported WebP data (" + std::to_string(bytes.size()) + " bytes)");
  auto hwc = torch::empty({h, w, 3}, torch::kUInt8);
  std::memcpy(hwc.data_ptr<uint8_t>(), rgb, static_cast<size_t>(h) * w * 3);
  WebPFree(rgb);
  auto chw = hwc.permute({2, 0, 1});
  if (channels == 3) return chw.contiguous();
  if (!torch::equal(chw[0], chw[1]) || !torch::equal(chw[0], chw[2]))
    throw Error("WebP data holds a colour image, not a gray one");
  return chw.slice(0, 0, 1).contiguous();
}

namespace {

// libjxl 0.7 as Debian ships it keeps its debug assertions, and at effort 8
// and 9 one of them (enc_ans.cc:220, "n <= 255", reached while the encoder
// only estimates a cost; libjxl issue #3890) fires on small or nearly
// constant images, e.g. any 8x8 image of value 255: libjxl prints the
// assertion and executes a trap instruction, and the process dies of SIGILL.
// cjxl -e 9 dies on the same images. So libjxl runs under a guard: the trap
// jumps back to the guard, the half-run encoder is abandoned and the caller
// falls back to effort 7. The abandoned encoder and libjxl's skipped frames
// leak, about 140 KB per such image. Other SIGILLs keep their old disposition.
thread_local sigjmp_buf* t_trap_jump = nullptr;
struct sigaction g_previous_sigill;

void on_sigill(int, siginfo_t*, void*) {
  if (t_trap_jump) siglongjmp(*t_trap_jump, 1);
  // Not a guarded call: restore the old disposition; the instruction runs again under it.
  sigaction(SIGILL, &g_previous_sigill, nullptr);
}

// Out of line, so that body's locals live outside the frame that calls sigsetjmp.
template <typename F>
[[gnu::noinline]] void call(F& body) {
  body();
}

// Runs body() and returns true, or returns false if it executed a trap
// instruction. body() must keep no objects with destructors of its own
// across its libjxl calls: a trap skips them.
template <typename F>
bool run_guarded(F&& body) {
  static std::once_flag installed;
  std::call_once(installed, [] {
    struct sigaction sa {};
    sa.sa_sigaction = on_sigill;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGILL, &sa, &g_previous_sigill);
  });
  sigjmp_buf jump;
  if (sigsetjmp(jump, 1) != 0) {
    t_trap_jump = nullptr;
    return false;
  }
  t_trap_jump = &jump;
  try {
    call(body);
  } catch (...) {
    t_trap_jump = nullptr;
    throw;
  }
  t_trap_jump = nullptr;
  return true;
}

// One libjxl encode of interleaved 8-bit pixels into *out; false if libjxl trapped.
bool encode_jxl(const uint8_t* pixels, uint32_t c, uint32_t h, uint32_t w, int effort,
                uint32_t bits, std::string* out) {
  JxlEncoder* enc = JxlEncoderCreate(nullptr);
  if (!enc) throw Error("JPEG-XL: cannot create an encoder");
  const char* failed = nullptr;  // the step that failed, if one did
  size_t used = 0;
  out->assign(4096, '\0');
  bool finished = run_guarded([&] {
    JxlBasicInfo info;
    JxlEncoderInitBasicInfo(&info);
    info.xsize = w;
    info.ysize = h;
    info.bits_per_sample = bits;
    info.exponent_bits_per_sample = 0;
    info.num_color_channels = c;
    info.uses_original_profile = JXL_TRUE;  // lossless: no XYB
    if (JxlEncoderSetBasicInfo(enc, &info) != JXL_ENC_SUCCESS) {
      failed = "basic info";
      return;
    }
    JxlColorEncoding color;
    JxlColorEncodingSetToSRGB(&color, c == 1 ? JXL_TRUE : JXL_FALSE);
    if (JxlEncoderSetColorEncoding(enc, &color) != JXL_ENC_SUCCESS) {
      failed = "colour encoding";
      return;
    }
    JxlEncoderFrameSettings* frame = JxlEncoderFrameSettingsCreate(enc, nullptr);
    if (JxlEncoderSetFrameDistance(frame, 0) != JXL_ENC_SUCCESS ||
        JxlEncoderSetFrameLossless(frame, JXL_TRUE) != JXL_ENC_SUCCESS ||
        JxlEncoderFrameSettingsSetOption(frame, JXL_ENC_FRAME_SETTING_EFFORT, effort) !=
            JXL_ENC_SUCCESS) {
      failed = "frame settings";
      return;
    }
    JxlPixelFormat format{c, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
    if (JxlEncoderAddImageFrame(frame, &format, pixels, size_t{c} * h * w) != JXL_ENC_SUCCESS) {
      failed = "add frame";
      return;
    }
    JxlEncoderCloseInput(enc);
    for (;;) {
      auto* next = reinterpret_cast<uint8_t*>(&(*out)[used]);
      size_t avail = out->size() - used;
      JxlEncoderStatus status = JxlEncoderProcessOutput(enc, &next, &avail);
      used = out->size() - avail;
      if (status == JXL_ENC_SUCCESS) return;
      if (status != JXL_ENC_NEED_MORE_OUTPUT) {
        failed = "output";
        return;
      }
      out->resize(out->size() * 2);
    }
  });
  if (!finished) return false;  // enc is abandoned, not destroyed: its state is unknown
  const int code = static_cast<int>(JxlEncoderGetError(enc));
  JxlEncoderDestroy(enc);
  if (failed)
    throw Error(std::string("JPEG-XL encoding failed at ") + failed + " (libjxl error " +
                std::to_string(code) + ")");
  out->resize(used);
  return true;
}

}  // namespace

std::string encode_jxl_lossless(const torch::Tensor& image, int* effort, bool bilevel) {
  auto hwc = interleaved(image, "encode_jxl_lossless");
  TORCH_CHECK(!bilevel || image.size(0) == 1, "encode_jxl_lossless: a bilevel image is gray");
  const auto c = static_cast<uint32_t>(image.size(0)), h = static_cast<uint32_t>(image.size(1)),
             w = static_cast<uint32_t>(image.size(2));
  std::string out;
  for (int e : {kJxlEffort, kJxlFallbackEffort}) {
    if (encode_jxl(hwc.data_ptr<uint8_t>(), c, h, w, e, bilevel ? 1 : 8, &out)) {
      if (effort) *effort = e;
      return out;
    }
  }
  throw Error("libjxl aborted encoding a " + std::to_string(c) + "x" + std::to_string(h) + "x" +
              std::to_string(w) + " image at effort " + std::to_string(kJxlEffort) + " and " +
              std::to_string(kJxlFallbackEffort));
}

torch::Tensor decode_jxl(const std::string& bytes) {
  JxlDecoder* dec = JxlDecoderCreate(nullptr);
  if (!dec) throw Error("JPEG-XL: cannot create a decoder");
  std::unique_ptr<JxlDecoder, void (*)(JxlDecoder*)> owner(dec, JxlDecoderDestroy);
  const std::string what = "JPEG-XL data (" + std::to_string(bytes.size()) + " bytes)";
  std::string problem;  // set instead of throwing inside the guarded region
  JxlBasicInfo info{};
  JxlPixelFormat format{1, JXL_TYPE_UINT8, JXL_NATIVE_ENDIAN, 0};
  torch::Tensor hwc;
  int frames = 0;
  bool finished = run_guarded([&] {
    if (JxlDecoderSubscribeEvents(dec, JXL_DEC_BASIC_INFO | JXL_DEC_FULL_IMAGE) !=
            JXL_DEC_SUCCESS ||
        JxlDecoderSetInput(dec, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()) !=
            JXL_DEC_SUCCESS) {
      problem = "cannot set up the decoder";
      return;
    }
    JxlDecoderCloseInput(dec);
    for (;;) {
      JxlDecoderStatus status = JxlDecoderProcessInput(dec);
      if (status == JXL_DEC_SUCCESS) return;
      if (status == JXL_DEC_ERROR || status == JXL_DEC_NEED_MORE_INPUT) {
        problem = status == JXL_DEC_ERROR ? "corrupt" : "truncated";
        return;
      }
      if (status == JXL_DEC_BASIC_INFO) {
        if (JxlDecoderGetBasicInfo(dec, &info) != JXL_DEC_SUCCESS) {
          problem = "corrupt";
          return;
        }
        if ((info.bits_per_sample != 8 && info.bits_per_sample != 1) ||
            info.exponent_bits_per_sample != 0 || info.num_extra_channels != 0 ||
            (info.num_color_channels != 1 && info.num_color_channels != 3)) {
          problem = "not 8-bit (or bilevel) gray or RGB without alpha";
          return;
        }
        format.num_channels = info.num_color_channels;
      } else if (status == JXL_DEC_NEED_IMAGE_OUT_BUFFER) {
        hwc = torch::empty({int64_t{info.ysize}, int64_t{info.xsize}, int64_t{format.num_channels}},
                           torch::kUInt8);
        size_t size = 0;
        if (JxlDecoderImageOutBufferSize(dec, &format, &size) != JXL_DEC_SUCCESS ||
            size != static_cast<size_t>(hwc.numel()) ||
            JxlDecoderSetImageOutBuffer(dec, &format, hwc.data_ptr<uint8_t>(), size) !=
                JXL_DEC_SUCCESS) {
          problem = "unexpected output buffer size";
          return;
        }
      } else if (status == JXL_DEC_FULL_IMAGE) {
        ++frames;
      }
    }
  });
  if (!finished) {
    owner.release();  // abandoned: its state is unknown
    throw Error(what + ": libjxl aborted decoding it");
  }
  if (!problem.empty()) throw Error(what + ": " + problem);
  if (frames != 1) throw Error(what + ": expected one frame, got " + std::to_string(frames));
  return hwc.permute({2, 0, 1}).contiguous();
}

namespace {

void append_bytes(unsigned char* start, size_t len, void* out) {
  static_cast<std::string*>(out)->append(reinterpret_cast<const char*>(start), len);
}

// One JBIG1 encode of a packed bilevel image (1 = black, rows padded to bytes).
std::string encode_jbig(std::vector<unsigned char>& packed, unsigned long w, unsigned long h,
                        int options, int mx) {
  std::string out;
  unsigned char* planes[1] = {packed.data()};
  jbg_enc_state s;
  jbg_enc_init(&s, w, h, 1, planes, append_bytes, &out);
  jbg_enc_layers(&s, 0);
  jbg_enc_options(&s, JBG_ILEAVE | JBG_SMID, options, h, mx, 0);
  jbg_enc_out(&s);
  jbg_enc_free(&s);
  return out;
}

}  // namespace

std::string encode_jbig_best(const torch::Tensor& image) {
  check_image(image, "encode_jbig_best");
  TORCH_CHECK(image.size(0) == 1, "encode_jbig_best: a bilevel image is gray");
  const auto px = image.to(torch::kCPU).contiguous();
  const unsigned long h = px.size(1), w = px.size(2), row = (w + 7) / 8;
  std::vector<unsigned char> packed(row * h, 0);
  const uint8_t* p = px.data_ptr<uint8_t>();
  for (unsigned long y = 0; y < h; ++y)
    for (unsigned long x = 0; x < w; ++x)
      if (p[y * w + x] <= 127) packed[y * row + x / 8] |= 0x80 >> (x % 8);  // black
  std::string best;
  for (int tp : {0, JBG_TPBON})
    for (int lines : {0, JBG_LRLTWO})
      for (int mx : {0, 8}) {
        std::vector<unsigned char> copy = packed;  // the encoder may modify its input
        std::string bie = encode_jbig(copy, w, h, tp | lines, mx);
        if (best.empty() || bie.size() < best.size()) best = std::move(bie);
      }
  return best;
}

torch::Tensor decode_jbig(const std::string& bytes) {
  jbg_dec_state s;
  jbg_dec_init(&s);
  jbg_dec_maxsize(&s, 1ul << 16, 1ul << 16);
  std::vector<unsigned char> data(bytes.begin(), bytes.end());
  size_t used = 0;
  const int rc = data.empty() ? JBG_EOK_INTR : jbg_dec_in(&s, data.data(), data.size(), &used);
  if (rc != JBG_EOK || jbg_dec_getplanes(&s) != 1) {
    const std::string why = data.empty() ? "empty" : jbg_strerror(rc);
    jbg_dec_free(&s);
    throw Error("JBIG: cannot decode (" + why + ")");
  }
  const unsigned long w = jbg_dec_getwidth(&s), h = jbg_dec_getheight(&s), row = (w + 7) / 8;
  const unsigned char* packed = jbg_dec_getimage(&s, 0);
  auto out = torch::empty({1, static_cast<int64_t>(h), static_cast<int64_t>(w)}, torch::kUInt8);
  uint8_t* o = out.data_ptr<uint8_t>();
  for (unsigned long y = 0; y < h; ++y)
    for (unsigned long x = 0; x < w; ++x)
      o[y * w + x] = (packed[y * row + x / 8] & (0x80 >> (x % 8))) ? 0 : 255;
  jbg_dec_free(&s);
  return out;
}

std::vector<std::string> baseline_codecs(int64_t levels) {
  if (levels == 2) return {"png", "webp", "jxl", "jbig"};
  return {"png", "webp", "jxl"};
}

std::vector<BaselineResult> measure_baselines(const torch::Tensor& images, int threads,
                                              int64_t levels) {
  TORCH_CHECK(images.dim() == 4 && (images.size(1) == 1 || images.size(1) == 3) &&
                  images.scalar_type() == torch::kUInt8,
              "measure_baselines: expected uint8 images [N, 1|3, H, W], got ", images.scalar_type(),
              " ", images.sizes());
  const bool bilevel = levels == 2;
  TORCH_CHECK(!bilevel || (images.size(1) == 1 && images.max().item<int>() <= 1),
              "measure_baselines: bilevel images are gray with values 0 and 1");
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  // Bilevel images go to the codecs as black and white.
  const auto cpu = (bilevel ? images * 255 : images).to(torch::kCPU).contiguous();
  const int64_t n = cpu.size(0), channels = cpu.size(1);
  // encode(image, &fallback) -> bytes; decode(bytes) -> image.
  struct Codec {
    std::function<std::string(const torch::Tensor&, bool*)> encode;
    std::function<torch::Tensor(const std::string&)> decode;
  };
  std::vector<Codec> codecs = {
      {[=](const torch::Tensor& x, bool*) { return encode_png_best(x, bilevel); },
       [](const std::string& b) { return decode_png(b); }},
      {[](const torch::Tensor& x, bool*) { return encode_webp_lossless(x); },
       [&](const std::string& b) { return decode_webp(b, channels); }},
      {[=](const torch::Tensor& x, bool* fallback) {
         int effort = 0;
         std::string bytes = encode_jxl_lossless(x, &effort, bilevel);
         *fallback = effort != kJxlEffort;
         return bytes;
       },
       decode_jxl},
  };
  if (bilevel)
    codecs.push_back(
        {[](const torch::Tensor& x, bool*) { return encode_jbig_best(x); }, decode_jbig});
  const auto names = baseline_codecs(levels);

  std::vector<BaselineResult> results;
  for (size_t k = 0; k < codecs.size(); ++k) {
    std::vector<int64_t> sizes(n, 0);
    std::vector<char> ok(n, 0), fallback(n, 0);
    auto start = std::chrono::steady_clock::now();
    run_parallel(n, threads, [&](int64_t i) {
      auto image = cpu[i];
      bool fell_back = false;
      std::string bytes = codecs[k].encode(image, &fell_back);
      sizes[i] = static_cast<int64_t>(bytes.size());
      fallback[i] = fell_back;
      try {
        auto back = codecs[k].decode(bytes);
        ok[i] = back.sizes() == image.sizes() && torch::equal(back, image);
      } catch (const std::exception&) {
        ok[i] = 0;  // a file that does not decode is a failed round trip, not a crash
      }
    });
    BaselineResult r;
    r.codec = names[k];
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    r.round_trip_ok = true;
    for (int64_t i = 0; i < n; ++i) {
      r.bytes += sizes[i];
      r.round_trip_ok = r.round_trip_ok && ok[i];
      r.fallback_images += fallback[i];
    }
    r.bits_per_dim = cpu.numel() > 0 ? 8.0 * double(r.bytes) / double(cpu.numel()) : 0.0;
    results.push_back(r);
  }
  return results;
}

}  // namespace tame
