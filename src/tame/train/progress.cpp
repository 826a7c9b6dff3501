#include "tame/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace tame {

Progress::Progress(double period_seconds, bool quiet)
    : tty_(::isatty(2) == 1),
      quiet_(quiet),
      period_(period_seconds),
      last_(std::chrono::steady_clock::now()) {}

void Progress::update(const std::string& text, bool force) {
  if (quiet_) return;
  auto now = std::chrono::steady_clock::now();
  double since = std::chrono::duration<double>(now - last_).count();
  double period = tty_ ? 0.2 : period_;
  if (!force && !first_ && since < period) return;
  first_ = false;
  last_ = now;
  if (tty_) {
    std::fprintf(stderr, "\r\033[K%s", text.c_str());
    open_ = true;
  } else {
    std::fprintf(stderr, "%s\n", text.c_str());
  }
  std::fflush(stderr);
}

void Progress::finish() {
  if (open_) std::fprintf(stderr, "\n");
  open_ = false;
  std::fflush(stderr);
}

std::string format_duration(double s) {
  if (s < 0) s = 0;
  long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
  else
    std::snprintf(buf, sizeof buf, "%lds", t);
  return buf;
}

}  // namespace tame
