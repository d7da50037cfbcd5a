// Small pieces shared by the long-lived process runtimes (stdio, http): the
// stderr line logger with a size cap, and the restart backoff.
//
// Threading: plain values owned by one worker / one runtime thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <string>
#include <string_view>

#include "config/config.h"
#include "workers/logger.h"

namespace sluice::workers {

// Logs a worker's stderr line by line as "[fn <name>] [worker <pid>] <line>" (info),
// lines cut at 4 KiB, and at most `cap` bytes over the worker's life; the rest is
// drained without logging (one note says so).
class StderrLines {
 public:
  StderrLines(std::string function, long pid, size_t cap)
      : fn_(std::move(function)), pid_(pid), cap_(cap) {}

  void feed(std::string_view bytes) {
    while (!bytes.empty()) {
      size_t nl = bytes.find('\n');
      line_.append(bytes.substr(0, nl));
      if (nl == bytes.npos) {
        if (line_.size() >= kMaxLine) flush();
        return;
      }
      flush();
      bytes.remove_prefix(nl + 1);
    }
  }
  // At EOF: logs a last unterminated line.
  void finish() {
    if (!line_.empty()) flush();
  }
  void flush() {
    std::string_view l = line_;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (logged_ < cap_) {
      logged_ += l.size() + 1;
      log().info("[fn {}] [worker {}] {}", fn_, pid_, l);
      if (logged_ >= cap_)
        log().info("[fn {}] [worker {}] (stderr passed {} bytes; the rest is not logged)", fn_,
                   pid_, cap_);
    }
    line_.clear();
  }
 private:
  static constexpr size_t kMaxLine = 4096;
  std::string fn_;
  long pid_;
  size_t cap_;
  size_t logged_ = 0;
  std::string line_;
};

// Restart delays: `initial`, doubling per consecutive failure, at most `max`.
class RestartBackoff {
 public:
  RestartBackoff(Millis initial, Millis max) : initial_(initial), max_(max) {}
  Millis next() {
    Millis d = initial_;
    for (unsigned i = 0; i < failures_ && d < max_; ++i) d *= 2;
    ++failures_;
    return std::min(d, max_);
  }
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }

 private:
  Millis initial_, max_;
  unsigned failures_ = 0;
};

}  // namespace sluice::workers
