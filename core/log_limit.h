// LogLimit: "log this at most once per interval" for degraded modes that can repeat
// thousands of times a second (a broker down, a full disk, a flood of refused
// connections). Every occurrence is still counted by the caller's metric; only the
// log line is thinned. allow() reports how many occurrences were suppressed since
// the last line, so the line can say so.
//
// Threads: lock-free; allow() may be called from any thread at once (one caller wins
// each interval).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "core/event.h"

namespace sluice {

class LogLimit {
 public:
  explicit LogLimit(std::chrono::milliseconds interval = std::chrono::seconds(5))
      : interval_ms_(interval.count()) {}

  // nullopt: stay quiet. Otherwise log now; the value is the number of occurrences
  // suppressed since the previous line (0 for the first).
  std::optional<uint64_t> allow(int64_t now_ms = now_unix_ms()) {
    int64_t last = last_ms_.load(std::memory_order_relaxed);
    if (last != kNever && now_ms - last < interval_ms_) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    if (!last_ms_.compare_exchange_strong(last, now_ms, std::memory_order_relaxed)) {
      suppressed_.fetch_add(1, std::memory_order_relaxed);
      return std::nullopt;
    }
    return suppressed_.exchange(0, std::memory_order_relaxed);
  }

 private:
  static constexpr int64_t kNever = INT64_MIN;
  const int64_t interval_ms_;
  std::atomic<int64_t> last_ms_{kNever};
  std::atomic<uint64_t> suppressed_{0};
};

// "" or " (N more since the last report)": the tail of a line logged after allow().
inline std::string suppressed_note(uint64_t suppressed) {
  return suppressed == 0 ? std::string()
                         : " (" + std::to_string(suppressed) + " more since the last report)";
}

}  // namespace sluice
