// scaling::LagLoop set-up and scaling::event_limit: what the loop lets the dispatcher
// run for a pool size. (The loop's 2 s tick runs in the engine e2e tests.)
#include "scaling/lag_loop.h"

#include <gtest/gtest.h>

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
