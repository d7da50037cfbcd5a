// rate_limit and max_per_key in the dispatcher (dispatcher/flow_control.cc), against
// the Source/Sink/Runtime doubles. Rates are high and bursts small so that each test
// takes well under two seconds; the rate itself is measured end to end in tests/e2e.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>

#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::dispatcher::testing {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

struct FlowFixture {
  FlowFixture(std::optional<RateLimitConfig> rate, uint32_t max_per_key, Ordering ordering,
              uint32_t concurrency = 4, bool throttles = false) {
    fn.name = "f";
    fn.retry.initial = 1ms;
    fn.retry.max = 1ms;
    fn.concurrency = concurrency;
    fn.dead_letter = {"fake", "f.dlq"};
    fn.rate_limit = rate;
    fn.max_per_key = max_per_key;
    src.tr.throttles = throttles;
    rt.behave = [this](const Event& ev) {
      std::lock_guard lk(times_mu);
      started.push_back({ev.key, Clock::now()});
      InvocationResult r;
      if (fail_first && ev.attempt == 1) r.outcome = Outcome::error;
      return r;
    };
    DispatcherOptions opts;
    opts.seed = 1;
    d = std::make_unique<Dispatcher>(metrics, opts);
    d->add_function({&fn, &rt, &dlq, nullptr});
    d->add_route(src, "f", ordering);
    d->start();
    EXPECT_TRUE(src.start(*d));
  }
  ~FlowFixture() {
    d->drain(5s);
    d->stop();
  }
  // Start times of the invocations of `key` (of all keys when null), in order.
  std::vector<Clock::time_point> starts(const char* key = nullptr) {
    std::lock_guard lk(times_mu);
    std::vector<Clock::time_point> v;
    for (auto& [k, t] : started)
      if (!key || k == key) v.push_back(t);
    return v;
  }
  metrics::Metrics metrics;
  FunctionConfig fn;
  FakeSource src;
  FakeSink dlq;
  FakeRuntime rt;
  std::atomic<bool> fail_first{false};  // the first attempt of every event fails
  std::mutex times_mu;
  std::vector<std::pair<std::string, Clock::time_point>> started;
  std::unique_ptr<Dispatcher> d;
};

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// Burst first, then one invocation per 1/per_second; every event committed.
TEST(FlowControl, RateLimitSpacesInvocations) {
  FlowFixture fx(RateLimitConfig{50, 2, false}, 0, Ordering::none);
  fx.src.send_batch(0, 0, 12, 12);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 12);
  auto t = fx.starts();
  ASSERT_EQ(t.size(), 12u);
  // 2 at once, then 10 more at 20 ms apart: the last at >= 200 ms (timer slack aside).
  EXPECT_GE(ms_between(t[0], t[11]), 195);
  EXPECT_LT(ms_between(t[0], t[11]), 1000);
  for (size_t i = 2; i < t.size(); ++i) {
    // Never faster than the rate allows since the first: burst + rate x elapsed, with
    // 2 ms of slack (0.1 event) for the first start being stamped late on a busy machine.
    EXPECT_LE(static_cast<double>(i + 1), 2 + 50 * (ms_between(t[0], t[i]) + 2) / 1000) << i;
  }
  EXPECT_NE(fx.metrics.text().find("sluice_events_throttled_total{function=\"f\"} 10"),
            std::string::npos)
      << fx.metrics.text();
}

// A retry takes a token like a first attempt: 3 events failing once are 6
// invocations, 5 of them paced at 20/s.
TEST(FlowControl, RetriesTakeTokensToo) {
  FlowFixture fx(RateLimitConfig{20, 1, false}, 0, Ordering::none);
  fx.fail_first = true;
  fx.src.send_batch(0, 0, 3, 3);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 3);
  auto t = fx.starts();
  ASSERT_EQ(t.size(), 6u);
  EXPECT_GE(ms_between(t.front(), t.back()), 245);
  EXPECT_EQ(fx.dlq.count(), 0u);
}

// While out of tokens with a second's worth (here 4) of events waiting, the partition
// that delivered is paused; it is resumed as tokens fall due, and nothing is lost.
TEST(FlowControl, PartitionPausedWhileOutOfTokensAndResumed) {
  FlowFixture fx(RateLimitConfig{4, 1, false}, 0, Ordering::none);
  for (int64_t o = 0; o < 7; ++o) fx.src.send(0, o, "");
  ASSERT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return fx.src.pause_calls > 0; }));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 7);
  std::lock_guard lk(fx.src.mu);
  EXPECT_TRUE(fx.src.paused.empty());
  EXPECT_EQ(fx.src.pause_calls, fx.src.resume_calls);
  EXPECT_FALSE(fx.src.throttled);
}

// A source that throttles (Kafka) is held back as a whole instead.
TEST(FlowControl, ThrottlingSourceHeldWhileOutOfTokensAndReleased) {
  FlowFixture fx(RateLimitConfig{4, 1, false}, 0, Ordering::partition, 4, /*throttles=*/true);
  for (int64_t o = 0; o < 7; ++o) fx.src.send(1, o, "");
  ASSERT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return fx.src.throttled; }));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(1), 7);
  EXPECT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return !fx.src.throttled; }));
  std::lock_guard lk(fx.src.mu);
  EXPECT_EQ(fx.src.pause_calls, 0);
  EXPECT_EQ(fx.src.throttle_calls % 2, 0);
}

// by: key: one bucket per key; a key out of tokens does not hold up another.
TEST(FlowControl, ByKeyLimitsEachKeyAlone) {
  FlowFixture fx(RateLimitConfig{5, 1, true}, 0, Ordering::none);
  for (int64_t o = 0; o < 3; ++o) fx.src.send(0, o, "a");
  for (int64_t o = 3; o < 6; ++o) fx.src.send(0, o, "b");
  fx.src.send(0, 6, "");  // keyless events share one bucket
  fx.src.send(0, 7, "");
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 8);
  auto a = fx.starts("a"), b = fx.starts("b"), none = fx.starts("");
  ASSERT_EQ(a.size(), 3u);
  ASSERT_EQ(b.size(), 3u);
  ASSERT_EQ(none.size(), 2u);
  for (auto* k : {&a, &b}) {
    EXPECT_GE(ms_between((*k)[0], (*k)[1]), 195);
    EXPECT_GE(ms_between((*k)[1], (*k)[2]), 195);
  }
  EXPECT_GE(ms_between(none[0], none[1]), 195);
  // b's first event did not wait for a's tokens.
  EXPECT_LT(ms_between(a[0], b[0]), 150);
}

// max_per_key: at most N of one key in flight; other keys pass the waiting ones.
TEST(FlowControl, MaxPerKeyBoundsInvocationsInFlightPerKey) {
  FlowFixture fx(std::nullopt, 2, Ordering::none, 8);
  fx.rt.hold = true;
  for (int64_t o = 0; o < 6; ++o) fx.src.send(0, o, "k");
  fx.src.send(0, 6, "j");
  fx.src.send(0, 7, "j");
  fx.src.send(0, 8, "j");
  size_t released = 0;
  for (int round = 0; released < 9; ++round) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return !fx.rt.held.empty(); }));
    (void)fx.d->stats();  // whatever may start has started
    {
      std::lock_guard lk(fx.rt.mu);
      EXPECT_LE(fx.rt.running_keys.count("k"), 2u) << round;
      EXPECT_LE(fx.rt.running_keys.count("j"), 2u) << round;
      if (round == 0) {
        EXPECT_EQ(fx.rt.running_keys.count("k"), 2u);
        EXPECT_EQ(fx.rt.running_keys.count("j"), 2u);  // j passed the waiting k's
      }
    }
    released += fx.rt.release_all_shuffled(static_cast<uint64_t>(round));
  }
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 9);
  EXPECT_EQ(fx.rt.max_running, 4u);
}

// A synchronous call takes a token too; without one it is answered busy (HTTP 429).
TEST(FlowControl, SyncCallWithoutATokenIsBusy) {
  FlowFixture fx(RateLimitConfig{0.01, 1, false}, 0, Ordering::none);
  SyncWaiter w;
  Event e;
  e.id = "s";
  fx.d->invoke_sync("f", e, w.callback());
  ASSERT_TRUE(w.wait(1));
  fx.d->invoke_sync("f", e, w.callback());
  ASSERT_TRUE(w.wait(2));
  EXPECT_EQ(w.answers[0].status, SyncAnswer::Status::done);
  EXPECT_EQ(w.answers[1].status, SyncAnswer::Status::busy);
  EXPECT_NE(w.answers[1].message.find("rate_limit"), std::string::npos) << w.answers[1].message;
}

}  // namespace
}  // namespace sluice::dispatcher::testing
