// scaling::LagLoop set-up and scaling::event_limit: what the loop lets the dispatcher
// run for a pool size. (The loop's 2 s tick runs in the engine e2e tests.)
#include "scaling/lag_loop.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

namespace sluice::scaling::testing {
namespace {

TEST(EventLimit, OneEventPerWorkerIsCappedAtConcurrency) {  // exec, inproc
  EXPECT_EQ(event_limit(0, 1, 8), 0u);
  EXPECT_EQ(event_limit(3, 1, 8), 3u);
  EXPECT_EQ(event_limit(20, 1, 8), 8u);
}

TEST(EventLimit, AMultiplexingWorkerAllowsTheWholeConcurrency) {  // stdio, http
  EXPECT_EQ(event_limit(0, 8, 8), 0u);  // no worker holds every event
  EXPECT_EQ(event_limit(1, 8, 8), 8u);
  EXPECT_EQ(event_limit(4000000000u, 4000000000u, 8), 8u);  // no overflow
}

class IdleRuntime final : public Runtime {
 public:
  std::string_view kind() const override { return "idle"; }
  Result<void> start() override { return ok(); }
  void invoke(const Event&, InvokeCallback done) override { done({}); }
  void stop(std::chrono::milliseconds) override {}
  PoolStats stats() const override { return {}; }
};

uint32_t limit_of(const dispatcher::Dispatcher& d, const std::string& fn) {
  for (const dispatcher::FunctionStats& s : d.stats())
    if (s.name == fn) return s.limit;
  return UINT32_MAX;
}

TEST(LagLoop, AnAutoscaledPoolStartsAtItsMinAndAFixedOneAtConcurrency) {
  metrics::Metrics metrics;
  dispatcher::Dispatcher d(metrics);
  IdleRuntime rt;
  FunctionConfig fixed, scaled, multiplexed;
  fixed.name = "fixed";
  fixed.concurrency = 6;
  scaled.name = "scaled";
  scaled.concurrency = 6;
  scaled.workers = {true, 2, 0, 500, std::chrono::seconds(60)};
  multiplexed = scaled;
  multiplexed.name = "multiplexed";
  multiplexed.workers.min = 1;
  for (const FunctionConfig* fn : {&fixed, &scaled, &multiplexed}) d.add_function({fn, &rt, nullptr});
  LagLoop loop(metrics, d);
  ASSERT_TRUE(loop.add_function(fixed, rt, 1));
  ASSERT_TRUE(loop.add_function(scaled, rt, 1));
  ASSERT_TRUE(loop.add_function(multiplexed, rt, multiplexed.concurrency));
  d.start();
  EXPECT_FALSE(loop.autoscaled("fixed"));
  EXPECT_EQ(loop.desired("fixed"), 6u);
  EXPECT_EQ(limit_of(d, "fixed"), 6u);
  EXPECT_TRUE(loop.autoscaled("scaled"));
  EXPECT_EQ(loop.desired("scaled"), 2u);
  EXPECT_EQ(limit_of(d, "scaled"), 2u);  // one event per worker
  EXPECT_EQ(loop.desired("multiplexed"), 1u);
  EXPECT_EQ(limit_of(d, "multiplexed"), 6u);  // one worker takes them all
  loop.start();
  loop.stop();
  loop.stop();  // idempotent
  d.stop();
}

// A source far behind: 100000 events of lag on one partition.
class LaggingSource final : public Source {
 public:
  std::string_view broker() const override { return "fake"; }
  std::string_view topic() const override { return "in"; }
  std::string_view group() const override { return "g"; }
  SourceTraits traits() const override { return {}; }
  Result<void> start(SourceListener&) override { return ok(); }
  void stop() override {}
  void pause(int32_t) override {}
  void resume(int32_t) override {}
  void commit(int32_t, int64_t) override {}
  Result<std::vector<PartitionLag>> lag() override {
    PartitionLag p;
    p.broker = "fake";
    p.topic = "in";
    p.group = "g";
    p.committed = 0;
    p.end = p.lag = 100000;
    return std::vector<PartitionLag>{p};
  }
};

// Autoscaled functions, all fed by one LaggingSource, after the loop's first tick.
struct FirstTick {
  explicit FirstTick(std::vector<const FunctionConfig*> fns) {
    for (const FunctionConfig* fn : fns) {
      d.add_function({fn, &rt, nullptr});
      d.add_route(src, fn->name, Ordering::none);
      EXPECT_TRUE(loop.add_function(*fn, rt, 1));
      loop.add_route(src, fn->name, Ordering::none);
    }
    d.start();
    loop.start();  // ticks at once
    auto ticked = [&] {
      return std::all_of(fns.begin(), fns.end(), [&](auto* fn) { return gauge(fn->name) != 0; });
    };
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!ticked() && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    loop.stop();
  }
  ~FirstTick() { d.stop(); }
  double gauge(const std::string& fn) { return metrics.workers_desired.Add({{"function", fn}}).Value(); }

  metrics::Metrics metrics;
  dispatcher::Dispatcher d{metrics};
  IdleRuntime rt;
  LaggingSource src;
  LagLoop loop{metrics, d};
};

// The lag of a paused function grows by design: it stays at its `min`, while the same
// lag scales a running one up.
TEST(LagLoop, APausedFunctionIsKeptAtItsMinWhateverItsLag) {
  FunctionConfig paused, running;
  paused.name = "paused";
  paused.concurrency = 6;
  paused.workers = {true, 1, 0, 500, std::chrono::seconds(60)};
  paused.paused = true;
  running = paused;
  running.name = "running";
  running.paused = false;
  FirstTick t({&paused, &running});
  EXPECT_EQ(t.gauge("running"), 6);
  EXPECT_EQ(t.gauge("paused"), 1);
  EXPECT_EQ(t.loop.desired("paused"), 1u);
  EXPECT_EQ(limit_of(t.d, "paused"), 1u);
}

// The lag of a throttled function grows by design too: with a function-wide rate_limit
// it goes no higher than the rate keeps busy (here the burst: nothing has run yet),
// while `by: key` (no function-wide rate) and no limit scale up on the same lag.
TEST(LagLoop, AThrottledFunctionIsKeptAtWhatItsRateKeepsBusy) {
  FunctionConfig throttled, by_key, running;
  throttled.name = "throttled";
  throttled.concurrency = 6;
  throttled.workers = {true, 1, 0, 500, std::chrono::seconds(60)};
  throttled.rate_limit = RateLimitConfig{2, 2, false};
  by_key = throttled;
  by_key.name = "by-key";
  by_key.rate_limit->by_key = true;
  running = throttled;
  running.name = "running";
  running.rate_limit.reset();
  FirstTick t({&throttled, &by_key, &running});
  EXPECT_EQ(t.gauge("running"), 6);
  EXPECT_EQ(t.gauge("by-key"), 6);
  EXPECT_EQ(t.gauge("throttled"), 2);
  EXPECT_EQ(t.loop.desired("throttled"), 2u);
  EXPECT_EQ(limit_of(t.d, "throttled"), 2u);
}

TEST(LagLoop, AWorkersStanzaTheScalerRefusesIsAnError) {
  metrics::Metrics metrics;
  dispatcher::Dispatcher d(metrics);
  IdleRuntime rt;
  FunctionConfig fn;
  fn.name = "f";
  fn.workers = {true, 0, 0, 0, std::chrono::seconds(60)};  // target_lag 0
  d.add_function({&fn, &rt, nullptr});
  LagLoop loop(metrics, d);
  auto r = loop.add_function(fn, rt, 1);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("function 'f': workers: workers.target_lag"), std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace sluice::scaling::testing
