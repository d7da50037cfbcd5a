// Dispatcher::set_paused (dispatcher/pause.cc) against the Source/Sink/Runtime doubles.
#include <gtest/gtest.h>

#include <atomic>
#include <future>

#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::dispatcher::testing {
namespace {

using namespace std::chrono_literals;

FunctionConfig function_named(const std::string& name, uint32_t concurrency = 2) {
  FunctionConfig fn;
  fn.name = name;
  fn.concurrency = concurrency;
  fn.retry.max_attempts = 3;
  fn.retry.initial = 1ms;
  fn.retry.max = 5ms;
  fn.dead_letter = {"fake", name + ".dlq"};
  return fn;
}

bool paused_in_stats(const Dispatcher& d, const std::string& name) {
  for (const auto& st : d.stats())
    if (st.name == name) return st.paused;
  return false;
}

double paused_gauge(metrics::Metrics& m, const std::string& name) {
  return m.function_paused.Add({{"function", name}}).Value();
}

// sluice_consumer_paused of FakeSource's consumer (fake / in / g).
double consumer_paused(metrics::Metrics& m) {
  return m.consumer_paused.Add({{"broker", "fake"}, {"topic", "in"}, {"group", "g"}}).Value();
}

// One function on one source (partition ordering off: events run side by side).
struct One {
  explicit One(bool throttles = false, bool start_paused = false) {
    fn.paused = start_paused;
    src.tr.throttles = throttles;
    rt.hold = true;
    d.add_function({&fn, &rt, &dlq, nullptr});
    d.add_route(src, "f", Ordering::none);
    d.start();
    EXPECT_TRUE(src.start(d));
  }
  ~One() {
    unhold();
    rt.release_all_shuffled(0);
    d.set_paused("f", false);
    d.drain(5s);
    d.stop();
  }
  void unhold() {
    std::lock_guard lk(rt.mu);
    rt.hold = false;
  }
  size_t held_calls() {
    std::lock_guard lk(rt.mu);
    return rt.held.size();
  }
  metrics::Metrics metrics;
  FunctionConfig fn = function_named("f");
  FakeSource src;
  FakeSink dlq;
  FakeRuntime rt;
  Dispatcher d{metrics};
};

TEST(DispatcherPause, HoldsTheSourceStartsNothingAndLetsRunningWorkFinishAndCommit) {
  One x;
  x.src.send(0, 0, "");
  x.src.send(0, 1, "");
  ASSERT_TRUE(wait_for(x.rt.mu, x.rt.cv, [&] { return x.rt.held.size() == 2; }));
  ASSERT_TRUE(x.d.set_paused("f", true));
  EXPECT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.paused.count(0) == 1; }));
  EXPECT_TRUE(paused_in_stats(x.d, "f"));
  EXPECT_EQ(paused_gauge(x.metrics, "f"), 1);
  EXPECT_EQ(consumer_paused(x.metrics), 1);
  // Taken in after the pause (a batch already under way): held, not started.
  for (int64_t o = 2; o < 6; ++o) x.src.send(0, o, "");
  // The two running finish and commit.
  x.rt.release_all_shuffled(1);
  ASSERT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.committed.count(0) == 1; }));
  EXPECT_EQ(x.src.committed_at(0), 2);
  ASSERT_EQ(x.d.stats().front().held, 4u);  // a barrier: every send above was taken in
  EXPECT_EQ(x.held_calls(), 0u);
  EXPECT_EQ(x.rt.calls.size(), 2u);
  // Resume: the source is released and the waiting four run.
  x.unhold();
  ASSERT_TRUE(x.d.set_paused("f", false));
  EXPECT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.paused.empty(); }));
  EXPECT_FALSE(paused_in_stats(x.d, "f"));
  EXPECT_EQ(paused_gauge(x.metrics, "f"), 0);
  EXPECT_EQ(consumer_paused(x.metrics), 0);
  ASSERT_TRUE(x.d.drain(5s));
  EXPECT_EQ(x.src.committed_at(0), 6);
  EXPECT_EQ(x.rt.calls.size(), 6u);
}

TEST(DispatcherPause, IsIdempotentAndUnknownFunctionsAreRefused) {
  One x;
  EXPECT_TRUE(x.d.set_paused("f", true));
  EXPECT_TRUE(x.d.set_paused("f", true));
  EXPECT_FALSE(x.d.set_paused("nope", true));
  x.src.send(0, 0, "");
  ASSERT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.pause_calls == 1; }));
  EXPECT_TRUE(x.d.set_paused("f", false));
  EXPECT_TRUE(x.d.set_paused("f", false));
  ASSERT_TRUE(wait_for(x.rt.mu, x.rt.cv, [&] { return x.rt.held.size() == 1; }));
  std::lock_guard lk(x.src.mu);
  EXPECT_EQ(x.src.pause_calls, 1);  // one hold for the two pauses
  EXPECT_EQ(x.src.resume_calls, 1);
}

// A source that throttles (Kafka) is held as a whole, at once.
TEST(DispatcherPause, ThrottlesASourceThatThrottlesAndResumeReleasesIt) {
  One x(/*throttles=*/true);
  ASSERT_TRUE(x.d.set_paused("f", true));
  EXPECT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.throttled; }));
  x.src.send(0, 0, "");
  ASSERT_EQ(x.d.stats().front().held, 1u);
  EXPECT_EQ(x.held_calls(), 0u);
  ASSERT_TRUE(x.d.set_paused("f", false));
  EXPECT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return !x.src.throttled; }));
  EXPECT_TRUE(wait_for(x.rt.mu, x.rt.cv, [&] { return x.rt.held.size() == 1; }));
  std::lock_guard lk(x.src.mu);
  EXPECT_EQ(x.src.pause_calls, 0);
}

// A per-message source (NATS JetStream: no partitions, no offsets) is held at once,
// before anything more is delivered; what it delivered is acked only once run.
TEST(DispatcherPause, APerMessageSourceIsHeldAtOnceAndAcksOnlyWhatRan) {
  metrics::Metrics metrics;
  FunctionConfig fn = function_named("f");
  FakeSource src;
  src.tr = {/*commits_offsets=*/false, /*per_message_ack=*/true};
  FakeSink dlq;
  FakeRuntime rt;
  Dispatcher d(metrics);
  d.add_function({&fn, &rt, &dlq, nullptr});
  d.add_route(src, "f", Ordering::none);
  d.start();
  ASSERT_TRUE(src.start(d));
  ASSERT_TRUE(d.set_paused("f", true));
  EXPECT_TRUE(wait_for(src.mu, src.cv, [&] { return src.paused.count(0) == 1; }));
  src.send(0, 7, "");
  ASSERT_EQ(d.stats().front().held, 1u);
  {
    std::lock_guard lk(src.mu);
    EXPECT_TRUE(src.settled.empty());
  }
  ASSERT_TRUE(d.set_paused("f", false));
  ASSERT_TRUE(d.drain(5s));
  std::lock_guard lk(src.mu);
  EXPECT_TRUE(src.paused.empty());
  ASSERT_EQ(src.settled.size(), 1u);
  EXPECT_EQ(src.settled[0], std::make_pair(int64_t{7}, Settle::ack));
  d.stop();
}

// `paused: true`: nothing runs from the start; the first delivery holds its partition.
TEST(DispatcherPause, PausedInTheConfigStartsPaused) {
  One x(/*throttles=*/false, /*start_paused=*/true);
  EXPECT_TRUE(paused_in_stats(x.d, "f"));
  EXPECT_EQ(paused_gauge(x.metrics, "f"), 1);
  EXPECT_EQ(consumer_paused(x.metrics), 1);  // set when its route was added
  x.src.send(2, 0, "");
  ASSERT_TRUE(wait_for(x.src.mu, x.src.cv, [&] { return x.src.paused.count(2) == 1; }));
  ASSERT_EQ(x.d.stats().front().held, 1u);
  EXPECT_EQ(x.held_calls(), 0u);
  ASSERT_TRUE(x.d.set_paused("f", false));
  EXPECT_TRUE(wait_for(x.rt.mu, x.rt.cv, [&] { return x.rt.held.size() == 1; }));
}

// A retry that falls due while paused waits for the resume.
TEST(DispatcherPause, ARetryDueWhilePausedWaitsForTheResume) {
  One x;
  x.unhold();
  std::atomic<int> fails{1};
  x.rt.behave = [&](const Event&) {
    InvocationResult r;
    if (fails-- > 0) r.outcome = Outcome::error;
    return r;
  };
  x.fn.retry.initial = x.fn.retry.max = 100ms;
  x.fn.retry.jitter = Jitter::none;
  x.src.send(0, 0, "");
  ASSERT_TRUE(wait_for(x.rt.mu, x.rt.cv, [&] { return x.rt.calls.size() == 1; }));
  ASSERT_TRUE(x.d.set_paused("f", true));
  EXPECT_FALSE(x.d.drain(300ms));  // the retry fell due long ago, and waits
  EXPECT_EQ(x.rt.calls.size(), 1u);
  ASSERT_TRUE(x.d.set_paused("f", false));
  ASSERT_TRUE(x.d.drain(5s));
  EXPECT_EQ(x.rt.calls.size(), 2u);
  EXPECT_EQ(x.src.committed_at(0), 1);
}

TEST(DispatcherPause, SynchronousCallsOfAPausedFunctionAreBusy) {
  One x;
  ASSERT_TRUE(x.d.set_paused("f", true));
  std::promise<SyncAnswer> p;
  auto f = p.get_future();
  x.d.invoke_sync("f", Event{}, [&](SyncAnswer&& a) { p.set_value(std::move(a)); });
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  const SyncAnswer a = f.get();
  EXPECT_EQ(a.status, SyncAnswer::Status::busy);
  EXPECT_NE(a.message.find("paused"), std::string::npos);
  EXPECT_TRUE(x.rt.calls.empty());
}

// Shutdown while paused: what waits is given up uncommitted (redelivered after a
// restart) and drain() does not wait for it.
TEST(DispatcherPause, ShutdownWhilePausedLeavesTheWaitingEventsUncommitted) {
  One x;
  x.unhold();
  x.src.send(0, 0, "");
  ASSERT_TRUE(x.d.drain(5s));
  ASSERT_TRUE(x.d.set_paused("f", true));
  for (int64_t o = 1; o < 4; ++o) x.src.send(0, o, "");
  ASSERT_EQ(x.d.stats().front().held, 3u);
  x.d.abandon_waiting_retries();
  ASSERT_TRUE(x.d.drain(5s));
  EXPECT_EQ(x.src.committed_at(0), 1);
  EXPECT_EQ(x.rt.calls.size(), 1u);
}

// A source shared with another function is not held back for the pause: the other
// keeps running every event, the paused one queues them (uncommitted), and its budget
// holds the source once it is full, as for any slow function.
TEST(DispatcherPause, ASharedSourceKeepsFeedingTheOtherFunctionUpToTheBudget) {
  metrics::Metrics metrics;
  FunctionConfig a = function_named("a"), b = function_named("b");
  FakeSource src;
  FakeSink dlq;
  FakeRuntime ra, rb;
  DispatcherOptions opts;
  opts.queue_budget = 8;
  Dispatcher d(metrics, opts);
  d.add_function({&a, &ra, &dlq, nullptr});
  d.add_function({&b, &rb, &dlq, nullptr});
  d.add_route(src, "a", Ordering::none);
  d.add_route(src, "b", Ordering::none);
  d.start();
  ASSERT_TRUE(src.start(d));
  EXPECT_EQ(consumer_paused(metrics), 0);
  ASSERT_TRUE(d.set_paused("a", true));
  EXPECT_EQ(consumer_paused(metrics), 0);  // b still consumes: its lag alerts stay
  ASSERT_TRUE(d.set_paused("b", true));
  EXPECT_EQ(consumer_paused(metrics), 1);  // nobody consumes on purpose
  ASSERT_TRUE(d.set_paused("b", false));
  EXPECT_EQ(consumer_paused(metrics), 0);
  for (int64_t o = 0; o < 4; ++o) src.send(0, o, "");
  ASSERT_TRUE(wait_for(rb.mu, rb.cv, [&] { return rb.calls.size() == 4; }));
  {
    std::lock_guard lk(src.mu);
    EXPECT_TRUE(src.paused.empty());  // b is not stopped by a's pause
    EXPECT_TRUE(src.committed.empty());  // a holds them: nothing committed yet
  }
  EXPECT_TRUE(ra.calls.empty());
  // Past a's budget the source is held, for both (the budget's hold, not the pause's).
  for (int64_t o = 4; o < 8; ++o) src.send(0, o, "");
  ASSERT_TRUE(wait_for(src.mu, src.cv, [&] { return src.paused.count(0) == 1; }));
  ASSERT_TRUE(d.set_paused("a", false));
  ASSERT_TRUE(d.drain(5s));
  EXPECT_EQ(ra.calls.size(), 8u);
  EXPECT_EQ(rb.calls.size(), 8u);
  EXPECT_EQ(src.committed_at(0), 8);
  EXPECT_TRUE(wait_for(src.mu, src.cv, [&] { return src.paused.empty(); }));
  d.stop();
}

}  // namespace
}  // namespace sluice::dispatcher::testing
