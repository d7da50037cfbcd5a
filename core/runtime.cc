#include "core/runtime.h"

#include "core/clock.h"

namespace sluice {

const char* to_string(Outcome o) noexcept {
  switch (o) {
    case Outcome::success: return "success";
    case Outcome::error: return "error";
    case Outcome::timeout: return "timeout";
    case Outcome::crash: return "crash";
    case Outcome::rejected: return "rejected";
  }
  return "unknown";
}

const char* dead_letter_reason(Outcome o) noexcept {
  switch (o) {
    case Outcome::timeout: return "timeout";
    case Outcome::crash: return "crash";
    case Outcome::rejected: return "rejected";
    default: return "error";
  }
}

namespace {
class SystemClock final : public Clock {
 public:
  SteadyTime now() const override { return std::chrono::steady_clock::now(); }
};
}  // namespace

Clock& Clock::system() {
  static SystemClock clock;
  return clock;
}

}  // namespace sluice
