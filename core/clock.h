// An injectable clock, so backoff, timeouts and scaling can be tested without
// sleeping on wall-clock time (STYLE.md: hermetic tests).
#pragma once

#include <chrono>
#include <ratio>
#include <type_traits>

namespace sluice {

using SteadyTime = std::chrono::steady_clock::time_point;
using Millis = std::chrono::milliseconds;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SteadyTime now() const = 0;
  static Clock& system();  // the real steady clock
};

// `t + d`, saturated at the time point's max (or min, for a negative `d`) instead of
// overflowing. Every deadline made from a configured duration goes through this: a
// duration is bounded by the config, but a wrapped deadline would be in the past and
// fire at once. `d`'s unit must be no finer than the time point's (ms onto ns is fine).
template <class TP, class Rep, class Period>
constexpr TP add_saturated(TP t, std::chrono::duration<Rep, Period> d) {
  using Ratio = std::ratio_divide<Period, typename TP::period>;  // d's unit in t's units
  static_assert(std::is_integral_v<Rep> && Ratio::den == 1,
                "add an integral duration no finer than the time point's unit");
  using Count = typename TP::duration::rep;
  Count in_units = 0, sum = 0;
  if (__builtin_mul_overflow(d.count(), Ratio::num, &in_units) ||
      __builtin_add_overflow(t.time_since_epoch().count(), in_units, &sum))
    return d.count() >= 0 ? TP::max() : TP::min();
  return TP(typename TP::duration(sum));
}

// The steady-clock deadline `d` from now, saturated (add_saturated).
template <class Rep, class Period>
SteadyTime deadline_in(std::chrono::duration<Rep, Period> d) {
  return add_saturated(std::chrono::steady_clock::now(), d);
}

// A clock that only moves when told to (tests).
class ManualClock final : public Clock {
 public:
  SteadyTime now() const override { return now_; }
  void advance(std::chrono::nanoseconds d) { now_ += d; }

 private:
  SteadyTime now_{};
};

}  // namespace sluice
