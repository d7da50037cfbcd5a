#include <gtest/gtest.h>

#include "config/backoff.h"

namespace sluice::config::testing {
namespace {

using std::chrono::milliseconds;

RetryPolicy policy(Jitter j, BackoffKind k = BackoffKind::exponential) {
  RetryPolicy p;
  p.initial = milliseconds(100);
  p.max = milliseconds(1000);
  p.jitter = j;
  p.backoff = k;
  return p;
}

TEST(Backoff, ExponentialWithoutJitterDoublesUpToTheCap) {
  std::mt19937_64 rng(1);
  auto p = policy(Jitter::none);
  EXPECT_EQ(backoff_delay(p, 1, rng), milliseconds(100));
  EXPECT_EQ(backoff_delay(p, 2, rng), milliseconds(200));
  EXPECT_EQ(backoff_delay(p, 4, rng), milliseconds(800));
  EXPECT_EQ(backoff_delay(p, 5, rng), milliseconds(1000));
  EXPECT_EQ(backoff_delay(p, 4000000000u, rng), milliseconds(1000));  // no overflow
}

TEST(Backoff, FixedStaysAtInitial) {
  std::mt19937_64 rng(1);
  auto p = policy(Jitter::none, BackoffKind::fixed);
  EXPECT_EQ(backoff_delay(p, 1, rng), milliseconds(100));
  EXPECT_EQ(backoff_delay(p, 9, rng), milliseconds(100));
}

TEST(Backoff, FullJitterStaysWithinZeroAndBaseAndSpreads) {
  std::mt19937_64 rng(42);
  auto p = policy(Jitter::full);
  int64_t lo = 1 << 30, hi = -1;
  for (int i = 0; i < 2000; ++i) {
    auto d = backoff_delay(p, 3, rng).count();  // base 400
    ASSERT_GE(d, 0);
    ASSERT_LE(d, 400);
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  EXPECT_LT(lo, 40);
  EXPECT_GT(hi, 360);
}

TEST(Backoff, EqualJitterKeepsAtLeastHalf) {
  std::mt19937_64 rng(7);
  auto p = policy(Jitter::equal);
  for (int i = 0; i < 1000; ++i) {
    auto d = backoff_delay(p, 2, rng).count();  // base 200
    ASSERT_GE(d, 100);
    ASSERT_LE(d, 200);
  }
}

TEST(Backoff, RetryAfterHintRaisesButNeverPassesTheCap) {
  std::mt19937_64 rng(1);
  auto p = policy(Jitter::none);
  EXPECT_EQ(backoff_delay(p, 1, rng, milliseconds(500)), milliseconds(500));
  EXPECT_EQ(backoff_delay(p, 1, rng, milliseconds(50)), milliseconds(100));
  EXPECT_EQ(backoff_delay(p, 1, rng, milliseconds(60000)), milliseconds(1000));
}

}  // namespace
}  // namespace sluice::config::testing
