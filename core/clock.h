// An injectable clock, so backoff, timeouts and scaling can be tested without
// sleeping on wall-clock time (STYLE.md: hermetic tests).
#pragma once

#include <chrono>

namespace sluice {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
  static Clock& system();  // the real steady clock
};

// A clock that only moves when told to (tests).
class ManualClock final : public Clock {
 public:
  SteadyTime now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  SteadyTime now_{};
};

}  // namespace sluice
