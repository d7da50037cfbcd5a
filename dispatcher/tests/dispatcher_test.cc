// Dispatcher behaviour against in-test Source/Sink/Runtime doubles. The real local
// queue and exec runtime are exercised end to end in tests/e2e.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"
#include "dispatcher/retry_topic.h"
#include "dlq/record.h"

namespace sluice::dispatcher::testing {
namespace {

using namespace std::chrono_literals;


struct Fixture {
  explicit Fixture(Ordering ordering = Ordering::partition, uint32_t concurrency = 4,
                   DispatcherOptions opts = {}) {
    fn.name = "f";
    fn.concurrency = concurrency;
    fn.retry.max_attempts = 3;
    fn.retry.initial = 1ms;
    fn.retry.max = 5ms;
    fn.dead_letter = {"fake", "f.dlq"};
    opts.publish_retry_initial = 1ms;
    opts.publish_retry_max = 2ms;
    opts.seed = 1;
    d = std::make_unique<Dispatcher>(metrics, opts);
    d->add_function({&fn, &rt, &dlq, nullptr});
    d->add_route(src, "f", ordering);
    d->start();
    EXPECT_TRUE(src.start(*d));
  }
  ~Fixture() {
    d->drain(5s);
    d->stop();
  }
  metrics::Metrics metrics;
  FunctionConfig fn;
  FakeSource src;
  FakeSink dlq;
  FakeRuntime rt;
  std::unique_ptr<Dispatcher> d;
};

TEST(Dispatcher, SuccessCommitsAndAcks) {
  Fixture fx;
  for (int64_t o = 0; o < 10; ++o) fx.src.send(0, o, "");
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 10);
  EXPECT_EQ(fx.rt.calls.size(), 10u);
  EXPECT_EQ(fx.dlq.count(), 0u);
}

// Results of a quick_answers() runtime, given on another thread, are taken in whether
// they come while the dispatcher thread polls for them (DispatcherOptions::spin) or
// after it went to sleep.
TEST(Dispatcher, QuickRuntimeResultsFromAnotherThreadAreAllTakenIn) {
  Fixture fx(Ordering::none, 4);
  fx.rt.quick = true;
  fx.rt.hold = true;
  for (int64_t o = 0; o < 200; ++o) fx.src.send(0, o, "");
  size_t answered = 0;
  for (int round = 0; answered < 200; ++round) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return !fx.rt.held.empty(); }));
    // Some answers at once (within the spin), some after the thread slept.
    if (round % 3 == 2) std::this_thread::sleep_for(2ms);
    answered += fx.rt.release_all_shuffled(static_cast<uint64_t>(round));
  }
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 200);
  EXPECT_EQ(fx.rt.calls.size(), 200u);
  EXPECT_LE(fx.rt.max_running, 4u);
}

// Scaled to zero: an event arriving at limit 0 runs without waiting for the limit to
// be raised (the autoscaler's next tick), one at a time, and none is lost.
TEST(Dispatcher, LimitZeroRunsTheFirstEventAtOnceOneAtATime) {
  Fixture fx(Ordering::none, 8);
  fx.d->set_limit("f", 0);
  fx.rt.hold = true;
  for (int64_t o = 0; o < 3; ++o) fx.src.send(0, o, "");
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 1; }));
    fx.rt.release_all_shuffled(i);
  }
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.rt.calls.size(), 3u);
  EXPECT_EQ(fx.rt.max_running, 1u);
  EXPECT_EQ(fx.src.committed_at(0), 3);
}

TEST(Dispatcher, PartitionOrderingRunsOneAtATimeInOrder) {
  Fixture fx(Ordering::partition, 8);
  fx.rt.hold = true;
  for (int64_t o = 0; o < 20; ++o) fx.src.send(0, o, "");
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 1; }));
    EXPECT_EQ(fx.rt.max_running, 1u);
    fx.rt.release_all_shuffled(i);
  }
  ASSERT_TRUE(fx.d->drain(10s));
  for (int i = 0; i < 20; ++i) EXPECT_EQ(fx.rt.calls[i].id, "e0-" + std::to_string(i));
}

TEST(Dispatcher, KeyOrderingKeepsPerKeyOrderAndRunsKeysInParallel) {
  Fixture fx(Ordering::key, 16);
  fx.rt.hold = true;
  const int keys = 5, per_key = 30;
  int64_t off = 0;
  for (int i = 0; i < per_key; ++i)
    for (int k = 0; k < keys; ++k) fx.src.send(0, off++, "k" + std::to_string(k));
  size_t done = 0;
  uint64_t seed = 0;
  while (done < static_cast<size_t>(keys * per_key)) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return !fx.rt.held.empty(); }));
    {
      std::lock_guard lk(fx.rt.mu);
      // At most one per key at a time.
      std::set<std::string> ks;
      for (auto& h : fx.rt.held) ASSERT_TRUE(ks.insert(h.key).second) << h.key;
    }
    done += fx.rt.release_all_shuffled(++seed);
  }
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_GT(fx.rt.max_running, 1u);  // different keys ran side by side
  std::map<std::string, int64_t> last;
  for (auto& c : fx.rt.calls) {
    int64_t o = std::stoll(c.id.substr(3));
    EXPECT_LT(last.count(c.key) ? last[c.key] : -1, o) << c.key;
    last[c.key] = o;
  }
  EXPECT_EQ(fx.src.committed_at(0), keys * per_key);
}

TEST(Dispatcher, OutOfOrderCompletionCommitsOnlyTheFinishedPrefix) {
  Fixture fx(Ordering::none, 8);
  fx.rt.hold = true;
  for (int64_t o = 0; o < 3; ++o) fx.src.send(0, o, "");
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 3; }));
  // Finish offset 2 then 1: nothing may be committed while 0 runs.
  InvokeCallback c0, c1, c2;
  {
    std::lock_guard lk(fx.rt.mu);
    for (auto& h : fx.rt.held) {
      if (h.id == "e0-0") c0 = std::move(h.done);
      if (h.id == "e0-1") c1 = std::move(h.done);
      if (h.id == "e0-2") c2 = std::move(h.done);
    }
    fx.rt.held.clear();
  }
  c2(InvocationResult{});
  c1(InvocationResult{});
  // Let the dispatcher process both results, then check: still nothing committed.
  fx.src.send(1, 0, "");  // a marker through the same thread
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 1; }));
  EXPECT_EQ(fx.src.committed_at(0), -1);
  c0(InvocationResult{});
  fx.rt.release_all_shuffled(1);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 3);
}

TEST(Dispatcher, RetriesThenSucceeds) {
  Fixture fx;
  fx.rt.behave = [](const Event& e) {
    InvocationResult r;
    if (e.attempt < 3) {
      r.outcome = Outcome::error;
      r.message = "boom";
    }
    return r;
  };
  fx.src.send(0, 0, "");
  ASSERT_TRUE(fx.d->drain(10s));
  ASSERT_EQ(fx.rt.calls.size(), 3u);
  EXPECT_EQ(fx.rt.calls[2].attempt, 3u);
  EXPECT_EQ(fx.dlq.count(), 0u);
  EXPECT_EQ(fx.src.committed_at(0), 1);
}

TEST(Dispatcher, ExhaustedRetriesDeadLetterWithOriginalPayloadAndHeaders) {
  Fixture fx;
  fx.rt.behave = [](const Event&) {
    return InvocationResult{Outcome::timeout, "", "", "took too long", {}, {}};
  };
  fx.src.send(2, 5, "k", "payload");
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.rt.calls.size(), 3u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  auto& [topic, ev] = fx.dlq.published[0];
  EXPECT_EQ(topic, "f.dlq");
  EXPECT_EQ(ev.data, "payload");
  EXPECT_EQ(ev.key, "k");
  auto rec = dlq::parse_record(ev, nullptr);
  ASSERT_TRUE(rec);
  EXPECT_EQ(rec.value().function, "f");
  EXPECT_EQ(rec.value().error_class, "timeout");
  EXPECT_EQ(rec.value().error_message, "took too long");
  EXPECT_EQ(rec.value().attempts, 3u);
  EXPECT_EQ(rec.value().original_topic, "in");
  EXPECT_EQ(rec.value().original_partition, 2);
  EXPECT_EQ(rec.value().original_offset, 5);
  EXPECT_EQ(fx.src.committed_at(2), 6);
  ASSERT_EQ(fx.src.settled.size(), 1u);
  EXPECT_EQ(fx.src.settled[0].second, Settle::term);
}

TEST(Dispatcher, RejectedGoesStraightToTheDeadLetterQueue) {
  Fixture fx;
  fx.rt.behave = [](const Event&) {
    return InvocationResult{Outcome::rejected, "", "", "bad input", {}, {}};
  };
  fx.src.send(0, 0, "");
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.rt.calls.size(), 1u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(dlq::parse_record(fx.dlq.published[0].second, nullptr).value().error_class, "rejected");
}

TEST(Dispatcher, DeadLetterPublishFailureIsRetriedNeverCommittedEarly) {
  Fixture fx;
  fx.rt.behave = [](const Event&) {
    return InvocationResult{Outcome::rejected, "", "", "no", {}, {}};
  };
  fx.dlq.fail_next = 3;
  fx.src.send(0, 0, "");
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.src.committed_at(0), 1);
}

TEST(Dispatcher, FullBudgetPausesThePartitionAndDrainingResumesIt) {
  DispatcherOptions opts;
  opts.queue_budget = 4;
  Fixture fx(Ordering::none, 2, opts);
  fx.rt.hold = true;
  for (int64_t o = 0; o < 6; ++o) fx.src.send(3, o, "");
  ASSERT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return fx.src.paused.count(3) == 1; }));
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 2; }));
  EXPECT_EQ(fx.rt.max_running, 2u);  // concurrency bound
  // Release whatever runs until all six are through (each release lets more start).
  size_t released = 0;
  for (int i = 0; released < 6; ++i) {
    ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return !fx.rt.held.empty(); }));
    released += fx.rt.release_all_shuffled(i);
  }
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return fx.src.paused.empty(); }));
  EXPECT_GE(fx.src.resume_calls, 1);
}

// A source that throttles (Kafka) is held back as a whole, never paused per
// partition for the budget (a pause would drop what its client prefetched).
TEST(Dispatcher, FullBudgetThrottlesASourceThatThrottlesAndDrainingReleasesIt) {
  metrics::Metrics metrics;
  FunctionConfig fn;
  fn.name = "f";
  fn.concurrency = 2;
  fn.dead_letter = {"fake", "f.dlq"};
  FakeSource src;
  src.tr.throttles = true;
  FakeSink dlq;
  FakeRuntime rt;
  rt.hold = true;
  DispatcherOptions opts;
  opts.queue_budget = 4;
  Dispatcher d(metrics, opts);
  d.add_function({&fn, &rt, &dlq, nullptr});
  d.add_route(src, "f", Ordering::none);
  d.start();
  ASSERT_TRUE(src.start(d));
  for (int64_t o = 0; o < 6; ++o) src.send(3, o, "");
  ASSERT_TRUE(wait_for(src.mu, src.cv, [&] { return src.throttled; }));
  size_t released = 0;
  for (int i = 0; released < 6; ++i) {
    ASSERT_TRUE(wait_for(rt.mu, rt.cv, [&] { return !rt.held.empty(); }));
    released += rt.release_all_shuffled(i);
  }
  ASSERT_TRUE(d.drain(10s));
  EXPECT_TRUE(wait_for(src.mu, src.cv, [&] { return !src.throttled; }));
  {
    std::lock_guard lk(src.mu);
    EXPECT_EQ(src.pause_calls, 0);
    EXPECT_EQ(src.throttle_calls, 2);  // once on, once off: one hold, not one per event
    EXPECT_EQ(src.committed.at(3), 6);
  }
  d.stop();
}

TEST(Dispatcher, FanOutCommitsOnlyWhenEveryFunctionFinished) {
  metrics::Metrics metrics;
  FunctionConfig a, b;
  a.name = "a";
  b.name = "b";
  a.dead_letter = b.dead_letter = {"fake", "x.dlq"};
  b.output = Target{"fake", "out"};
  FakeSource src;
  FakeSink sink;
  FakeRuntime ra, rb;
  rb.hold = true;
  rb.behave = nullptr;
  Dispatcher d(metrics);
  d.add_function({&a, &ra, &sink, nullptr});
  d.add_function({&b, &rb, &sink, &sink});
  d.add_route(src, "a", Ordering::partition);
  d.add_route(src, "b", Ordering::partition);
  d.start();
  ASSERT_TRUE(src.start(d));
  src.send(0, 0, "key1", "hello");
  ASSERT_TRUE(wait_for(ra.mu, ra.cv, [&] { return ra.calls.size() == 1; }));
  ASSERT_TRUE(wait_for(rb.mu, rb.cv, [&] { return rb.held.size() == 1; }));
  EXPECT_EQ(src.committed_at(0), -1);  // b still holds it
  rb.release_all_shuffled(0);
  ASSERT_TRUE(d.drain(10s));
  EXPECT_EQ(src.committed_at(0), 1);
  ASSERT_EQ(sink.count(), 1u);  // b's output
  EXPECT_EQ(sink.published[0].first, "out");
  EXPECT_EQ(sink.published[0].second.key, "key1");
  EXPECT_EQ(*sink.published[0].second.extension("causationid"), "e0-0");
  d.stop();
}

// A result event's datacontenttype: the function's own content type, else the
// output's content_type (so CloudEvents SDKs can decode every output).
TEST(Dispatcher, ResultEventCarriesTheResultsOrTheOutputsContentType) {
  for (const char* from_fn : {"", "application/json"}) {
    metrics::Metrics metrics;
    FunctionConfig f;
    f.name = "f";
    f.dead_letter = {"fake", "f.dlq"};
    f.output = Target{"fake", "out"};
    f.output_content_type = "text/csv";
    FakeSource src;
    FakeSink sink;
    FakeRuntime rt;
    rt.behave = [from_fn](const Event&) {
      InvocationResult r;
      r.outcome = Outcome::success;
      r.output = "a,b";
      r.content_type = from_fn;
      return r;
    };
    Dispatcher d(metrics);
    d.add_function({&f, &rt, &sink, &sink});
    d.add_route(src, "f", Ordering::partition);
    d.start();
    ASSERT_TRUE(src.start(d));
    src.send(0, 0, "k", "in");
    ASSERT_TRUE(d.drain(10s));
    ASSERT_EQ(sink.count(), 1u);
    EXPECT_EQ(sink.published[0].second.datacontenttype, *from_fn ? from_fn : "text/csv");
    EXPECT_EQ(sink.published[0].second.data, "a,b");
    d.stop();
  }
}

// A runtime that answers on the calling thread (inproc `inline: true`): results are
// taken in without a hand-off, the lane order holds, the stack does not grow with the
// backlog, and a burst of results costs one commit per partition, not one per event.
TEST(Dispatcher, InlineResultsKeepOrderAndCommitOncePerBurst) {
  for (Ordering ordering : {Ordering::partition, Ordering::key, Ordering::none}) {
    Fixture fx(ordering, 4);
    constexpr size_t kBatches = 10, kPerBatch = 5000;
    for (size_t b = 0; b < kBatches; ++b)
      fx.src.send_batch(0, static_cast<int64_t>(b * kPerBatch), kPerBatch, 7);
    ASSERT_TRUE(fx.d->drain(30s));
    EXPECT_EQ(fx.src.committed_at(0), static_cast<int64_t>(kBatches * kPerBatch));
    EXPECT_LE(fx.src.commit_calls, static_cast<int>(kBatches)) << "ordering " << int(ordering);
    std::lock_guard lk(fx.rt.mu);
    ASSERT_EQ(fx.rt.calls.size(), kBatches * kPerBatch);
    if (ordering != Ordering::none) {
      std::map<std::string, int64_t> last;  // per key: offsets increase
      for (size_t i = 0; i < fx.rt.calls.size(); ++i) {
        const auto& c = fx.rt.calls[i];
        const int64_t off = std::stoll(c.id.substr(c.id.find('-') + 1));
        auto [it, fresh] = last.emplace(c.key, off);
        if (!fresh) {
          ASSERT_LT(it->second, off) << c.key;
          it->second = off;
        }
      }
    }
  }
}

TEST(Dispatcher, CountsOutcomesInMetrics) {
  Fixture fx;
  fx.rt.behave = [](const Event& e) {
    InvocationResult r;
    if (e.attempt == 1) r.outcome = Outcome::crash;
    else std::this_thread::sleep_for(20ms);  // the work of the second attempt
    return r;
  };
  fx.src.send(0, 0, "");
  ASSERT_TRUE(fx.d->drain(10s));
  // Stats count invocations (both attempts) and their time, apart from events finished.
  const auto stats = fx.d->stats();
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].finished, 1u);
  EXPECT_EQ(stats[0].invocations, 2u);
  EXPECT_GE(stats[0].invocation_seconds, 0.02);
  auto text = fx.metrics.text();
  EXPECT_NE(text.find("sluice_invocations_total{function=\"f\",outcome=\"crash\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_invocations_total{function=\"f\",outcome=\"success\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_retries_total{function=\"f\"} 1"), std::string::npos);
  EXPECT_NE(text.find("sluice_events_received_total{broker=\"fake\",topic=\"in\"} 1"),
            std::string::npos);
}

// ---------------------------------------------------------------- invoke_sync

Event sync_event(std::string id) {
  Event e;
  e.id = std::move(id);
  e.broker = "http";
  e.data = "d";
  return e;
}

const FunctionStats& stats_of(const std::vector<FunctionStats>& all) { return all.at(0); }

// A synchronous call runs at once and counts in the function's budget; past
// `concurrency` synchronous calls the next one is refused as busy (HTTP 429).
TEST(Dispatcher, SyncCallsTakeBudgetSlotsAndTheOneTooManyIsBusy) {
  Fixture fx(Ordering::none, 2);
  fx.rt.hold = true;
  SyncWaiter w;
  fx.d->invoke_sync("f", sync_event("s1"), w.callback());
  fx.d->invoke_sync("f", sync_event("s2"), w.callback());
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 2; }));
  auto st = fx.d->stats();
  EXPECT_EQ(stats_of(st).held, 2u);
  EXPECT_EQ(stats_of(st).running, 2u);
  fx.d->invoke_sync("f", sync_event("s3"), w.callback());
  ASSERT_TRUE(w.wait(1));
  EXPECT_EQ(w.answers[0].status, SyncAnswer::Status::busy);
  EXPECT_NE(w.answers[0].message.find("running 2 synchronous calls"), std::string::npos)
      << w.answers[0].message;
  EXPECT_EQ(fx.rt.release_all_shuffled(1), 2u);
  ASSERT_TRUE(w.wait(3));
  EXPECT_EQ(w.answers[1].status, SyncAnswer::Status::done);
  EXPECT_EQ(w.answers[1].result.outcome, Outcome::success);
  EXPECT_EQ(w.answers[2].status, SyncAnswer::Status::done);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.d->held(), 0u);
  EXPECT_NE(fx.metrics.text().find("sluice_invocations_total{function=\"f\",outcome=\"success\"} 2"),
            std::string::npos);
}

// The queue and synchronous calls share the function's concurrency: a queued event
// waits while a synchronous call holds the only slot.
TEST(Dispatcher, QueuedEventsWaitWhileSyncCallsHoldTheConcurrency) {
  Fixture fx(Ordering::none, 1);
  fx.rt.hold = true;
  SyncWaiter w;
  fx.d->invoke_sync("f", sync_event("s1"), w.callback());
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 1; }));
  fx.src.send(0, 0, "");
  (void)fx.d->stats();  // a round trip through the dispatcher thread: the event is taken in
  {
    std::lock_guard lk(fx.rt.mu);
    EXPECT_EQ(fx.rt.calls.size(), 1u);
  }
  {
    std::lock_guard lk(fx.rt.mu);
    fx.rt.hold = false;
  }
  EXPECT_EQ(fx.rt.release_all_shuffled(1), 1u);
  ASSERT_TRUE(w.wait(1));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.rt.calls.size(), 2u);
  EXPECT_EQ(fx.src.committed_at(0), 1);
}

// Over the function's budget of held events a synchronous call is busy too: it cannot
// grow memory beside the queue.
TEST(Dispatcher, SyncCallOverTheHeldBudgetIsBusy) {
  DispatcherOptions opts;
  opts.queue_budget = 2;
  Fixture fx(Ordering::none, 4, opts);
  fx.rt.hold = true;
  fx.src.send(0, 0, "");
  fx.src.send(0, 1, "");
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.held.size() == 2; }));
  SyncWaiter w;
  fx.d->invoke_sync("f", sync_event("s1"), w.callback());
  ASSERT_TRUE(w.wait(1));
  EXPECT_EQ(w.answers[0].status, SyncAnswer::Status::busy);
  EXPECT_NE(w.answers[0].message.find("budget"), std::string::npos) << w.answers[0].message;
  {
    std::lock_guard lk(fx.rt.mu);
    fx.rt.hold = false;
  }
  fx.rt.release_all_shuffled(1);
  ASSERT_TRUE(fx.d->drain(10s));
  SyncWaiter again;
  fx.d->invoke_sync("f", sync_event("s2"), again.callback());
  ASSERT_TRUE(again.wait(1));
  EXPECT_EQ(again.answers[0].status, SyncAnswer::Status::done);
}

// Emitted events of a synchronous call go to the output like a queued event's (counted
// in sluice_published_total), without the result event; a failed publish is answered
// at once (HTTP 503), not retried behind the caller's back.
TEST(Dispatcher, SyncCallPublishesEmittedEventsThroughTheOutput) {
  metrics::Metrics metrics;
  FunctionConfig fn;
  fn.name = "f";
  fn.dead_letter = {"fake", "f.dlq"};
  fn.output = Target{"fake", "f.out"};
  FakeSink dlq, out;
  FakeRuntime rt;
  rt.behave = [](const Event&) {
    InvocationResult r;
    r.output = "answer";
    r.emitted.resize(2);
    return r;
  };
  Dispatcher d(metrics);
  FunctionBinding b{&fn, &rt, &dlq, &out};
  d.add_function(b);
  d.start();
  SyncWaiter w;
  d.invoke_sync("f", sync_event("s1"), w.callback());
  ASSERT_TRUE(w.wait(1));
  EXPECT_EQ(w.answers[0].status, SyncAnswer::Status::done);
  EXPECT_EQ(w.answers[0].result.output, "answer");
  EXPECT_EQ(out.count(), 2u);
  EXPECT_NE(metrics.text().find("sluice_published_total{broker=\"fake\",topic=\"f.out\"} 2"),
            std::string::npos)
      << metrics.text();
  {
    std::lock_guard lk(out.mu);
    out.fail_next = 1;
  }
  d.invoke_sync("f", sync_event("s2"), w.callback());
  ASSERT_TRUE(w.wait(2));
  EXPECT_EQ(w.answers[1].status, SyncAnswer::Status::output_failed);
  ASSERT_TRUE(d.drain(10s));
  d.stop();
  // After stop() a call is answered at once.
  d.invoke_sync("f", sync_event("s3"), w.callback());
  ASSERT_TRUE(w.wait(3));
  EXPECT_EQ(w.answers[2].status, SyncAnswer::Status::stopped);
}

// ---------------------------------------------------------------- retry.mode: topic

struct TopicFixture {
  explicit TopicFixture(std::chrono::milliseconds delay = 1ms, uint32_t max_attempts = 3) {
    fn.name = "f";
    fn.concurrency = 4;
    fn.retry.max_attempts = max_attempts;
    fn.retry.initial = delay;
    fn.retry.max = delay;
    fn.retry.jitter = Jitter::none;
    fn.retry.backoff = BackoffKind::fixed;
    fn.retry.mode = RetryMode::topic;
    fn.dead_letter = {"fake", "f.dlq"};
    retry_src.tr = {true, false};
    DispatcherOptions opts;
    opts.seed = 1;
    opts.control_keys = &keys;
    d = std::make_unique<Dispatcher>(metrics, opts);
    FunctionBinding b{&fn, &rt, &dlq, nullptr};
    b.retry_sink = &retry_sink;
    b.retry_topic = "f.retry";
    d->add_function(b);
    d->add_route(src, "f", Ordering::partition, RouteRole::subscription, RetryPath::topic);
    d->add_route(retry_src, "f", Ordering::none, RouteRole::retry, RetryPath::topic);
    d->start();
    EXPECT_TRUE(src.start(*d));
    EXPECT_TRUE(retry_src.start(*d));
  }
  ~TopicFixture() {
    d->drain(5s);
    d->stop();
  }
  // Feeds the n-th record published to the retry topic back through the retry source.
  void loop_back(size_t n, int64_t offset) {
    Event e;
    {
      std::lock_guard lk(retry_sink.mu);
      e = retry_sink.published.at(n).second;
    }
    e.broker = "fake";
    e.topic = "f.retry";
    e.partition = 0;
    e.offset = offset;
    retry_src.send_event(std::move(e));
  }
  // A retry record as the retry topic holds it, sealed for `f` with the
  // dispatcher's key (what an earlier run of this engine wrote).
  Event sealed_retry(std::string id, int64_t offset, retry::State st) {
    Event e;
    e.id = std::move(id);
    e.data = "x";
    e.broker = "fake";
    e.topic = "in";
    e.partition = 0;
    e.offset = 9;
    Event r = retry::make_event(e, st, keys, "f");
    r.topic = "f.retry";
    r.partition = 0;
    r.offset = offset;
    return r;
  }
  seal::Keyring keys = seal::Keyring::random();
  metrics::Metrics metrics;
  FunctionConfig fn;
  FakeSource src, retry_src;
  FakeSink dlq, retry_sink;
  FakeRuntime rt;
  std::unique_ptr<Dispatcher> d;
};

InvocationResult failing(const Event&) {
  return InvocationResult{Outcome::error, "", "", "boom", {}, {}};
}

TEST(DispatcherRetryTopic, FailureGoesToTheRetryTopicAndFreesTheLane) {
  TopicFixture fx;
  fx.rt.behave = [](const Event& e) {
    return e.data == "bad" ? failing(e) : InvocationResult{};
  };
  fx.src.send(0, 0, "k", "bad");
  fx.src.send(0, 1, "k", "good");  // same partition lane: runs without waiting for the retry
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.src.committed_at(0), 2);
  ASSERT_EQ(fx.retry_sink.count(), 1u);
  const auto& [topic, ev] = fx.retry_sink.published[0];
  EXPECT_EQ(topic, "f.retry");
  EXPECT_EQ(ev.data, "bad");
  EXPECT_EQ(ev.key, "k");
  EXPECT_EQ(*ev.header("sluice-retry-attempt"), "1");
  EXPECT_EQ(*ev.header("sluice-retry-origin"), "fake/in/0/0");
  EXPECT_GT(std::stoll(*ev.header("sluice-retry-due")), 0);
  EXPECT_EQ(fx.dlq.count(), 0u);
  EXPECT_NE(fx.metrics.text().find("sluice_published_total{broker=\"fake\",topic=\"f.retry\"} 1"),
            std::string::npos)
      << fx.metrics.text();
}

TEST(DispatcherRetryTopic, RetryEventWaitsUntilDueWithItsPartitionPaused) {
  TopicFixture fx(400ms);
  std::atomic<int64_t> second_call_ms{0};
  fx.rt.behave = [&](const Event& e) {
    if (e.attempt == 1) return failing(e);
    second_call_ms = now_unix_ms();
    return InvocationResult{};
  };
  fx.src.send(0, 0, "", "x");
  ASSERT_TRUE(wait_for(fx.retry_sink.mu, fx.retry_sink.cv,
                       [&] { return fx.retry_sink.published.size() == 1; }));
  const int64_t due = std::stoll(*fx.retry_sink.published[0].second.header("sluice-retry-due"));
  fx.loop_back(0, 0);
  // Not due yet: the retry partition is paused and nothing runs (no busy loop).
  ASSERT_TRUE(wait_for(fx.retry_src.mu, fx.retry_src.cv,
                       [&] { return fx.retry_src.paused.count(0) == 1; }));
  ASSERT_TRUE(fx.d->drain(10s));
  ASSERT_EQ(fx.rt.calls.size(), 2u);
  EXPECT_EQ(fx.rt.calls[1].attempt, 2u);  // the attempt count travelled in the headers
  EXPECT_GE(second_call_ms.load(), due);  // never early
  EXPECT_TRUE(wait_for(fx.retry_src.mu, fx.retry_src.cv, [&] { return fx.retry_src.paused.empty(); }));
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
}

TEST(DispatcherRetryTopic, ExhaustedRetryDeadLettersWithTheOriginalCoordinates) {
  TopicFixture fx(1ms, 2);
  fx.rt.behave = failing;
  fx.src.send(3, 7, "k", "poison");
  ASSERT_TRUE(wait_for(fx.retry_sink.mu, fx.retry_sink.cv,
                       [&] { return fx.retry_sink.published.size() == 1; }));
  fx.loop_back(0, 0);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.retry_sink.count(), 1u);  // attempt 2 of 2 failed: no third trip
  ASSERT_EQ(fx.dlq.count(), 1u);
  auto rec = dlq::parse_record(fx.dlq.published[0].second, &fx.keys);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec.value().verified);
  EXPECT_EQ(rec.value().attempts, 2u);
  EXPECT_EQ(rec.value().original_topic, "in");
  EXPECT_EQ(rec.value().original_partition, 3);
  EXPECT_EQ(rec.value().original_offset, 7);
  EXPECT_EQ(rec.value().event.data, "poison");
  EXPECT_EQ(rec.value().event.header("sluice-retry-attempt"), nullptr);
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
}

TEST(DispatcherRetryTopic, RecordWithoutRetryHeadersRunsAtOnceAndIsCounted) {
  TopicFixture fx;
  Event e;
  e.id = "stray";
  e.broker = "fake";
  e.topic = "f.retry";
  e.partition = 0;
  e.offset = 0;
  e.set_header("sluice-retry-attempt", "two");
  fx.retry_src.send_event(std::move(e));
  ASSERT_TRUE(fx.d->drain(10s));
  ASSERT_EQ(fx.rt.calls.size(), 1u);
  EXPECT_EQ(fx.rt.calls[0].attempt, 1u);
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
  EXPECT_NE(fx.metrics.text().find(
                "sluice_control_headers_rejected_total{function=\"f\",kind=\"retry\"} 1"),
            std::string::npos);
}

// Issue 21: a record written to `f.retry` by someone else, due in the year 3000,
// held the partition until then; the function's next failures never reached the DLQ.
TEST(DispatcherRetryTopic, ForgedRetryRecordDueInTheYear3000DoesNotStallTheFunction) {
  TopicFixture fx(1ms, 1);
  fx.rt.behave = failing;
  Event e;
  e.id = "forged";
  e.data = "x";
  e.broker = "fake";
  e.topic = "f.retry";
  e.partition = 0;
  e.offset = 0;
  e.set_header("sluice-retry-attempt", "1");
  e.set_header("sluice-retry-due", "32503680000000");  // 3000-01-01
  e.set_header("sluice-retry-first-failure", "1");
  e.set_header("sluice-retry-origin", "fake/in/0/9");
  fx.retry_src.send_event(std::move(e));
  // It runs now as a fresh event; its failure (attempt 1 of 1) is dead-lettered.
  ASSERT_TRUE(wait_for(fx.dlq.mu, fx.dlq.cv, [&] { return fx.dlq.published.size() == 1; }, 5s));
  ASSERT_TRUE(fx.d->drain(5s));
  ASSERT_EQ(fx.rt.calls.size(), 1u);
  EXPECT_EQ(fx.rt.calls[0].attempt, 1u);
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
  auto rec = dlq::parse_record(fx.dlq.published[0].second, &fx.keys);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec.value().verified);
  EXPECT_EQ(rec.value().attempts, 1u);
  EXPECT_EQ(rec.value().original_topic, "f.retry");  // the forged origin was not believed
  EXPECT_EQ(rec.value().event.header("sluice-retry-due"), nullptr);
  EXPECT_NE(fx.metrics.text().find(
                "sluice_control_headers_rejected_total{function=\"f\",kind=\"retry\"} 1"),
            std::string::npos);
}

// A sealed retry record (another process's clock far ahead, or a key that leaked) is
// still held at most retry.max from when it is read.
TEST(DispatcherRetryTopic, SealedRetryIsNeverHeldLongerThanTheMaxBackoff) {
  TopicFixture fx(50ms, 3);
  const int64_t read_at = now_unix_ms();
  fx.retry_src.send_event(fx.sealed_retry("far", 0, {1, INT64_MAX, 1}));
  ASSERT_TRUE(wait_for(fx.rt.mu, fx.rt.cv, [&] { return fx.rt.calls.size() == 1; }, 5s));
  EXPECT_LT(now_unix_ms() - read_at, 5000);
  EXPECT_EQ(fx.rt.calls[0].attempt, 2u);  // its (sealed) attempt count is kept
  ASSERT_TRUE(fx.d->drain(5s));
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
  EXPECT_EQ(fx.metrics.text().find("sluice_control_headers_rejected_total{"), std::string::npos);
}

// A genuine retry record copied with its seal onto another payload is not trusted.
TEST(DispatcherRetryTopic, SealCopiedOntoAnotherPayloadIsRejected) {
  TopicFixture fx(3600s, 3);
  Event copied = fx.sealed_retry("e1", 0, {1, now_unix_ms() + 3600'000, 1});
  copied.data = "something else";
  fx.retry_src.send_event(std::move(copied));
  ASSERT_TRUE(fx.d->drain(5s));  // ran at once instead of waiting an hour
  ASSERT_EQ(fx.rt.calls.size(), 1u);
  EXPECT_EQ(fx.rt.calls[0].attempt, 1u);
}

// Retry headers on an event of the subscription would otherwise ride into the retry
// record sluice seals: a forged origin would become the dead letter's replay target.
TEST(DispatcherRetryTopic, RetryHeadersOnASubscriptionEventAreNotSealedIntoTheRetryRecord) {
  TopicFixture fx(1ms, 2);
  fx.rt.behave = failing;
  Event e;
  e.id = "sneaky";
  e.data = "x";
  e.broker = "fake";
  e.topic = "in";
  e.partition = 0;
  e.offset = 0;
  e.set_header("sluice-retry-origin", "fake/payments/0/5");
  e.set_header("sluice-retry-attempt", "7");
  fx.src.send_event(std::move(e));
  ASSERT_TRUE(wait_for(fx.retry_sink.mu, fx.retry_sink.cv,
                       [&] { return fx.retry_sink.published.size() == 1; }));
  fx.loop_back(0, 0);
  ASSERT_TRUE(fx.d->drain(10s));
  ASSERT_EQ(fx.dlq.count(), 1u);
  auto rec = dlq::parse_record(fx.dlq.published[0].second, &fx.keys);
  ASSERT_TRUE(rec);
  EXPECT_TRUE(rec.value().verified);
  EXPECT_EQ(rec.value().original_topic, "in");
  EXPECT_EQ(rec.value().attempts, 2u);
  EXPECT_NE(fx.metrics.text().find(
                "sluice_control_headers_rejected_total{function=\"f\",kind=\"retry\"} 1"),
            std::string::npos);
}

TEST(DispatcherRetryTopic, WaitingRetriesAreAbandonedUncommittedAtShutdown) {
  TopicFixture fx(3600s);
  fx.retry_src.send_event(fx.sealed_retry("later", 0, {1, now_unix_ms() + 3600'000, 1}));
  ASSERT_TRUE(wait_for(fx.retry_src.mu, fx.retry_src.cv,
                       [&] { return fx.retry_src.paused.count(0) == 1; }));
  fx.d->abandon_waiting_retries();
  EXPECT_TRUE(fx.d->drain(5s));
  EXPECT_EQ(fx.rt.calls.size(), 0u);
  EXPECT_EQ(fx.retry_src.committed_at(0), -1);  // comes again after a restart
}

// The plan (topology/plan.h) chooses each route's RetryPath; routes it could never
// choose are programming errors, refused at set-up.
TEST(DispatcherRetryTopic, RetryPathsTheSourceOrFunctionCannotTakeAreRefused) {
  metrics::Metrics metrics;
  FunctionConfig f, g;
  f.name = "f";
  g.name = "g";
  FakeRuntime rt;
  FakeSink dlq, retry_sink;
  Dispatcher d(metrics);
  d.add_function({&f, &rt, &dlq, nullptr});  // no retry sink
  FunctionBinding gb{&g, &rt, &dlq, nullptr};
  gb.retry_sink = &retry_sink;
  gb.retry_topic = "g.retry";
  d.add_function(gb);
  FakeSource offsets, js, shared;
  js.tr = shared.tr = {false, true};  // JetStream-like
  EXPECT_THROW(d.add_route(offsets, "f", Ordering::none, RouteRole::subscription, RetryPath::topic),
               std::logic_error);
  EXPECT_NO_THROW(d.add_route(offsets, "g", Ordering::none, RouteRole::subscription, RetryPath::topic));
  EXPECT_THROW(d.add_route(offsets, "f", Ordering::none, RouteRole::subscription, RetryPath::redeliver),
               std::logic_error);  // an offset source cannot nack
  EXPECT_NO_THROW(d.add_route(js, "f", Ordering::none, RouteRole::subscription, RetryPath::redeliver));
  EXPECT_THROW(d.add_route(js, "g", Ordering::none), std::logic_error);  // its nack would settle g's too
  EXPECT_NO_THROW(d.add_route(shared, "f", Ordering::none));
  EXPECT_THROW(d.add_route(shared, "g", Ordering::none, RouteRole::subscription, RetryPath::redeliver),
               std::logic_error);
}

TEST(DispatcherRetryTopic, PerMessageAckBrokerNacksWithTheBackoffDelay) {
  metrics::Metrics metrics;
  FunctionConfig fn;
  fn.name = "f";
  fn.retry.max_attempts = 3;
  fn.retry.initial = fn.retry.max = 250ms;
  fn.retry.jitter = Jitter::none;
  fn.retry.mode = RetryMode::topic;
  fn.dead_letter = {"fake", "f.dlq"};
  FakeSource src;
  src.tr = {false, true};  // JetStream-like
  FakeSink dlq;
  FakeRuntime rt;
  rt.behave = failing;
  Dispatcher d(metrics);
  d.add_function({&fn, &rt, &dlq, nullptr});
  d.add_route(src, "f", Ordering::none, RouteRole::subscription, RetryPath::redeliver);
  d.start();
  ASSERT_TRUE(src.start(d));
  src.send(0, 1, "", "x");
  ASSERT_TRUE(d.drain(10s));
  ASSERT_EQ(src.settled.size(), 1u);
  EXPECT_EQ(src.settled[0].second, Settle::nack);
  EXPECT_EQ(src.settle_delays[0], 250ms);
  EXPECT_EQ(rt.calls.size(), 1u);  // the broker redelivers; no inline retry
  // The redelivery reports 2 earlier deliveries: attempt 3 of 3 fails -> dead letter + term.
  Event again;
  again.id = "e0-1";
  again.partition = 0;
  again.offset = 1;
  src.send_event(std::move(again), 2);
  ASSERT_TRUE(d.drain(10s));
  ASSERT_EQ(rt.calls.size(), 2u);
  EXPECT_EQ(rt.calls[1].attempt, 3u);
  ASSERT_EQ(src.settled.size(), 2u);
  EXPECT_EQ(src.settled[1].second, Settle::term);
  EXPECT_EQ(dlq.count(), 1u);
  d.stop();
}

TEST(RetryRecord, RoundTripsStateAndOrigin) {
  Event e;
  e.broker = "kafka";
  e.topic = "a/b";
  e.partition = 4;
  e.offset = 99;
  e.data = "d";
  e.set_header("user", "kept");
  const seal::Keyring keys = seal::Keyring::random();
  Event r = retry::make_event(e, {2, 1234, 1000}, keys, "f");
  EXPECT_EQ(keys.verify(seal::Kind::retry, r, "f"), seal::Verdict::verified);
  auto st = retry::take_state(r);
  ASSERT_TRUE(st);
  EXPECT_EQ(st.value().attempts, 2u);
  EXPECT_EQ(st.value().due_ms, 1234);
  EXPECT_EQ(st.value().first_failure_ms, 1000);
  EXPECT_EQ(r.topic, "a/b");
  EXPECT_EQ(r.partition, 4);
  EXPECT_EQ(r.offset, 99);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].name, "user");
}

TEST(RetryRecord, BadHeadersAreReportedByName) {
  const std::vector<std::pair<std::vector<Header>, std::string>> cases = {
      {{}, "sluice-retry-attempt is missing"},
      {{{"sluice-retry-attempt", "x"}}, "sluice-retry-attempt is not a number"},
      {{{"sluice-retry-attempt", "1"}, {"sluice-retry-due", "5"},
        {"sluice-retry-first-failure", "1"}, {"sluice-retry-origin", "nopes"}},
       "sluice-retry-origin is malformed"},
      {{{"sluice-retry-attempt", "1"}, {"sluice-retry-due", "-"},
        {"sluice-retry-first-failure", "1"}, {"sluice-retry-origin", "b/t/0/1"}},
       "sluice-retry-due is not a number"},
  };
  for (const auto& [headers, want] : cases) {
    Event e;
    e.headers = headers;
    auto st = retry::take_state(e);
    ASSERT_FALSE(st);
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
    EXPECT_TRUE(e.headers.empty());  // retry headers never leak into the function
  }
}

}  // namespace
}  // namespace sluice::dispatcher::testing
