// PullLedger: the pull loop's bookkeeping of outstanding requests (no server).
#include "broker-adapters/nats/pull_ledger.h"

#include <gtest/gtest.h>

namespace sluice::nats::testing {
namespace {

using namespace std::chrono_literals;
using Clock = PullLedger::Clock;

TEST(PullLedger, ArrivalsChargeTheOldestRequestFirst) {
  PullLedger l;
  const auto t = Clock::now();
  l.asked(4, t + 2s);
  l.asked(4, t + 3s);
  EXPECT_EQ(l.outstanding(), 8);
  EXPECT_EQ(l.requests(), 2u);
  l.arrived(5);
  EXPECT_EQ(l.outstanding(), 3);
  EXPECT_EQ(l.live(), 1u);
  l.arrived(10);  // more than asked for (a request forgotten earlier): no debt
  EXPECT_EQ(l.outstanding(), 0);
  EXPECT_EQ(l.live(), 0u);
  l.asked(0, t + 1s);  // nothing asked: no request
  EXPECT_EQ(l.live(), 0u);
}

TEST(PullLedger, AStatusEndsTheOldestWithWhatItLeftUnfilled) {
  PullLedger l;
  const auto t = Clock::now();
  l.asked(10, t + 2s);
  l.asked(10, t + 3s);
  l.arrived(4);
  l.ended(6);  // 408 with Nats-Pending-Messages: 6
  EXPECT_EQ(l.outstanding(), 10);
  EXPECT_EQ(l.live(), 1u);
  l.ended(-1);  // no count given: the rest of the oldest
  EXPECT_EQ(l.outstanding(), 0);
  l.ended(3);  // nothing left to end
  EXPECT_EQ(l.outstanding(), 0);
}

TEST(PullLedger, DeadlinesAndForgetDropRequests) {
  PullLedger l;
  const auto t = Clock::now();
  l.asked(4, t + 1s);
  l.asked(4, t + 2s);
  l.expire(t + 1500ms);
  EXPECT_EQ(l.outstanding(), 4);
  l.forget();
  EXPECT_EQ(l.outstanding(), 0);
  EXPECT_EQ(l.live(), 0u);
}

// A request the server never had (lost in a restart) must not shrink the window
// for ever: the loop keeps asking for the free window minus what is outstanding,
// so each new request would be charged to the phantom and inherit its count.
// The phantom's deadline is handed on, so the count goes at that deadline.
TEST(PullLedger, APhantomRequestIsForgottenAtItsDeadlineEvenWhileMessagesFlow) {
  PullLedger l;
  const auto t0 = Clock::now();
  const auto life = 2s;
  l.asked(4, t0 + life);  // the phantom: nothing will ever arrive for it
  const int64_t window = 8;
  auto now = t0;
  int64_t asked_max = 0;
  for (int cycle = 0; cycle < 40; ++cycle) {  // 40 x 100 ms: messages keep flowing
    now += 100ms;
    l.expire(now);
    const int64_t want = window - l.outstanding();
    asked_max = std::max(asked_max, want);
    l.asked(want, now + life);
    l.arrived(want);  // the server fills the real request at once
  }
  // After the phantom's deadline the loop asks for the whole window again.
  EXPECT_EQ(l.outstanding(), 0);
  EXPECT_EQ(asked_max, window);
}

// Without phantoms the hand-on only shortens a live request's deadline: at worst
// it is forgotten early and the loop asks for a little more than the window.
TEST(PullLedger, HandedOnDeadlineCannotMakeTheCountNegative) {
  PullLedger l;
  const auto t = Clock::now();
  l.asked(4, t + 1s);
  l.asked(4, t + 5s);
  l.arrived(4);  // the first is filled: the second now expires at t + 1 s
  l.expire(t + 1500ms);
  EXPECT_EQ(l.outstanding(), 0);
  l.arrived(4);  // its messages come after all
  EXPECT_EQ(l.outstanding(), 0);
}

}  // namespace
}  // namespace sluice::nats::testing
