// The user-facing error type, free of LibTorch so that torch-free parts (the
// entropy coder, the codec container, the fuzz target) can throw it too.
#pragma once

#include <stdexcept>
#include <string>

namespace tame {

/// An error the user can cause (bad file, bad argument, mismatched checkpoint).
/// The CLI prints what() as one line and exits non-zero; no backtrace.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tame
