// Event age (max_age, on_expired) and crash quarantine (retry.max_crashes) in the
// dispatcher, against the doubles of fakes.h and an injected wall clock.
#include <gtest/gtest.h>

#include <atomic>

#include "dispatcher/age.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/retry_topic.h"
#include "dispatcher/tests/fakes.h"
#include "dlq/record.h"

namespace sluice::dispatcher::testing {
namespace {

using namespace std::chrono_literals;

constexpr int64_t kNow = 1'800'000'000'000;  // the injected clock's start (unix ms)

struct AgeFixture {
  // `setup` adjusts the function's config before the dispatcher starts.
  explicit AgeFixture(const std::function<void(FunctionConfig&)>& setup,
                      Ordering ordering = Ordering::partition,
                      RetryPath retry = RetryPath::lane) {
    fn.name = "f";
    fn.concurrency = 4;
    fn.retry.max_attempts = 5;
    fn.retry.initial = 1ms;
    fn.retry.max = 2ms;
    fn.dead_letter = {"fake", "f.dlq"};
    setup(fn);
    DispatcherOptions opts;
    opts.publish_retry_initial = 1ms;
    opts.publish_retry_max = 2ms;
    opts.seed = 1;
    opts.wall_clock = [this] { return now.load(); };
    opts.control_keys = &keys;
    d = std::make_unique<Dispatcher>(metrics, opts);
    FunctionBinding b{&fn, &rt, &dlq, nullptr};
    if (retry == RetryPath::topic) {  // a retry topic, read back through retry_src
      b.retry_sink = &retry_sink;
      b.retry_topic = "f.retry";
      retry_src.tr = {true, false};
    }
    d->add_function(b);
    d->add_route(src, "f", ordering, RouteRole::subscription, retry);
    if (retry == RetryPath::topic)
      d->add_route(retry_src, "f", Ordering::none, RouteRole::retry, RetryPath::topic);
    d->start();
    EXPECT_TRUE(src.start(*d));
    if (retry == RetryPath::topic) {
      EXPECT_TRUE(retry_src.start(*d));
    }
  }
  // Feeds the n-th record published to the retry topic back through the retry source.
  void loop_back(size_t n, int64_t offset) {
    Event e;
    {
      std::lock_guard lk(retry_sink.mu);
      e = retry_sink.published.at(n).second;
    }
    e.topic = "f.retry";
    e.partition = 0;
    e.offset = offset;
    retry_src.send_event(std::move(e));
  }
  ~AgeFixture() {
    d->drain(5s);
    d->stop();
  }
  Event event(int64_t offset, int64_t made_ms) {
    Event e;
    e.id = "e" + std::to_string(offset);
    e.broker = "fake";
    e.topic = "in";
    e.partition = 0;
    e.offset = offset;
    if (made_ms) e.time = format_rfc3339(made_ms);
    return e;
  }
  std::vector<std::string> invoked() {
    std::lock_guard lk(rt.mu);
    std::vector<std::string> ids;
    for (auto& c : rt.calls) ids.push_back(c.id);
    return ids;
  }
  dlq::Record dead_letter(size_t i) {
    std::lock_guard lk(dlq.mu);
    auto r = dlq::parse_record(dlq.published.at(i).second, nullptr);
    EXPECT_TRUE(r) << r.error().message;
    return r ? r.value() : dlq::Record{};
  }
  double metric(const std::string& name, const std::string& labels) {
    const std::string text = metrics.text();
    const std::string key = name + "{" + labels + "} ";
    auto at = text.find(key);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + key.size()));
  }

  std::atomic<int64_t> now{kNow};
  seal::Keyring keys = seal::Keyring::random();
  metrics::Metrics metrics;
  FunctionConfig fn;
  FakeSource src, retry_src;
  FakeSink dlq, retry_sink;
  FakeRuntime rt;
  std::unique_ptr<Dispatcher> d;
};

TEST(Age, RulesUseTimeElseTheBrokerTimestamp) {
  Event e;
  EXPECT_FALSE(age::origin_ms(e));
  e.broker_timestamp_ms = 1000;
  EXPECT_EQ(age::origin_ms(e), 1000);
  e.time = format_rfc3339(5000);
  EXPECT_EQ(age::origin_ms(e), 5000);
  e.time = "not a time";
  EXPECT_EQ(age::origin_ms(e), 1000);
  EXPECT_FALSE(age::expired(std::nullopt, 1ms, kNow));
  EXPECT_FALSE(age::expired(kNow - 1000, 0ms, kNow));  // no limit
  EXPECT_FALSE(age::expired(kNow - 1000, 1000ms, kNow));
  EXPECT_TRUE(age::expired(kNow - 1001, 1000ms, kNow));
  EXPECT_EQ(age::age_ms(kNow + 5, kNow), 0);  // from the future: age 0
  EXPECT_EQ(age::age_ms(INT64_MIN, kNow), INT64_MAX);
  EXPECT_EQ(age::describe(3'723'000, 15min), "age 1h2m3s > max_age 15m");
}

TEST(DispatcherAge, OldEventIsDeadLetteredAsExpiredOnItsFirstTurnWithoutAnInvocation) {
  AgeFixture fx([](FunctionConfig& f) { f.max_age = 15min; });
  fx.src.send_event(fx.event(0, kNow - 2 * 3600'000));  // two hours old
  fx.src.send_event(fx.event(1, kNow - 60'000));        // one minute old
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked(), std::vector<std::string>{"e1"});
  ASSERT_EQ(fx.dlq.count(), 1u);
  const dlq::Record r = fx.dead_letter(0);
  EXPECT_EQ(r.error_class, "expired");
  EXPECT_EQ(r.error_message, "age 2h > max_age 15m");
  EXPECT_EQ(r.attempts, 0u);
  EXPECT_EQ(fx.src.committed_at(0), 2);
  EXPECT_EQ(fx.metric("sluice_dead_letters_total", "function=\"f\",reason=\"expired\""), 1);
  EXPECT_EQ(fx.metric("sluice_events_expired_total", "function=\"f\""), 1);
}

TEST(DispatcherAge, WithoutTimeTheBrokerTimestampCounts) {
  AgeFixture fx([](FunctionConfig& f) { f.max_age = 1s; });
  Event e = fx.event(0, 0);
  e.broker_timestamp_ms = kNow - 5000;
  fx.src.send_event(std::move(e));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_TRUE(fx.invoked().empty());
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "expired");
}

TEST(DispatcherAge, LaneRetryThatFallsDueAfterMaxAgeIsExpiredNotInvoked) {
  AgeFixture fx([](FunctionConfig& f) { f.max_age = 15min; });
  fx.rt.behave = [&](const Event&) {
    fx.now += 20 * 60'000;  // the clock passes max_age before the retry falls due
    return InvocationResult{Outcome::error, "", "", "boom", {}, {}};
  };
  fx.src.send_event(fx.event(0, kNow - 1000));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 1u);  // the first attempt only
  ASSERT_EQ(fx.dlq.count(), 1u);
  const dlq::Record r = fx.dead_letter(0);
  EXPECT_EQ(r.error_class, "expired");
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(fx.src.committed_at(0), 1);
}

TEST(DispatcherAge, RetryTopicRecordThatFallsDueAfterMaxAgeIsExpired) {
  AgeFixture fx([](FunctionConfig& f) { f.max_age = 15min; }, Ordering::partition,
                RetryPath::topic);
  fx.rt.behave = [](const Event&) { return InvocationResult{Outcome::error, "", "", "boom", {}, {}}; };
  fx.src.send_event(fx.event(0, kNow - 1000));
  ASSERT_TRUE(wait_for(fx.retry_sink.mu, fx.retry_sink.cv,
                       [&] { return fx.retry_sink.published.size() == 1; }));
  fx.now += 20 * 60'000;  // read back and due only after max_age
  fx.loop_back(0, 0);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 1u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  const dlq::Record r = fx.dead_letter(0);
  EXPECT_EQ(r.error_class, "expired");
  EXPECT_EQ(r.attempts, 1u);
  EXPECT_EQ(r.original_topic, "in");
  EXPECT_EQ(fx.retry_src.committed_at(0), 1);
}

TEST(DispatcherAge, RedeliveryThatComesBackAfterMaxAgeIsExpired) {
  AgeFixture fx([](FunctionConfig& f) { f.max_age = 15min; }, Ordering::partition,
                RetryPath::redeliver);
  fx.src.send_event(fx.event(0, kNow - 20 * 60'000), /*redeliveries=*/1);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_TRUE(fx.invoked().empty());
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "expired");
  std::lock_guard lk(fx.src.mu);
  ASSERT_EQ(fx.src.settled.size(), 1u);
  EXPECT_EQ(fx.src.settled[0].second, Settle::term);
}

TEST(DispatcherAge, OnExpiredDropCommitsAndCountsWithoutADeadLetter) {
  AgeFixture fx([](FunctionConfig& f) {
    f.max_age = 1min;
    f.on_expired = OnExpired::drop;
  });
  for (int64_t o = 0; o < 4; ++o) fx.src.send_event(fx.event(o, o % 2 ? kNow : kNow - 3600'000));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked(), (std::vector<std::string>{"e1", "e3"}));
  EXPECT_EQ(fx.dlq.count(), 0u);
  EXPECT_EQ(fx.src.committed_at(0), 4);
  EXPECT_EQ(fx.metric("sluice_events_expired_total", "function=\"f\""), 2);
}

TEST(DispatcherAge, AgeIsObservedWhenAnInvocationStarts) {
  AgeFixture fx([](FunctionConfig&) {});  // no max_age: observed all the same
  fx.src.send_event(fx.event(0, kNow - 30'000));
  fx.src.send_event(fx.event(1, 0));  // no time, no timestamp: not observed
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 2u);
  EXPECT_EQ(fx.metric("sluice_event_age_seconds_count", "function=\"f\""), 1);
  EXPECT_EQ(fx.metric("sluice_event_age_seconds_sum", "function=\"f\""), 30);
}

TEST(DispatcherCrash, CrashingEventIsDeadLetteredAfterMaxCrashesWhileOthersFlow) {
  AgeFixture fx([](FunctionConfig& f) { f.retry.max_crashes = 2; }, Ordering::none);
  fx.rt.behave = [](const Event& e) {
    if (e.id == "e3") return InvocationResult{Outcome::crash, "", "", "worker died", {}, {}};
    return InvocationResult{};
  };
  for (int64_t o = 0; o < 10; ++o) fx.src.send_event(fx.event(o, kNow));
  ASSERT_TRUE(fx.d->drain(10s));
  const auto ids = fx.invoked();
  EXPECT_EQ(std::count(ids.begin(), ids.end(), "e3"), 2);  // not max_attempts (5)
  EXPECT_EQ(ids.size(), 11u);                              // the 9 others once each
  ASSERT_EQ(fx.dlq.count(), 1u);
  const dlq::Record r = fx.dead_letter(0);
  EXPECT_EQ(r.error_class, "crash");
  EXPECT_EQ(r.attempts, 2u);
  EXPECT_EQ(fx.src.committed_at(0), 10);
  EXPECT_EQ(fx.metric("sluice_dead_letters_total", "function=\"f\",reason=\"crash\""), 1);
}

TEST(DispatcherCrash, OtherFailuresDoNotCountAsCrashes) {
  AgeFixture fx([](FunctionConfig& f) { f.retry.max_crashes = 2; });
  int n = 0;
  fx.rt.behave = [&](const Event&) {
    // crash, error, timeout, crash: the second crash comes on the fourth attempt
    const Outcome o[] = {Outcome::crash, Outcome::error, Outcome::timeout, Outcome::crash};
    return InvocationResult{o[n++ % 4], "", "", "x", {}, {}};
  };
  fx.src.send_event(fx.event(0, kNow));
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 4u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "crash");
}

// The broker says the event was handed out before and never settled (the engine died
// holding it): that many crashes are counted before it runs.
TEST(DispatcherCrash, UnsettledBrokerDeliveriesQuarantineBeforeAnInvocation) {
  AgeFixture fx([](FunctionConfig& f) { f.retry.max_crashes = 2; });
  auto send = [&](int64_t offset, uint32_t unsettled) {
    std::vector<Delivery> batch;
    batch.emplace_back(fx.event(offset, kNow), &fx.src, DeliveryTag{0, offset, 0});
    batch.back().unsettled = unsettled;
    fx.src.listener->on_deliveries(fx.src, std::move(batch));
  };
  send(0, 1);  // one crash so far: runs
  send(1, 2);  // two: quarantined
  send(2, 0);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked(), (std::vector<std::string>{"e0", "e2"}));
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "crash");
  EXPECT_EQ(fx.src.committed_at(0), 3);
}

// A crash count goes on across a retry topic record.
TEST(DispatcherCrash, CrashCountCarriesAcrossARetryTopic) {
  AgeFixture fx([](FunctionConfig& f) { f.retry.max_crashes = 2; }, Ordering::partition,
                RetryPath::topic);
  fx.rt.behave = [](const Event&) {
    return InvocationResult{Outcome::crash, "", "", "worker died", {}, {}};
  };
  fx.src.send_event(fx.event(0, kNow));
  ASSERT_TRUE(wait_for(fx.retry_sink.mu, fx.retry_sink.cv,
                       [&] { return fx.retry_sink.published.size() == 1; }));
  fx.loop_back(0, 0);
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 2u);
  EXPECT_EQ(fx.retry_sink.count(), 1u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "crash");
}

// A crash count goes on across a redelivery by nack (RetryPath::redeliver).
TEST(DispatcherCrash, CrashCountCarriesAcrossARedelivery) {
  AgeFixture fx([](FunctionConfig& f) { f.retry.max_crashes = 2; }, Ordering::partition,
                RetryPath::redeliver);
  fx.rt.behave = [](const Event&) {
    return InvocationResult{Outcome::crash, "", "", "worker died", {}, {}};
  };
  fx.src.send_event(fx.event(0, kNow));
  ASSERT_TRUE(wait_for(fx.src.mu, fx.src.cv, [&] { return fx.src.settled.size() == 1; }));
  EXPECT_EQ(fx.src.settled[0].second, Settle::nack);
  fx.src.send_event(fx.event(0, kNow), /*redeliveries=*/1);  // the broker redelivers it
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked().size(), 2u);
  ASSERT_EQ(fx.dlq.count(), 1u);
  EXPECT_EQ(fx.dead_letter(0).error_class, "crash");
}

// On a route that retries by nack, the broker's redeliveries are sluice's own retries
// (attempts), not crashes; but one that comes back with every attempt spent was held
// by an engine that died.
TEST(DispatcherCrash, RedeliveringRouteCountsRedeliveriesAsAttemptsNotCrashes) {
  AgeFixture fx([](FunctionConfig& f) {
    f.retry.max_crashes = 2;
    f.retry.max_attempts = 4;
  }, Ordering::partition, RetryPath::redeliver);
  auto send = [&](int64_t offset, uint32_t redeliveries) {
    std::vector<Delivery> batch;
    batch.emplace_back(fx.event(offset, kNow), &fx.src, DeliveryTag{0, offset, 0});
    batch.back().redeliveries = redeliveries;
    batch.back().unsettled = redeliveries;  // what JetStream reports
    fx.src.listener->on_deliveries(fx.src, std::move(batch));
  };
  send(0, 3);  // three nack retries before: the fourth attempt runs
  send(1, 4);  // all four spent: the engine died holding it
  ASSERT_TRUE(fx.d->drain(10s));
  EXPECT_EQ(fx.invoked(), std::vector<std::string>{"e0"});
  ASSERT_EQ(fx.dlq.count(), 1u);
  const dlq::Record r = fx.dead_letter(0);
  EXPECT_EQ(r.event.id, "e1");
  EXPECT_EQ(r.error_class, "crash");
}

}  // namespace
}  // namespace sluice::dispatcher::testing
