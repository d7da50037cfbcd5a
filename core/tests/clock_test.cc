// add_saturated / deadline_in: deadlines from durations never wrap.
#include <gtest/gtest.h>

#include "core/clock.h"

namespace sluice::testing {
namespace {

using namespace std::chrono_literals;
using TP = std::chrono::steady_clock::time_point;

TEST(AddSaturated, AddsWithinRange) {
  const TP t{1000s};
  EXPECT_EQ(add_saturated(t, 5ms), t + 5ms);
  EXPECT_EQ(add_saturated(t, -5ms), t - 5ms);
  EXPECT_EQ(add_saturated(t, 0ms), t);
}

TEST(AddSaturated, SaturatesInsteadOfWrapping) {
  const TP now = std::chrono::steady_clock::now();
  // 9223372036000 ms: the most a duration string can say; in ns it overflows int64.
  EXPECT_EQ(add_saturated(now, Millis{9223372036000}), TP::max());
  EXPECT_EQ(add_saturated(now, Millis::max()), TP::max());
  EXPECT_EQ(add_saturated(now, std::chrono::hours::max()), TP::max());
  EXPECT_EQ(add_saturated(now, Millis::min()), TP::min());
  EXPECT_EQ(add_saturated(TP::max(), 1ms), TP::max());
  EXPECT_GT(deadline_in(Millis{9223372036000}), now);
  EXPECT_GT(deadline_in(24h), now + 23h);
}

}  // namespace
}  // namespace sluice::testing
