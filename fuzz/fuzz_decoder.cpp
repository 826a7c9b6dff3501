// libFuzzer target: tame's compressed-file parser and decoders (two step
// engines, a bits-back coder, a flow coder and a codes coder), for both container versions. Any
// input must end in a decoded image set or a tame::Error: no crash, hang, leak or undefined
// behaviour. Built by scripts/fuzz.sh with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which skips
// the checksum comparisons so that mutated files reach the rANS decoder and the engines.
#include <cstdint>
#include <string>

#include "fuzz_engines.h"
#include "tame/codec/model_codec.h"
#include "tame/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::unique_ptr<tame::ImageCoder> gated = tame::fuzz::gated_engine();
  static const std::unique_ptr<tame::ImageCoder> pixelcnn = tame::fuzz::pixelcnn_engine();
  static const auto bits_back = tame::fuzz::bits_back_coder();
  static const auto flow = tame::fuzz::flow_coder();
  static const auto codes = tame::fuzz::codes_coder();
  const std::string file(reinterpret_cast<const char*>(data), size);
  for (const auto* coder :
       {gated.get(), pixelcnn.get(), bits_back.get(), flow.get(), codes.get()}) {
    try {
      auto d = tame::decode_images(*coder, file, 1);
      int64_t values = 0;
      for (const auto& s : d.header.sizes) values += s.dims();
      if (d.images.values.size() != static_cast<size_t>(values)) __builtin_trap();
      for (uint16_t v : d.images.values)
        if (v >= 4) __builtin_trap();
    } catch (const tame::Error&) {
    }
  }
  return 0;
}
