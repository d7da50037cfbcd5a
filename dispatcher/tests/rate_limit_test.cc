// The token bucket and the keyed LRU of dispatcher/rate_limit.h, driven by a fake clock.
#include "dispatcher/rate_limit.h"

#include <gtest/gtest.h>

#include <string>

namespace sluice::dispatcher {
namespace {

using namespace std::chrono_literals;

struct FakeClock {
  RateClock::time_point t{std::chrono::hours(1)};
  RateClock::time_point now() const { return t; }
  void advance(RateWait d) { t += d; }
};

TEST(TokenBucket, BurstThenRate) {
  FakeClock c;
  auto b = TokenBucket::full(3, c.now());
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(b.try_take(10, 3, c.now())) << i;
  EXPECT_FALSE(b.try_take(10, 3, c.now()));
  EXPECT_EQ(b.wait(10, 3, c.now()), 100ms);
  c.advance(99ms);
  EXPECT_FALSE(b.try_take(10, 3, c.now()));
  c.advance(1ms);
  EXPECT_TRUE(b.try_take(10, 3, c.now()));
  EXPECT_FALSE(b.try_take(10, 3, c.now()));
}

TEST(TokenBucket, RefillStopsAtBurst) {
  FakeClock c;
  auto b = TokenBucket::full(2, c.now());
  EXPECT_TRUE(b.try_take(100, 2, c.now()));
  EXPECT_TRUE(b.try_take(100, 2, c.now()));
  c.advance(1h);
  int taken = 0;
  while (b.try_take(100, 2, c.now())) ++taken;
  EXPECT_EQ(taken, 2);
}

TEST(TokenBucket, FractionalRate) {
  FakeClock c;
  auto b = TokenBucket::full(1, c.now());
  EXPECT_TRUE(b.try_take(0.5, 1, c.now()));
  EXPECT_EQ(b.wait(0.5, 1, c.now()), 2s);
  c.advance(1999ms);
  EXPECT_FALSE(b.try_take(0.5, 1, c.now()));
  c.advance(1ms);
  EXPECT_TRUE(b.try_take(0.5, 1, c.now()));
}

TEST(TokenBucket, RateHeldOverAMinuteOfDemand) {
  // Taking as fast as allowed for 60 s at 7.5/s with burst 5: 5 + 450 tokens.
  FakeClock c;
  const auto start = c.now();
  auto b = TokenBucket::full(5, c.now());
  int taken = 0;
  while (c.now() - start <= 60s) {
    if (b.try_take(7.5, 5, c.now())) {
      ++taken;
    } else {
      c.advance(b.wait(7.5, 5, c.now()));
    }
  }
  EXPECT_EQ(taken, 5 + 450);
}

TEST(TokenBucket, ReservationsAreSpacedByTheRate) {
  FakeClock c;
  auto b = TokenBucket::full(2, c.now());
  EXPECT_EQ(b.reserve(4, 2, c.now()), 0ns);
  EXPECT_EQ(b.reserve(4, 2, c.now()), 0ns);
  EXPECT_EQ(b.reserve(4, 2, c.now()), 250ms);
  EXPECT_EQ(b.reserve(4, 2, c.now()), 500ms);
  c.advance(500ms);  // both borrowed tokens are due now: the next is 250 ms away
  EXPECT_EQ(b.reserve(4, 2, c.now()), 250ms);
  EXPECT_FALSE(b.try_take(4, 2, c.now()));
}

TEST(TokenBucket, ClockGoingBackAddsNothing) {
  FakeClock c;
  auto b = TokenBucket::full(1, c.now());
  EXPECT_TRUE(b.try_take(1, 1, c.now()));
  c.advance(-10s);
  EXPECT_FALSE(b.try_take(1, 1, c.now()));
}

TEST(KeyedBuckets, OneBucketPerKey) {
  FakeClock c;
  KeyedBuckets k(1, 10);
  EXPECT_TRUE(k.get("a", c.now()).try_take(1, 1, c.now()));
  EXPECT_FALSE(k.get("a", c.now()).try_take(1, 1, c.now()));
  EXPECT_TRUE(k.get("b", c.now()).try_take(1, 1, c.now()));
  EXPECT_EQ(k.size(), 2u);
}

TEST(KeyedBuckets, EvictsTheLeastRecentlyUsedAtTheCap) {
  FakeClock c;
  KeyedBuckets k(1, 3);
  for (std::string key : {"a", "b", "c"}) EXPECT_TRUE(k.get(key, c.now()).try_take(1, 1, c.now()));
  k.get("a", c.now());  // a is used again: b is now the least recent
  k.get("d", c.now());
  EXPECT_EQ(k.size(), 3u);
  EXPECT_EQ(k.evicted(), 1u);
  EXPECT_FALSE(k.contains("b"));
  EXPECT_TRUE(k.contains("a"));
  EXPECT_TRUE(k.contains("c"));
  // Still empty: a and c kept their state.
  EXPECT_FALSE(k.get("a", c.now()).try_take(1, 1, c.now()));
  EXPECT_FALSE(k.get("c", c.now()).try_take(1, 1, c.now()));
  // An evicted key comes back with a full bucket.
  EXPECT_TRUE(k.get("b", c.now()).try_take(1, 1, c.now()));
}

TEST(KeyedBuckets, AMillionKeysStayWithinTheCap) {
  FakeClock c;
  KeyedBuckets k(1, 1000);
  for (int i = 0; i < 1'000'000; ++i) {
    k.get("key-" + std::to_string(i), c.now());
    ASSERT_LE(k.size(), 1000u);
  }
  EXPECT_EQ(k.size(), 1000u);
  EXPECT_EQ(k.evicted(), 999'000u);
  EXPECT_TRUE(k.contains("key-999999"));
  EXPECT_FALSE(k.contains("key-998999"));
}

TEST(RateLimiter, ByKeyAndTheSharedBucketOfKeylessEvents) {
  FakeClock c;
  RateLimiter r({.per_second = 1, .burst = 1, .by_key = true}, c.now());
  EXPECT_TRUE(r.try_take("a", c.now()));
  EXPECT_TRUE(r.try_take("b", c.now()));
  EXPECT_TRUE(r.try_take("", c.now()));
  EXPECT_FALSE(r.try_take("", c.now()));  // keyless events share one bucket
  EXPECT_FALSE(r.try_take("a", c.now()));
  EXPECT_EQ(r.wait("a", c.now()), 1s);
  EXPECT_EQ(r.keys(), 2u);
}

TEST(RateLimiter, PerFunctionIgnoresKeys) {
  FakeClock c;
  RateLimiter r({.per_second = 2, .burst = 2}, c.now());
  EXPECT_TRUE(r.try_take("a", c.now()));
  EXPECT_TRUE(r.try_take("b", c.now()));
  EXPECT_FALSE(r.try_take("c", c.now()));
  EXPECT_EQ(r.keys(), 0u);
  EXPECT_EQ(r.reserve("d", c.now()), 500ms);
}

TEST(RateLimiter, DefaultBurstIsOneSecondOfTokens) {
  EXPECT_EQ(default_burst(0.01), 1);
  EXPECT_EQ(default_burst(1), 1);
  EXPECT_EQ(default_burst(7.5), 8);
  EXPECT_EQ(default_burst(1000), 1000);
}

}  // namespace
}  // namespace sluice::dispatcher
