// The benchmarks' command-line flags: "--name value" pairs after the
// positional arguments, read with defaults. Unknown flags are an error.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>

namespace tame::bench {

class Flags {
 public:
  /// Reads argv[first..] as "--name value" pairs.
  Flags(int argc, char** argv, int first) {
    for (int i = first; i + 1 < argc; i += 2) values_[argv[i]] = argv[i + 1];
    if ((argc - first) % 2 != 0) bad_ = argv[argc - 1];
  }
  long long integer(const std::string& name, long long fallback) {
    seen_[name] = true;
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::atoll(it->second.c_str());
  }
  double number(const std::string& name, double fallback) {
    seen_[name] = true;
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::atof(it->second.c_str());
  }
  std::string text(const std::string& name, const std::string& fallback) {
    seen_[name] = true;
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  /// False (after printing why) when a flag was not asked for or has no value.
  bool ok() const {
    for (const auto& [name, value] : values_)
      if (!seen_.count(name)) return complain(name);
    return bad_.empty() || complain(bad_);
  }

 private:
  static bool complain(const std::string& name) {
    std::fprintf(stderr, "unknown flag or missing value: %s\n", name.c_str());
    return false;
  }
  std::map<std::string, std::string> values_;
  std::map<std::string, bool> seen_;
  std::string bad_;
};

}  // namespace tame::bench
