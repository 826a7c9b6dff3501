#include "tame/io/pnm.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "tame/common.h"
#include "tame/io/file.h"
#include "tame/io/png.h"

namespace tame {

torch::Tensor read_pnm(const std::string& path) { return decode_pnm(read_file(path), path); }

torch::Tensor decode_pnm(const std::string& s, const std::string& name) {
  size_t pos = 2;
  auto fail = [&](const std::string& why) {
    return Error(name + ": not a valid PGM/PPM file (" + why + ")");
  };
  if (s.size() < 2 || s[0] != 'P' || (s[1] != '5' && s[1] != '6'))
    throw fail("expected binary P5 or P6");
  // Header: three decimal numbers separated by whitespace and # comments.
  auto number = [&]() -> int64_t {
    while (pos < s.size()) {
      if (s[pos] == '#') {
        while (pos < s.size() && s[pos] != '\n') ++pos;
      } else if (std::isspace(static_cast<unsigned char>(s[pos]))) {
        ++pos;
      } else {
        break;
      }
    }
    int64_t v = 0;
    size_t digits = 0;
    while (pos < s.size() && std::isdigit(static_cast<unsigned char>(s[pos])) && digits < 6) {
      v = v * 10 + (s[pos++] - '0');
      ++digits;
    }
    if (digits == 0) throw fail("bad header");
    return v;
  };
  const int64_t C = s[1] == '5' ? 1 : 3;
  const int64_t W = number(), H = number(), maxval = number();
  if (W < 1 || H < 1 || W > kMaxImageSide || H > kMaxImageSide || W * H > kMaxImagePixels)
    throw fail("bad size " + std::to_string(W) + "x" + std::to_string(H));
  if (maxval < 1 || maxval > 255)
    throw fail("maxval " + std::to_string(maxval) + "; only 8-bit images are read");
  if (pos >= s.size() || !std::isspace(static_cast<unsigned char>(s[pos])))
    throw fail("bad header");
  ++pos;
  const size_t bytes = static_cast<size_t>(W * H * C);
  if (s.size() - pos < bytes) throw fail("truncated pixel data");
  auto hwc = torch::from_blob(const_cast<char*>(s.data() + pos), {H, W, C}, torch::kUInt8);
  return hwc.permute({2, 0, 1}).clone(torch::MemoryFormat::Contiguous);  // a copy: s dies here
}

torch::Tensor read_image(const std::string& path) {
  const std::string bytes = read_file(path);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6'))
    return decode_pnm(bytes, path);
  if (bytes.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0) return decode_png(bytes, path);
  throw Error(path + ": not a PNG, PGM or PPM file");
}

const std::vector<std::string>& image_extensions() {
  static const std::vector<std::string> extensions = {".png", ".pgm", ".ppm", ".pnm"};
  return extensions;
}

std::vector<std::string> files_in_directory(const std::string& dir,
                                            const std::vector<std::string>& extensions) {
  if (!is_directory(dir)) throw Error(dir + ": no such directory");
  std::vector<std::string> paths;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    auto ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
    std::error_code type_ec;  // an entry that cannot be stat'ed is left out
    if (name[0] != '.' && e.is_regular_file(type_ec) &&
        std::find(extensions.begin(), extensions.end(), ext) != extensions.end())
      paths.push_back(e.path().string());
  }
  if (ec) throw Error(dir + ": cannot list (" + ec.message() + ")");
  std::sort(paths.begin(), paths.end());
  return paths;
}

}  // namespace tame
