// CallbackSink against real receivers on 127.0.0.1: destinations refused by default,
// hung receivers, the per-attempt deadline, bounded queue, retries and stop().
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <mutex>
#include <vector>

#include "broker-adapters/http/callback_sink.h"
#include "tests/support/http_receiver.h"
#include "tests/support/support.h"

namespace sluice::http::testing {
namespace {

using namespace std::chrono_literals;
using testsupport::eventually;
using testsupport::HttpReceiver;
using Clock = std::chrono::steady_clock;

// What the sink reported for each callback, in completion order. Declared before the
// sink in each test: the sink completes what it still holds when it is destroyed.
class Results {
 public:
  PublishCallback callback() {
    return [this](Result<PublishAck> r) {
      std::lock_guard lk(mu_);
      got_.push_back(r ? ok() : Result<void>(r.error()));
    };
  }
  size_t size() const {
    std::lock_guard lk(mu_);
    return got_.size();
  }
  std::vector<Result<void>> all() const {
    std::lock_guard lk(mu_);
    return got_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Result<void>> got_;
};

Event callback_event(const std::string& id, const std::string& body = "result") {
  Event ev;
  ev.id = id;
  ev.data = body;
  ev.datacontenttype = "text/plain";
  ev.set_header("X-Call-Id", id);
  ev.set_header("X-Function-Status", "200");
  return ev;
}

CallbackSink::Options local_allowed() {
  CallbackSink::Options o;
  o.allow.push_back(parse_callback_allow("127.0.0.1/32").value());
  o.retry.initial = 5ms;
  o.retry.max = 20ms;
  return o;
}

double count(metrics::Metrics& m, const std::string& outcome) {
  return m.callbacks.Add({{"outcome", outcome}}).Value();
}

TEST(CallbackSink, DeliversToAnAllowedReceiver) {
  metrics::Metrics m;
  HttpReceiver rx;
  Results res;
  CallbackSink sink(&m, local_allowed());
  sink.publish(rx.url("/done?x=1"), callback_event("e1", "HELLO"), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }));
  EXPECT_TRUE(res.all()[0]);
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target(), "/done?x=1");
  EXPECT_EQ(got[0].body(), "HELLO");
  EXPECT_EQ(got[0]["X-Call-Id"], "e1");
  EXPECT_EQ(got[0]["Content-Type"], "text/plain");
  EXPECT_EQ(got[0]["Host"], "127.0.0.1:" + std::to_string(rx.port()));
  EXPECT_EQ(count(m, "delivered"), 1);
  EXPECT_TRUE(sink.flush(1s));
}

// Nothing opened: every spelling of loopback, and a name that resolves there, is
// refused before any connection; the callback completes (it will never be deliverable).
TEST(CallbackSink, RefusedDestinationsAreCountedAndNeverCalled) {
  metrics::Metrics m;
  HttpReceiver rx;
  Results res;
  CallbackSink sink(&m, CallbackSink::Options{});
  const std::string port = std::to_string(rx.port());
  const std::vector<std::string> urls = {
      "http://127.0.0.1:" + port + "/",       "http://localhost:" + port + "/",
      "http://[::ffff:127.0.0.1]:" + port + "/", "http://0x7f000001:" + port + "/",
      "http://017700000001:" + port + "/",    "http://127.1:" + port + "/",
      "http://2130706433:" + port + "/"};
  for (size_t i = 0; i < urls.size(); ++i)
    sink.publish(urls[i], callback_event("e" + std::to_string(i)), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == urls.size(); }));
  for (const auto& r : res.all()) EXPECT_TRUE(r);
  EXPECT_EQ(count(m, "refused"), static_cast<double>(urls.size()));
  EXPECT_EQ(count(m, "delivered"), 0);
  EXPECT_EQ(count(m, "failed"), 0);
  EXPECT_EQ(rx.connections(), 0u);
}

TEST(CallbackSink, AnAllowedHostNameIsCalled) {
  metrics::Metrics m;
  HttpReceiver rx;
  CallbackSink::Options o;
  o.allow.push_back(parse_callback_allow("localhost:" + std::to_string(rx.port())).value());
  Results res;
  CallbackSink sink(&m, o);
  sink.publish("http://localhost:" + std::to_string(rx.port()) + "/", callback_event("e1"),
               res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }));
  EXPECT_EQ(count(m, "delivered"), 1) << "refused: " << count(m, "refused");
  EXPECT_EQ(rx.got().size(), 1u);
}

// Two receivers that accept and never answer hold two attempts; a third callback to a
// healthy receiver goes through at once (the deadline is far away).
TEST(CallbackSink, HungReceiversDoNotBlockAHealthyOne) {
  metrics::Metrics m;
  HttpReceiver hung1(HttpReceiver::Mode::hang), hung2(HttpReceiver::Mode::hang), healthy;
  auto o = local_allowed();
  o.timeout = 60s;
  Results stuck, res;
  CallbackSink sink(&m, o);
  sink.publish(hung1.url(), callback_event("h1"), stuck.callback());
  sink.publish(hung2.url(), callback_event("h2"), stuck.callback());
  ASSERT_TRUE(eventually([&] { return hung1.connections() == 1 && hung2.connections() == 1; }, 10s));
  sink.publish(healthy.url(), callback_event("ok"), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }, 10s));
  EXPECT_TRUE(res.all()[0]);
  EXPECT_EQ(stuck.size(), 0u);
  // And stop() does not wait for them.
  const auto t0 = Clock::now();
  sink.stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  ASSERT_EQ(stuck.size(), 2u);
  for (const auto& r : stuck.all()) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::closed);
  }
}

// The deadline covers the whole attempt: a receiver that never answers, and one that
// keeps sending a header that never ends, are both cut off after `timeout`.
TEST(CallbackSink, ThePerAttemptDeadlineHolds) {
  metrics::Metrics m;
  HttpReceiver hung(HttpReceiver::Mode::hang), trickle(HttpReceiver::Mode::trickle);
  auto o = local_allowed();
  o.timeout = 400ms;
  o.retry.max_attempts = 1;
  Results res;
  CallbackSink sink(&m, o);
  const auto t0 = Clock::now();
  sink.publish(hung.url(), callback_event("h"), res.callback());
  sink.publish(trickle.url(), callback_event("t"), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 2; }, 20s));
  const auto took = Clock::now() - t0;
  EXPECT_GE(took, 400ms);
  EXPECT_LT(took, 5s);
  for (const auto& r : res.all()) EXPECT_TRUE(r);  // given up: reported done
  EXPECT_EQ(count(m, "failed"), 2);
  EXPECT_EQ(count(m, "gave_up"), 2);
  EXPECT_EQ(trickle.got().size(), 1u);  // it did get the request
}

TEST(CallbackSink, RetriesWithBackoffUntilDelivered) {
  metrics::Metrics m;
  HttpReceiver rx;
  rx.set_status(503);
  Results res;
  CallbackSink sink(&m, local_allowed());
  sink.publish(rx.url(), callback_event("e1"), res.callback());
  ASSERT_TRUE(eventually([&] { return rx.got().size() >= 2; }));
  EXPECT_EQ(res.size(), 0u);
  rx.set_status(204);
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }));
  EXPECT_TRUE(res.all()[0]);
  EXPECT_EQ(count(m, "delivered"), 1);
  EXPECT_GE(count(m, "failed"), 2);
}

TEST(CallbackSink, GivesUpAfterMaxAttempts) {
  metrics::Metrics m;
  HttpReceiver rx;
  rx.set_status(500);
  auto o = local_allowed();
  o.retry.max_attempts = 3;
  Results res;
  CallbackSink sink(&m, o);
  sink.publish(rx.url(), callback_event("e1"), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }));
  EXPECT_TRUE(res.all()[0]);
  EXPECT_EQ(rx.got().size(), 3u);
  EXPECT_EQ(count(m, "failed"), 3);
  EXPECT_EQ(count(m, "gave_up"), 1);
}

// A full queue refuses at once with a retriable error (the dispatcher then holds the
// event back); nothing is dropped.
TEST(CallbackSink, AFullQueueRefusesAtOnceWithARetriableError) {
  metrics::Metrics m;
  HttpReceiver hung(HttpReceiver::Mode::hang);
  auto o = local_allowed();
  o.timeout = 60s;
  o.max_queue = 2;
  Results held, refused;
  CallbackSink sink(&m, o);
  sink.publish(hung.url(), callback_event("a"), held.callback());
  sink.publish(hung.url(), callback_event("b"), held.callback());
  sink.publish(hung.url(), callback_event("c"), refused.callback());
  ASSERT_EQ(refused.size(), 1u);  // at once, inside publish()
  const auto r = refused.all()[0];
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::overloaded);
  EXPECT_TRUE(r.error().retriable);
  EXPECT_EQ(count(m, "rejected_full"), 1);
  EXPECT_EQ(sink.held(), 2u);
  EXPECT_EQ(held.size(), 0u);
  sink.stop();
  EXPECT_EQ(held.size(), 2u);
  EXPECT_EQ(sink.held(), 0u);
}

// Per host: at most `per_host` attempts to one host:port; another host still gets its turn.
TEST(CallbackSink, PerHostConcurrencyIsBounded) {
  metrics::Metrics m;
  HttpReceiver hung(HttpReceiver::Mode::hang), healthy;
  auto o = local_allowed();
  o.timeout = 60s;
  o.per_host = 2;
  o.concurrency = 4;
  Results stuck, res;
  CallbackSink sink(&m, o);
  for (int i = 0; i < 4; ++i) sink.publish(hung.url(), callback_event("h"), stuck.callback());
  ASSERT_TRUE(eventually([&] { return hung.connections() == 2; }, 10s));
  sink.publish(healthy.url(), callback_event("ok"), res.callback());
  ASSERT_TRUE(eventually([&] { return res.size() == 1; }, 10s));
  EXPECT_EQ(hung.connections(), 2u);
}

TEST(CallbackSink, StopReturnsAtOnceWithEverythingInFlightAndPublishAfterStopFails) {
  metrics::Metrics m;
  std::vector<std::unique_ptr<HttpReceiver>> hung;
  for (int i = 0; i < 4; ++i) hung.push_back(std::make_unique<HttpReceiver>(HttpReceiver::Mode::hang));
  HttpReceiver failing;
  failing.set_status(500);
  auto o = local_allowed();
  o.timeout = 60s;
  o.retry.initial = 60s;  // its retry waits in a backoff timer
  o.retry.max = 60s;
  Results res;
  CallbackSink sink(&m, o);
  for (auto& h : hung) sink.publish(h->url(), callback_event("h"), res.callback());
  sink.publish(failing.url(), callback_event("f"), res.callback());
  ASSERT_TRUE(eventually([&] {
    size_t n = 0;
    for (auto& h : hung) n += h->connections();
    return n == 4 && count(m, "failed") == 1;
  }, 10s));
  const auto t0 = Clock::now();
  sink.stop();
  EXPECT_LT(Clock::now() - t0, 1s);
  ASSERT_EQ(res.size(), 5u);
  for (const auto& r : res.all()) {
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, Errc::closed);
  }
  Results late;
  sink.publish(failing.url(), callback_event("late"), late.callback());
  ASSERT_EQ(late.size(), 1u);
  EXPECT_FALSE(late.all()[0]);
}

}  // namespace
}  // namespace sluice::http::testing
