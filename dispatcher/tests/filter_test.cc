// Subscription filters in the dispatcher: an event a route's filter does not pass is
// finished for that function without an invocation, counted, and settled once every
// function it fans out to is done with it — in offset order, whatever order the
// filtered and invoked events of one partition finish in.
#include <gtest/gtest.h>

#include <map>

#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"
#include "tests/support/support.h"

namespace sluice::dispatcher::testing {
namespace {

using namespace std::chrono_literals;
using filter::Dialect;
using filter::SubscriptionFilter;

SubscriptionFilter keep_only() {
  return SubscriptionFilter::attributes(Dialect::exact, {{"type", "keep"}});
}

Event typed(int64_t offset, std::string type) {
  Event e;
  e.id = "e0-" + std::to_string(offset);
  e.source = "/test";
  e.type = std::move(type);
  e.broker = "fake";
  e.topic = "in";
  e.partition = 0;
  e.offset = offset;
  return e;
}

// Even offsets are "keep", odd ones "skip".
std::string type_at(int64_t o) { return o % 2 == 0 ? "keep" : "skip"; }

struct Fn {
  explicit Fn(std::string name) {
    cfg.name = std::move(name);
    cfg.concurrency = 4;
    cfg.dead_letter = {"fake", cfg.name + ".dlq"};
  }
  FunctionConfig cfg;
  FakeRuntime rt;
};

bool committed_reaches(FakeSource& src, int64_t next) {
  return wait_for(src.mu, src.cv, [&] {
    auto it = src.committed.find(0);
    return it != src.committed.end() && it->second == next;
  });
}

double filtered_count(metrics::Metrics& m, const std::string& fn) {
  const std::string needle = "sluice_events_filtered_total{function=\"" + fn + "\"} ";
  const std::string text = m.text();
  const size_t at = text.find(needle);
  return at == std::string::npos ? -1 : std::stod(text.substr(at + needle.size()));
}

// Each offset settled exactly once, with an ack.
void expect_each_acked_once(FakeSource& src, int64_t n) {
  std::lock_guard lk(src.mu);
  std::map<int64_t, int> seen;
  for (auto [offset, how] : src.settled) {
    EXPECT_EQ(how, Settle::ack) << offset;
    ++seen[offset];
  }
  EXPECT_EQ(seen.size(), static_cast<size_t>(n));
  for (auto [offset, times] : seen) EXPECT_EQ(times, 1) << offset;
}

TEST(DispatcherFilter, InterleavedFilteredEventsCommitInOrderExactlyOnce) {
  metrics::Metrics metrics;
  Fn f("f");
  f.rt.hold = true;
  FakeSource src;
  src.tr = SourceTraits{true, true};  // offsets and per-message acks: both are checked
  FakeSink dlq;
  Dispatcher d(metrics);
  d.add_function({&f.cfg, &f.rt, &dlq, nullptr});
  d.add_route(src, "f", Ordering::partition, RouteRole::subscription, RetryPath::lane,
              keep_only());
  d.start();
  ASSERT_TRUE(src.start(d));
  constexpr int64_t kEvents = 20;
  for (int64_t o = 0; o < kEvents; ++o) src.send_event(typed(o, type_at(o)));

  // Offset 0 runs; 1 (filtered) is finished but must not be committed past 0.
  ASSERT_TRUE(wait_for(f.rt.mu, f.rt.cv, [&] { return f.rt.held.size() == 1; }));
  ASSERT_TRUE(testsupport::eventually([&] { return filtered_count(metrics, "f") == kEvents / 2; }));
  EXPECT_EQ(src.committed_at(0), -1);
  // Each release of an even offset lets the commit pass it and the filtered odd one
  // after it.
  for (int64_t o = 0; o < kEvents; o += 2) {
    ASSERT_TRUE(wait_for(f.rt.mu, f.rt.cv, [&] { return f.rt.held.size() == 1; }));
    EXPECT_EQ(f.rt.held.front().id, "e0-" + std::to_string(o));
    f.rt.release_all_shuffled(0);
    ASSERT_TRUE(committed_reaches(src, o + 2)) << "after releasing " << o;
  }
  ASSERT_TRUE(d.drain(10s));
  EXPECT_EQ(src.committed_at(0), kEvents);
  ASSERT_EQ(f.rt.calls.size(), static_cast<size_t>(kEvents / 2));
  for (size_t i = 0; i < f.rt.calls.size(); ++i)
    EXPECT_EQ(f.rt.calls[i].id, "e0-" + std::to_string(2 * i));
  expect_each_acked_once(src, kEvents);
  EXPECT_EQ(filtered_count(metrics, "f"), kEvents / 2);
  EXPECT_EQ(d.stats().at(0).finished, static_cast<uint64_t>(kEvents / 2));
  d.stop();
}

TEST(DispatcherFilter, EventsNoFunctionTakesAreCommittedWithoutAnInvocation) {
  metrics::Metrics metrics;
  Fn f("f");
  FakeSource src;
  FakeSink dlq;
  Dispatcher d(metrics);
  d.add_function({&f.cfg, &f.rt, &dlq, nullptr});
  // An evaluation error (no `priority`: missingAttribute) counts as no match.
  auto expr = filter::compile("int(priority) > 3");
  ASSERT_TRUE(expr);
  d.add_route(src, "f", Ordering::partition, RouteRole::subscription, RetryPath::lane,
              SubscriptionFilter::sql(std::move(expr).value()));
  d.start();
  ASSERT_TRUE(src.start(d));
  for (int64_t o = 0; o < 10; ++o) src.send_event(typed(o, "any"));
  ASSERT_TRUE(committed_reaches(src, 10));
  ASSERT_TRUE(d.drain(10s));
  EXPECT_TRUE(f.rt.calls.empty());
  EXPECT_EQ(filtered_count(metrics, "f"), 10);
  EXPECT_EQ(d.held(), 0u);
  d.stop();
}

// One source feeding a filtered and an unfiltered function: the filtered one sees only
// what passes, the other everything, and nothing is committed while either still holds
// an event.
TEST(DispatcherFilter, FanOutToAFilteredAndAnUnfilteredFunction) {
  metrics::Metrics metrics;
  Fn a("a"), b("b");
  b.rt.hold = true;
  FakeSource src;
  FakeSink dlq;
  Dispatcher d(metrics);
  d.add_function({&a.cfg, &a.rt, &dlq, nullptr});
  d.add_function({&b.cfg, &b.rt, &dlq, nullptr});
  d.add_route(src, "a", Ordering::partition, RouteRole::subscription, RetryPath::lane,
              keep_only());
  d.add_route(src, "b", Ordering::partition);
  d.start();
  ASSERT_TRUE(src.start(d));
  constexpr int64_t kEvents = 10;
  for (int64_t o = 0; o < kEvents; ++o) src.send_event(typed(o, type_at(o)));
  ASSERT_TRUE(wait_for(a.rt.mu, a.rt.cv, [&] { return a.rt.calls.size() == kEvents / 2; }));
  ASSERT_TRUE(wait_for(b.rt.mu, b.rt.cv, [&] { return b.rt.held.size() == 1; }));
  EXPECT_EQ(src.committed_at(0), -1);  // b still holds offset 0
  for (int64_t o = 0; o < kEvents; ++o) {
    ASSERT_TRUE(wait_for(b.rt.mu, b.rt.cv, [&] { return b.rt.held.size() == 1; }));
    b.rt.release_all_shuffled(0);
    ASSERT_TRUE(committed_reaches(src, o + 1));
  }
  ASSERT_TRUE(d.drain(10s));
  EXPECT_EQ(b.rt.calls.size(), static_cast<size_t>(kEvents));
  for (size_t i = 0; i < a.rt.calls.size(); ++i)
    EXPECT_EQ(a.rt.calls[i].id, "e0-" + std::to_string(2 * i));
  EXPECT_EQ(filtered_count(metrics, "a"), kEvents / 2);
  EXPECT_EQ(filtered_count(metrics, "b"), 0);
  d.stop();
}

// The last route of a fan-out filtering the event out (it is not moved into a Task)
// and the first one taking it.
TEST(DispatcherFilter, LastRouteFilteredFirstRouteInvoked) {
  metrics::Metrics metrics;
  Fn a("a"), b("b");
  FakeSource src;
  FakeSink dlq;
  Dispatcher d(metrics);
  d.add_function({&a.cfg, &a.rt, &dlq, nullptr});
  d.add_function({&b.cfg, &b.rt, &dlq, nullptr});
  d.add_route(src, "a", Ordering::none);
  d.add_route(src, "b", Ordering::none, RouteRole::subscription, RetryPath::lane,
              SubscriptionFilter::negate(keep_only()));
  d.start();
  ASSERT_TRUE(src.start(d));
  for (int64_t o = 0; o < 6; ++o) src.send_event(typed(o, "keep"));
  ASSERT_TRUE(committed_reaches(src, 6));
  ASSERT_TRUE(d.drain(10s));
  EXPECT_EQ(a.rt.calls.size(), 6u);
  EXPECT_TRUE(b.rt.calls.empty());
  EXPECT_EQ(filtered_count(metrics, "b"), 6);
  d.stop();
}

TEST(DispatcherFilter, AFilterOnARetryRouteIsAProgrammingError) {
  metrics::Metrics metrics;
  Fn f("f");
  FakeSource src;
  FakeSink dlq;
  Dispatcher d(metrics);
  d.add_function({&f.cfg, &f.rt, &dlq, nullptr, &dlq, "f.retry"});
  EXPECT_THROW(d.add_route(src, "f", Ordering::none, RouteRole::retry, RetryPath::topic,
                           keep_only()),
               std::logic_error);
}

}  // namespace
}  // namespace sluice::dispatcher::testing
