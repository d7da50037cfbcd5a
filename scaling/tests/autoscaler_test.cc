// The autoscaler on synthetic lag series, with a manual clock ticking every 2 s like
// the engine's lag loop.
#include "scaling/autoscaler.h"

#include <gtest/gtest.h>

#include <random>

namespace sluice::scaling::testing {
namespace {

using namespace std::chrono_literals;

constexpr auto kTick = 2s;

PartitionLag part(int32_t partition, int64_t lag, int64_t committed = 0,
                  std::optional<double> seconds = std::nullopt) {
  PartitionLag p;
  p.broker = "local";
  p.topic = "orders";
  p.group = "sluice";
  p.partition = partition;
  p.committed = committed;
  p.end = committed + std::max<int64_t>(lag, 0);
  p.lag = lag;
  p.lag_seconds = seconds;
  return p;
}

SourceReading known(std::vector<PartitionLag> parts, Ordering o = Ordering::none) {
  SourceReading r;
  r.ok = true;
  r.ordering = o;
  r.partitions = std::move(parts);
  return r;
}

SourceReading failed(std::string why = "broker unreachable") {
  SourceReading r;
  r.error = std::move(why);
  return r;
}

ScalerConfig config(uint32_t min, uint32_t max, uint64_t target = 100) {
  ScalerConfig c;
  c.min = min;
  c.max = max;
  c.target_lag = target;
  c.idle_after = 20s;
  c.stuck_samples = 5;  // the windows keep their defaults (20 s smoothing, 30 s scale-down)
  return c;
}

// Drives one autoscaler: each step moves the clock by one tick, feeds the observation,
// and pretends the pool follows the decision at once.
class Series {
 public:
  explicit Series(ScalerConfig c) : scaler_(c, clock_) {}

  Decision step(std::vector<SourceReading> sources, uint64_t inflight = 0, double busy = 0,
                double throughput = 0, uint64_t invocations = 0, double invocation_seconds = 0) {
    clock_.advance(kTick);
    Observation o;
    o.sources = std::move(sources);
    o.inflight = inflight;
    o.busy = busy;
    o.throughput = throughput;
    o.workers = workers_;
    o.invocations = invocations;
    o.invocation_seconds = invocation_seconds;
    Decision d = scaler_.tick(o);
    workers_ = d.desired;
    history_.push_back(d.desired);
    return d;
  }
  // One partition making progress (its committed offset moves every tick).
  Decision lag(int64_t total, uint64_t inflight = 0, double busy = 0, double throughput = 0) {
    committed_ += 10;
    return step({known({part(0, total, committed_)})}, inflight, busy, throughput);
  }

  // A backlog that keeps growing (a throttled function) while `ended` invocations of
  // `seconds_each` end per tick, every worker busy.
  Decision throttled(int64_t total, uint64_t ended, double seconds_each) {
    committed_ += static_cast<int64_t>(ended);
    return step({known({part(0, total, committed_)})}, workers_, workers_, ended / 2.0, ended,
                static_cast<double>(ended) * seconds_each);
  }

  uint32_t workers() const { return workers_; }
  const std::vector<uint32_t>& history() const { return history_; }
  Autoscaler& scaler() { return scaler_; }
  ManualClock& clock() { return clock_; }

 private:
  ManualClock clock_;
  Autoscaler scaler_;
  uint32_t workers_ = 0;
  int64_t committed_ = 0;
  std::vector<uint32_t> history_;
};

TEST(ScalerConfigTest, FromWorkersConfig) {
  WorkersConfig w;
  w.min = 1;
  w.max = 0;
  w.target_lag = 250;
  w.idle_after = 5s;
  auto c = ScalerConfig::from(w, 6);
  ASSERT_TRUE(c) << c.error().message;
  EXPECT_EQ(c.value().max, 6u);  // max 0 = concurrency
  EXPECT_EQ(c.value().min, 1u);
  EXPECT_EQ(c.value().target_lag, 250u);
  EXPECT_EQ(c.value().idle_after, 5s);
}

TEST(ScalerConfigTest, RejectsFiguresThatCannotWork) {
  WorkersConfig w;
  w.target_lag = 0;
  auto c = ScalerConfig::from(w, 4);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("target_lag"), std::string::npos);

  w.target_lag = 10;
  w.min = 5;
  w.max = 2;
  c = ScalerConfig::from(w, 4);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("workers.min"), std::string::npos);

  w.min = 0;
  w.max = 0;
  c = ScalerConfig::from(w, 0);
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("workers.max"), std::string::npos);

  ScalerConfig s = config(0, 4);
  s.stuck_samples = 0;
  EXPECT_FALSE(s.check());
  s = config(0, 4);
  s.smoothing_window = 0s;
  EXPECT_FALSE(s.check());
}

TEST(ScalerConfigTest, AFunctionWideRateLimitSetsTheRateCeiling) {
  WorkersConfig w;
  auto c = ScalerConfig::from(w, 8, RateLimitConfig{2.5, 3, false});
  ASSERT_TRUE(c) << c.error().message;
  ASSERT_TRUE(c.value().rate_per_second);
  EXPECT_DOUBLE_EQ(*c.value().rate_per_second, 2.5);
  EXPECT_EQ(c.value().rate_burst, 3u);
  // `by: key` limits each key, not the function: no ceiling.
  c = ScalerConfig::from(w, 8, RateLimitConfig{2.5, 3, true});
  ASSERT_TRUE(c);
  EXPECT_FALSE(c.value().rate_per_second);
  c = ScalerConfig::from(w, 8, RateLimitConfig{0, 1, false});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("rate_limit.per_second"), std::string::npos);
}

TEST(RateCeilingTest, WorkersTheTokensKeepBusyPlusOne) {
  EXPECT_EQ(rate_ceiling(5, 5, 0.8, 0, 20), 5u);     // 4 busy + 1
  EXPECT_EQ(rate_ceiling(5, 5, 0.81, 0, 20), 6u);    // 4.05 -> 5 busy + 1
  EXPECT_EQ(rate_ceiling(0.1, 1, 30.0, 0, 100), 4u);  // 3 busy exactly, not 3.0000000001
  EXPECT_EQ(rate_ceiling(0.2, 1, 3.0, 0, 8), 2u);    // 0.6 -> 1 busy + 1
  EXPECT_EQ(rate_ceiling(100, 100, 0.0, 0, 8), 1u);  // instant invocations: one worker
  EXPECT_EQ(rate_ceiling(5, 7, std::nullopt, 0, 20), 7u) << "no invocation timed: the burst";
  EXPECT_EQ(rate_ceiling(1, 1, 0.1, 3, 8), 3u) << "never below min";
  EXPECT_EQ(rate_ceiling(1000, 1000, 2.0, 0, 8), 8u) << "never above max";
  EXPECT_EQ(rate_ceiling(1e6, 1, 1e300, 0, 8), 8u);  // no overflow
}

TEST(ReadingOfTest, WrapsSuccessAndFailure) {
  Result<std::vector<PartitionLag>> good = std::vector<PartitionLag>{part(0, 5)};
  auto r = reading_of(good, Ordering::key);
  EXPECT_TRUE(r.ok);
  EXPECT_EQ(r.ordering, Ordering::key);
  ASSERT_EQ(r.partitions.size(), 1u);

  Result<std::vector<PartitionLag>> bad = Error{Errc::unavailable, "no leader"};
  r = reading_of(bad, Ordering::partition);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.error, "no leader");
}

TEST(AutoscalerTest, StepLoadScalesUpWithinTheSmoothingWindowAndHolds) {
  Series s(config(1, 10));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(s.lag(0).desired, 1u);
  // A step to 800 messages: 8 workers at 100 per worker, reached once the window
  // (3 samples) is full of the new level; never above it.
  uint32_t first_above_one = 0;
  for (int i = 1; i <= 10; ++i) {
    auto d = s.lag(800);
    if (d.desired > 1 && first_above_one == 0) first_above_one = i;
    EXPECT_LE(d.desired, 8u);
  }
  EXPECT_EQ(first_above_one, 1u) << "reacts on the first tick of the backlog";
  EXPECT_EQ(s.workers(), 8u);
  EXPECT_EQ(s.scaler().direction_changes(), 0u);
}

TEST(AutoscalerTest, BurstIsCappedAtMaxAndDrainsDownAfterTheWindow) {
  Series s(config(1, 4));
  s.lag(0);
  auto d = s.lag(100000);
  EXPECT_EQ(d.desired, 4u);
  EXPECT_TRUE(d.capped_by_max);
  // The burst drains to nothing in one go: the scale-down waits out the 30 s window.
  d = s.lag(0);
  EXPECT_EQ(d.desired, 4u);
  EXPECT_TRUE(d.stabilising);
  int ticks_at_four = 1;
  while (s.lag(0).desired == 4u) ++ticks_at_four;
  EXPECT_GE(ticks_at_four * kTick, 30s);
  EXPECT_LE(ticks_at_four * kTick, 34s);
  EXPECT_EQ(s.workers(), 1u);  // min
  EXPECT_EQ(s.scaler().direction_changes(), 1u);  // up once, down once
}

TEST(AutoscalerTest, SlowDrainStepsDownMonotonically) {
  Series s(config(1, 20));
  s.lag(2000);
  s.lag(2000);
  s.lag(2000);
  EXPECT_EQ(s.workers(), 20u);
  // Lag drains by 20 messages per tick: workers go down, never back up.
  for (int64_t lag = 2000; lag >= 0; lag -= 20) s.lag(lag);
  for (int i = 0; i < 20; ++i) s.lag(0);
  const auto& h = s.history();
  for (size_t i = 1; i < h.size(); ++i) EXPECT_LE(h[i], h[i - 1]) << "at tick " << i;
  EXPECT_EQ(s.workers(), 1u);
  EXPECT_EQ(s.scaler().direction_changes(), 1u);  // the first scale-up, then only down
}

TEST(AutoscalerTest, NoisyFlatLagDoesNotFlap) {
  Series s(config(1, 20));
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> noise(-300, 300);
  // 10 minutes of lag 1000 +- 30 % around a level that sits on a worker boundary.
  for (int i = 0; i < 300; ++i) s.lag(1000 + noise(rng));
  const auto& h = s.history();
  std::string trace;
  for (auto w : h) trace += std::to_string(w) + " ";
  SCOPED_TRACE(trace);
  uint32_t lo = *std::min_element(h.begin() + 10, h.end());
  uint32_t hi = *std::max_element(h.begin() + 10, h.end());
  EXPECT_LE(hi - lo, 3u);
  // At most one direction change per stabilisation window (30 s = 15 ticks), and in
  // practice barely any: 10 minutes are 20 windows.
  EXPECT_LE(s.scaler().direction_changes(), 4u);
  uint32_t changes_in_window = 0;
  int last_dir = 0;
  std::vector<size_t> change_at;
  for (size_t i = 1; i < h.size(); ++i) {
    if (h[i] == h[i - 1]) continue;
    int dir = h[i] > h[i - 1] ? 1 : -1;
    if (last_dir != 0 && dir != last_dir) change_at.push_back(i);
    last_dir = dir;
  }
  for (size_t i = 1; i < change_at.size(); ++i)
    if (change_at[i] - change_at[i - 1] < 15) ++changes_in_window;
  EXPECT_EQ(changes_in_window, 0u);
}

// A simulated pool under a steady input (bench/scaling's noisy flat load): 5,700
// events/s ± 30 %, 5 ms per event, so about 28.5 invocations run at once. With lag
// alone the pool that keeps up sees almost no lag, shrinks below the input, lets lag
// build and grows again (a cycle of about a minute on the real engine). The busy term
// keeps it sized for the load: no cycle, at most one direction change.
TEST(AutoscalerTest, SteadyInputKeepsThePoolSizedForTheLoad) {
  ScalerConfig c = config(0, 64, 400);
  Series s(c);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> jitter(0.7, 1.3);
  const double per_worker = 200;  // events/s of one worker (5 ms each)
  double backlog = 20000;         // a burst first, then the steady input
  for (int i = 0; i < 300; ++i) {  // 10 minutes of 2 s ticks
    const double arriving = 5700 * jitter(rng) * 2;            // this tick's events
    const double capacity = s.workers() * per_worker * 2;
    const double done = std::min(backlog + arriving, capacity);
    backlog = backlog + arriving - done;
    const double busy = done / 2 / per_worker;                 // Little's law
    s.lag(static_cast<int64_t>(backlog), static_cast<uint64_t>(busy), busy);
  }
  const auto& h = s.history();
  std::string trace;
  for (auto w : h) trace += std::to_string(w) + " ";
  SCOPED_TRACE(trace);
  // After the burst has drained (the first two minutes), the pool stays sized for the
  // load (28.5 running on average, 37 at the top of the noise) plus headroom: never
  // below the average, never back at max.
  const uint32_t lo = *std::min_element(h.begin() + 60, h.end());
  const uint32_t hi = *std::max_element(h.begin() + 60, h.end());
  EXPECT_GE(lo, 29u);
  EXPECT_LE(hi, 48u);
  // At most one direction change per stabilisation window (30 s = 15 ticks).
  std::vector<size_t> change_at;
  int last_dir = 0;
  for (size_t i = 61; i < h.size(); ++i) {
    if (h[i] == h[i - 1]) continue;
    const int dir = h[i] > h[i - 1] ? 1 : -1;
    if (last_dir != 0 && dir != last_dir) change_at.push_back(i);
    last_dir = dir;
  }
  for (size_t i = 1; i < change_at.size(); ++i)
    EXPECT_GE(change_at[i] - change_at[i - 1], 15u) << "direction changes at ticks "
                                                    << change_at[i - 1] << " and " << change_at[i];
  EXPECT_LT(backlog, 400 * 64);  // it keeps up
}

TEST(AutoscalerTest, NaiveScalerWouldFlapOnTheSameSeries) {
  // The control for the test above: the instantaneous rule flaps on this series, so
  // the stabilisation is what keeps the count low.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int64_t> noise(-300, 300);
  uint32_t prev = 0, changes = 0;
  int last_dir = 0;
  for (int i = 0; i < 300; ++i) {
    auto naive = static_cast<uint32_t>(std::ceil((1000 + noise(rng)) / 100.0));
    if (i > 0 && naive != prev) {
      int dir = naive > prev ? 1 : -1;
      if (last_dir != 0 && dir != last_dir) ++changes;
      last_dir = dir;
    }
    prev = naive;
  }
  EXPECT_GT(changes, 50u);
}

TEST(AutoscalerTest, IdleGoesToZeroAfterIdleAfterAndActivatesOnTheFirstEvent) {
  Series s(config(0, 8));
  // Start: nothing pending, nothing running -> stays at zero.
  EXPECT_EQ(s.lag(0).desired, 0u);
  // The first event: up at once, no smoothing delay.
  auto d = s.lag(1);
  EXPECT_EQ(d.desired, 1u);
  EXPECT_TRUE(d.activated);
  // The event is running (in flight) with its offset not yet committed.
  EXPECT_EQ(s.lag(1, 1).desired, 1u);
  EXPECT_EQ(s.lag(0, 1).desired, 1u) << "in-flight work keeps a worker";
  // Idle from here: 1 worker until idle_after (20 s), then zero.
  auto idle_start = s.clock().now();
  for (;;) {
    d = s.lag(0);
    if (d.desired == 0) break;
    ASSERT_LT(s.clock().now() - idle_start, 30s);
  }
  EXPECT_TRUE(d.scaled_to_zero);
  EXPECT_GE(s.clock().now() - idle_start, 20s);
  EXPECT_LE(s.clock().now() - idle_start, 22s);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(s.lag(0).desired, 0u);
  // A backlog at zero: activation sized on the instantaneous lag.
  d = s.lag(450);
  EXPECT_TRUE(d.activated);
  EXPECT_EQ(d.desired, 5u);
}

TEST(AutoscalerTest, InflightAloneActivatesFromZero) {
  Series s(config(0, 4));
  s.lag(0);
  EXPECT_EQ(s.workers(), 0u);
  // A source whose lag does not see the event yet (e.g. an HTTP async invoke).
  auto d = s.lag(0, 1);
  EXPECT_EQ(d.desired, 1u);
  EXPECT_TRUE(d.activated);
}

// At zero the dispatcher runs an arriving event at once; a quick one has finished
// before the next tick, which then sees no lag and nothing in flight, only events done.
TEST(AutoscalerTest, EventsFinishedBetweenTicksActivateAndKeepTheWorker) {
  Series s(config(0, 4));
  s.lag(0);
  EXPECT_EQ(s.workers(), 0u);
  auto d = s.lag(0, 0, 0, /*throughput=*/0.5);
  EXPECT_EQ(d.desired, 1u);
  EXPECT_TRUE(d.activated);
  // A trickle of such events keeps the worker well past idle_after (20 s)...
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.lag(0, 0, 0, 0.5).desired, 1u) << "tick " << i;
  // ...and once they stop, it goes after idle_after.
  for (int i = 0; i < 20 && s.workers() > 0; ++i) s.lag(0);
  EXPECT_EQ(s.workers(), 0u);
}

TEST(AutoscalerTest, ActivityResetsTheIdleClock) {
  Series s(config(0, 4));
  s.lag(5);
  for (int i = 0; i < 8; ++i) s.lag(0);  // 16 s idle
  s.lag(3);                              // one more event
  for (int i = 0; i < 8; ++i) EXPECT_EQ(s.lag(0).desired, 1u) << "idle clock restarted";
}

TEST(AutoscalerTest, FailedReadingsHoldAndNeverScaleIn) {
  Series s(config(0, 10));
  s.lag(600);
  s.lag(600);
  s.lag(600);
  ASSERT_EQ(s.workers(), 6u);
  // The broker stops answering for two minutes: never read as zero.
  for (int i = 0; i < 60; ++i) {
    auto d = s.step({failed()});
    EXPECT_EQ(d.desired, 6u);
    EXPECT_TRUE(d.held_unknown);
    EXPECT_EQ(d.unknown, "broker unreachable");
  }
  // A partition reported with unknown lag (-1) holds too.
  auto d = s.step({known({part(0, -1)})});
  EXPECT_EQ(d.desired, 6u);
  EXPECT_TRUE(d.held_unknown);
  // Idle time does not accumulate while unknown: no scale to zero on failures.
  EXPECT_FALSE(d.scaled_to_zero);
  // Readings come back low: no drop at once; the size holds until idle_after (20 s,
  // shorter than the 30 s scale-down window here) takes it to zero.
  d = s.lag(0);
  EXPECT_EQ(d.desired, 6u);
  EXPECT_TRUE(d.stabilising);
  int ticks = 1;
  while ((d = s.lag(0)).desired == 6u) ++ticks;
  EXPECT_GE(ticks * kTick, 20s);
  EXPECT_EQ(d.desired, 0u);
  EXPECT_TRUE(d.scaled_to_zero);
}

TEST(AutoscalerTest, PartialReadingMayScaleOutButNotIn) {
  Series s(config(1, 10));
  for (int64_t c = 0; c < 3; ++c) s.step({known({part(0, 200, c)}), known({part(1, 200, c)})});
  ASSERT_EQ(s.workers(), 4u);
  // One subscription fails, the other shows less: hold at 4.
  auto d = s.step({known({part(0, 50, 10)}), failed()});
  EXPECT_EQ(d.desired, 4u);
  // The known one alone already needs more: scale out.
  d = s.step({known({part(0, 900, 20)}), failed()});
  EXPECT_EQ(d.desired, 9u);
  EXPECT_TRUE(d.held_unknown);
}

TEST(AutoscalerTest, StuckPartitionIsReportedAndDoesNotKeepAddingWorkers) {
  Series s(config(1, 20));
  // Partition 0 holds a poison event: committed offset 10 never moves, lag stays 1500.
  // Partition 1 progresses normally with a small lag.
  int64_t committed1 = 0;
  Decision d;
  for (int i = 0; i < 4; ++i) {
    committed1 += 50;
    d = s.step({known({part(0, 1500, 10), part(1, 100, committed1)})});
    EXPECT_TRUE(d.stuck.empty());
  }
  EXPECT_EQ(d.desired, 16u);
  for (int i = 0; i < 30; ++i) {
    committed1 += 50;
    d = s.step({known({part(0, 1500, 10), part(1, 100, committed1)})});
  }
  ASSERT_EQ(d.stuck.size(), 1u);
  EXPECT_EQ(d.stuck[0].partition, 0);
  EXPECT_EQ(d.stuck[0].committed, 10);
  EXPECT_GE(d.stuck[0].samples, 5u);
  // One worker for the stuck partition (it holds its event) + one for partition 1.
  EXPECT_EQ(d.desired, 2u);
  EXPECT_NE(d.why().find("stuck local/orders[0]"), std::string::npos) << d.why();
  // The partition moves again: no longer stuck.
  d = s.step({known({part(0, 1400, 110), part(1, 100, committed1)})});
  EXPECT_TRUE(d.stuck.empty());
}

TEST(AutoscalerTest, UnservedPartitionAtZeroWorkersIsNotStuck) {
  Series s(config(0, 4));
  // The pool is at zero and the runtime has not come up yet: lag with no workers
  // does not count towards "stuck".
  Observation o;
  o.sources = {known({part(0, 30, 5)})};
  o.workers = 0;
  for (int i = 0; i < 20; ++i) {
    s.clock().advance(kTick);
    auto d = s.scaler().tick(o);
    EXPECT_TRUE(d.stuck.empty());
  }
}

TEST(AutoscalerTest, OrderedPartitionsCapTheWorkers) {
  Series s(config(1, 16));
  // 3 partitions with `ordering: partition`, 1000 messages each: lag says 16 (max),
  // but only 3 workers can be fed.
  Decision d;
  for (int i = 0; i < 5; ++i)
    d = s.step({known({part(0, 1000), part(1, 1000), part(2, 1000)}, Ordering::partition)});
  EXPECT_EQ(d.desired, 3u);
  EXPECT_TRUE(d.capped_by_partitions);
  // Only partitions with lag feed a worker.
  for (int i = 0; i < 30; ++i)
    d = s.step({known({part(0, 1000), part(1, 0), part(2, 0)}, Ordering::partition)});
  EXPECT_EQ(d.desired, 1u);
  // Key ordering (or none) is not capped by partitions.
  Series k(config(1, 16));
  for (int i = 0; i < 5; ++i)
    d = k.step({known({part(0, 1000), part(1, 1000), part(2, 1000)}, Ordering::key)});
  EXPECT_EQ(d.desired, 16u);
  EXPECT_FALSE(d.capped_by_partitions);
  EXPECT_TRUE(d.capped_by_max);
}

TEST(AutoscalerTest, KeyLanesCapKeyOrderedSubscriptions) {
  Series s(config(1, 16));
  auto keyed = [](std::optional<uint32_t> lanes) {
    auto r = known({part(0, 1000), part(1, 1000)}, Ordering::key);
    r.key_lanes = lanes;
    return r;
  };
  Decision d;
  for (int i = 0; i < 5; ++i) d = s.step({keyed(5)});
  EXPECT_EQ(d.desired, 5u) << "5 keys pending: 5 workers can be fed";
  EXPECT_TRUE(d.capped_by_partitions);
  // Mixed: an ordered partition and 3 key lanes.
  Series m(config(1, 16));
  for (int i = 0; i < 5; ++i)
    d = m.step({known({part(0, 1000)}, Ordering::partition), keyed(3)});
  EXPECT_EQ(d.desired, 4u);
  // Without the lane count the key subscription is not capped.
  Series u(config(1, 16));
  for (int i = 0; i < 5; ++i) d = u.step({keyed(std::nullopt)});
  EXPECT_EQ(d.desired, 16u);
}

ScalerConfig rate_limited(ScalerConfig c, double per_second, uint32_t burst) {
  c.rate_per_second = per_second;
  c.rate_burst = burst;
  return c;
}

// A function limited to 4 invocations/s whose backlog keeps growing (its tokens, not its
// workers, limit it): lag alone would take it to max; the rate keeps it at what 4/s
// keep busy. The same series without the limit is the control.
TEST(AutoscalerTest, AThrottledFunctionIsCappedAtWhatItsRateKeepsBusy) {
  Series control(config(1, 20));
  Series s(rate_limited(config(1, 20), 4, 4));
  // No invocation has ended yet: the ceiling is the burst.
  auto d = s.throttled(100000, 0, 0);
  EXPECT_EQ(control.throttled(100000, 0, 0).desired, 20u);
  EXPECT_EQ(d.desired, 4u);
  EXPECT_TRUE(d.capped_by_rate);
  EXPECT_FALSE(d.mean_invocation_seconds);
  EXPECT_NE(d.why().find("capped by rate_limit at 4 (burst"), std::string::npos) << d.why();
  // 8 invocations of 0.5 s end per tick (4/s): 2 busy + 1.
  int64_t lag = 100000;
  for (int i = 0; i < 30; ++i) {
    lag += 100;
    d = s.throttled(lag, 8, 0.5);
    EXPECT_EQ(control.throttled(lag, 8, 0.5).desired, 20u);
    EXPECT_EQ(d.desired, 3u) << "tick " << i;  // at once: the window does not hold it up
  }
  ASSERT_TRUE(d.mean_invocation_seconds);
  EXPECT_DOUBLE_EQ(*d.mean_invocation_seconds, 0.5);
  EXPECT_EQ(d.rate_ceiling, 3u);
  EXPECT_NE(d.why().find("capped by rate_limit at 3 (0.500s per invocation)"), std::string::npos)
      << d.why();
  // A tick in which nothing ends keeps the last mean.
  d = s.throttled(lag, 0, 0);
  EXPECT_EQ(d.desired, 3u);
  // Invocations slow down to 2.5 s: the mean over the 20 s window follows, and so does
  // the ceiling, up to 4/s x 2.5 s = 10 busy + 1, never back down on the way.
  uint32_t last = 3;
  for (int i = 0; i < 30; ++i) {
    d = s.throttled(lag, 8, 2.5);
    EXPECT_GE(d.desired, last);
    last = d.desired;
  }
  EXPECT_EQ(d.desired, 11u);
  EXPECT_EQ(s.scaler().direction_changes(), 2u);  // up to the burst, down to 3, up to 11
}

// The ceiling lowers what the load term (invocations running x 1.2) would keep too.
TEST(AutoscalerTest, TheRateCeilingCapsTheLoadTerm) {
  Series s(rate_limited(config(0, 64, 100000), 10, 10));
  Decision d;
  for (int i = 0; i < 20; ++i)  // 20 running on average, no lag to speak of; 1 s each
    d = s.step({known({part(0, 10, i * 20)})}, 20, 20, 20, 20, 20.0);
  EXPECT_EQ(d.rate_ceiling, 11u);
  EXPECT_EQ(d.desired, 11u);
  EXPECT_TRUE(d.capped_by_rate);
  Series control(config(0, 64, 100000));
  for (int i = 0; i < 20; ++i) d = control.step({known({part(0, 10, i * 20)})}, 20, 20, 20, 20, 20.0);
  EXPECT_EQ(d.desired, 24u);
}

// Scale to zero and activation are unchanged under a rate ceiling.
TEST(AutoscalerTest, ARateLimitedFunctionStillScalesToZeroAndBack) {
  Series s(rate_limited(config(0, 8), 0.5, 1));
  EXPECT_EQ(s.lag(0).desired, 0u);
  auto d = s.lag(300);
  EXPECT_TRUE(d.activated);
  EXPECT_EQ(d.desired, 1u);  // the burst of 1
  d = s.throttled(300, 1, 1.0);
  EXPECT_EQ(d.desired, 2u);  // 0.5/s x 1 s -> 1 busy + 1
  for (int i = 0; i < 40 && s.workers() > 0; ++i) s.lag(0);
  EXPECT_EQ(s.workers(), 0u);
  d = s.lag(300);
  EXPECT_TRUE(d.activated);
  EXPECT_EQ(d.desired, 2u);  // the last mean is remembered
}

// A failed lag reading holds the size, but never above the rate ceiling.
TEST(AutoscalerTest, AHeldSizeStaysUnderTheRateCeiling) {
  Series s(rate_limited(config(1, 20), 2, 2));
  s.throttled(5000, 4, 1.0);
  EXPECT_EQ(s.workers(), 3u);
  for (int i = 0; i < 5; ++i) {
    auto d = s.step({failed()}, 3, 3, 2, 4, 4.0);
    EXPECT_TRUE(d.held_unknown);
    EXPECT_EQ(d.desired, 3u);
  }
}

TEST(RateMeterTest, EventsPerSecondBetweenCalls) {
  ManualClock clock;
  RateMeter m(clock);
  EXPECT_EQ(m.update(100), 0.0);  // first call: no interval yet
  clock.advance(2s);
  EXPECT_DOUBLE_EQ(m.update(600), 250.0);
  EXPECT_EQ(m.update(700), 0.0) << "clock did not move";
  clock.advance(1s);
  EXPECT_EQ(m.update(10), 0.0) << "a counter that went back (restart) is not a rate";
  clock.advance(1s);
  EXPECT_DOUBLE_EQ(m.update(50), 40.0);
}

TEST(AutoscalerTest, MinIsAFloorAndWhyExplains) {
  Series s(config(3, 8));
  auto d = s.lag(0);
  EXPECT_EQ(d.desired, 3u);
  EXPECT_TRUE(d.raised_to_min);
  EXPECT_NE(d.why().find("raised to min"), std::string::npos);
  d = s.step({known({part(0, 50, 0, 2.5)})});
  ASSERT_TRUE(d.lag_seconds);
  EXPECT_DOUBLE_EQ(*d.lag_seconds, 2.5);
  EXPECT_NE(d.why().find("lag 50 / 2.5s"), std::string::npos) << d.why();
}

TEST(AutoscalerTest, DrainEstimateUsesThroughput) {
  ManualClock clock;
  Autoscaler a(config(1, 8), clock);
  Observation o;
  o.sources = {known({part(0, 1000)})};
  o.throughput = 250;
  o.workers = 1;
  clock.advance(kTick);
  auto d = a.tick(o);
  ASSERT_TRUE(d.drain_seconds);
  EXPECT_DOUBLE_EQ(*d.drain_seconds, 4.0);
}

}  // namespace
}  // namespace sluice::scaling::testing
