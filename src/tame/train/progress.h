// Progress reporting for long work: a line rewritten in place on a terminal
// (at most 5 times a second), or a plain line every `period` seconds when
// stderr is a file or pipe.
#pragma once

#include <chrono>
#include <string>

namespace tame {

class Progress {
 public:
  explicit Progress(double period_seconds = 30.0, bool quiet = false);
  /// Shows `text`; `force` prints even when the period has not passed.
  void update(const std::string& text, bool force = false);
  /// Ends the in-place line (if any) so later output starts on a new line.
  void finish();
  bool tty() const { return tty_; }

 private:
  bool tty_, quiet_, open_ = false;
  double period_;
  std::chrono::steady_clock::time_point last_;
  bool first_ = true;
};

/// "1h02m", "3m20s", "12s".
std::string format_duration(double seconds);

}  // namespace tame
