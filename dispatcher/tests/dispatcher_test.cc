// Dispatcher behaviour against in-test Source/Sink/Runtime doubles. The real local
// queue and exec runtime are exercised end to end in tests/e2e.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "dispatcher/dispatcher.h"
#include "dlq/record.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;

// Waits (with a deadline, never a bare sleep) until `pred` holds under `mu`.
template <class Pred>
bool wait_for(std::mutex& mu, std::condition_variable& cv, Pred pred,
              std::chrono::milliseconds limit = 10s) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, limit, pred);
}

class FakeSource final : public Source {
 public:
  std::string_view broker() const override { return "fake"; }
  std::string_view topic() const override { return "in"; }
  std::string_view group() const override { return "g"; }
  SourceTraits traits() const override { return {true, true}; }
  Result<void> start(SourceListener& l) override {
    listener = &l;
    return ok();
  }
  void stop() override {}
  void pause(int32_t p) override {
    std::lock_guard lk(mu);
    paused.insert(p);
    ++pause_calls;
    cv.notify_all();
  }
  void resume(int32_t p) override {
    std::lock_guard lk(mu);
    paused.erase(p);
    ++resume_calls;
    cv.notify_all();
  }
  void commit(int32_t p, int64_t next) override {
    std::lock_guard lk(mu);
    committed[p] = next;
    cv.notify_all();
  }
  void settle(const DeliveryTag& tag, Settle how, std::chrono::milliseconds) override {
    std::lock_guard lk(mu);
    settled.emplace_back(tag.offset, how);
    cv.notify_all();
  }
  Result<std::vector<PartitionLag>> lag() override { return std::vector<PartitionLag>{}; }

  void send(int32_t partition, int64_t offset, std::string key, std::string data = "") {
    Event e;
    e.id = "e" + std::to_string(partition) + "-" + std::to_string(offset);
    e.broker = "fake";
    e.topic = "in";
    e.partition = partition;
    e.offset = offset;
    e.key = std::move(key);
    e.data = std::move(data);
    std::vector<Delivery> batch;
    batch.emplace_back(std::move(e), this, DeliveryTag{partition, offset, 0});
    listener->on_deliveries(*this, std::move(batch));
  }
  int64_t committed_at(int32_t p) {
    std::lock_guard lk(mu);
    auto it = committed.find(p);
    return it == committed.end() ? -1 : it->second;
  }

  SourceListener* listener = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::set<int32_t> paused;
  int pause_calls = 0, resume_calls = 0;
  std::map<int32_t, int64_t> committed;
  std::vector<std::pair<int64_t, Settle>> settled;
};

class FakeSink final : public Sink {
 public:
  std::string_view broker() const override { return "fake"; }
  void publish(std::string_view topic, Event ev, PublishCallback done) override {
    std::unique_lock lk(mu);
    if (fail_next > 0) {
      --fail_next;
      lk.unlock();
      done(Error{Errc::unavailable, "sink down", true});
      return;
    }
    published.emplace_back(std::string(topic), std::move(ev));
    cv.notify_all();
    lk.unlock();
    done(PublishAck{std::string(topic), 0, 0});
  }
  Result<void> flush(std::chrono::milliseconds) override { return ok(); }
  size_t count() {
    std::lock_guard lk(mu);
    return published.size();
  }

  std::mutex mu;
  std::condition_variable cv;
  int fail_next = 0;
  std::vector<std::pair<std::string, Event>> published;
};

// A runtime driven by a script: `behave(event, attempt)` decides the outcome; when
// `hold` is set, invocations wait until the test releases them.
class FakeRuntime final : public Runtime {
 public:
  std::string_view kind() const override { return "fake"; }
  Result<void> start() override { return ok(); }
  void invoke(const Event& ev, InvokeCallback done) override {
    std::unique_lock lk(mu);
    ++running;
    max_running = std::max(max_running, running);
    calls.push_back({ev.id, ev.key, ev.attempt});
    running_keys.insert(ev.key);
    if (hold) {
      held.push_back({ev.id, ev.key, std::move(done), ev.attempt});
      cv.notify_all();
      return;
    }
    InvocationResult r = behave ? behave(ev) : InvocationResult{};
    --running;
    running_keys.erase(running_keys.find(ev.key));
    cv.notify_all();
    lk.unlock();
    done(std::move(r));
  }
  void stop(std::chrono::milliseconds) override {}
  PoolStats stats() const override { return {}; }

  // Completes held invocations in a shuffled order, checking no key runs twice.
  size_t release_all_shuffled(uint64_t seed) {
    std::unique_lock lk(mu);
    auto items = std::move(held);
    held.clear();
    std::shuffle(items.begin(), items.end(), std::mt19937_64(seed));
    for (auto& h : items) {
      --running;
      running_keys.erase(running_keys.find(h.key));
      lk.unlock();
      h.done(InvocationResult{});
      lk.lock();
    }
    return items.size();
  }

  struct Call {
    std::string id, key;
    uint32_t attempt;
  };
  struct Held {
    std::string id, key;
    InvokeCallback done;
    uint32_t attempt;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::function<InvocationResult(const Event&)> behave;
  bool hold = false;
  std::vector<Call> calls;
  std::vector<Held> held;
  std::multiset<std::string> running_keys;
  size_t running = 0, max_running = 0;
};

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
  Metrics metrics;
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
  auto rec = dlq::parse_record(ev);
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
  EXPECT_EQ(dlq::parse_record(fx.dlq.published[0].second).value().error_class, "rejected");
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

TEST(Dispatcher, FanOutCommitsOnlyWhenEveryFunctionFinished) {
  Metrics metrics;
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

TEST(Dispatcher, CountsOutcomesInMetrics) {
  Fixture fx;
  fx.rt.behave = [](const Event& e) {
    InvocationResult r;
    if (e.attempt == 1) r.outcome = Outcome::crash;
    return r;
  };
  fx.src.send(0, 0, "");
  ASSERT_TRUE(fx.d->drain(10s));
  auto text = fx.metrics.text();
  EXPECT_NE(text.find("sluice_invocations_total{function=\"f\",outcome=\"crash\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_invocations_total{function=\"f\",outcome=\"success\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("sluice_retries_total{function=\"f\"} 1"), std::string::npos);
  EXPECT_NE(text.find("sluice_events_received_total{broker=\"fake\",topic=\"in\"} 1"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice
