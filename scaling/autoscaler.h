// The lag-based autoscaler of one function: a pure decision function.
//
// Lifecycle and threading: one `Autoscaler` per function, created at start-up from the
// function's `workers:` config, owned and ticked by the engine's lag loop (one thread,
// every ~2 s). It has no threads, does no I/O and reads time only from the injected
// `Clock`, so tests drive it with a `ManualClock` and synthetic lag series. It is not
// thread-safe; the caller serialises `tick()`.
//
// One tick: the engine reads every subscription's lag (`Source::lag()`), wraps each in
// a `SourceReading` (`reading_of()`), adds the in-flight count and the workers running
// now, and calls `tick()`. The `Decision` says how many workers the pool should have
// (`desired`, what `Runtime::resize()` gets and `sluice_workers_desired` shows) and why.
//
// The rules, in the order they apply:
//   1. Unknown lag (a failed `lag()` or a negative per-partition lag) never scales in:
//      the size is held at `workers`; a larger figure from the partitions that are
//      known may still scale out (it is a lower bound of the real lag).
//   2. Activation: at zero workers, the first pending event (lag, in-flight > 0, or
//      events finished since the last tick: the dispatcher already ran it) brings the
//      pool up at once, sized on the instantaneous lag (no smoothing delay).
//   3. A partition whose committed offset has not moved for `stuck_samples` ticks while
//      its lag stayed above zero (and workers were running) is reported as stuck and
//      counts for at most one worker, so a poison event does not keep adding workers.
//   4. raw = max(ceil(smoothed lag / target_lag), ceil(smoothed busy x (1 +
//      busy_headroom))), both averaged over `smoothing_window`. The first term drains
//      a backlog; the second keeps enough workers for the load that is arriving
//      (Little's law: invocations running at once = rate x duration), so a pool that
//      keeps up with a steady input is not told it needs almost nobody because its
//      lag is small — which would shrink it below the input, let lag build, grow it
//      again, and cycle (measured on the real engine: bench/scaling).
//   5. Ordered cap: a partition with `ordering: partition` feeds one worker at a time,
//      so raw is capped at the number of such partitions with lag; an `ordering: key`
//      subscription adds its `key_lanes` when given; no cap as soon as a `none`
//      subscription (or a `key` one without `key_lanes`) has lag.
//   6. Clamp to [min, max]; with min 0 the floor stays 1 until the function has been
//      idle (no lag, nothing in flight, nothing finished, every reading known) for
//      `idle_after`.
//   7. Scale-up is immediate once the smoothed lag exceeds the current capacity
//      (workers x target_lag) by `scale_up_tolerance`; scale-down takes the largest
//      recommendation of the last `scale_down_window`. Together: noisy flat lag does
//      not flap.
//   8. Rate ceiling: a function with a function-wide `rate_limit` (by: function) can
//      keep at most per_second x mean invocation time workers busy, however large its
//      lag (the lag of a throttled function grows by design: its tokens, not its
//      workers, limit it). No size — raw, the load term, a held or stabilised one —
//      goes above `rate_ceiling()` of the mean duration of the invocations that ended
//      within `smoothing_window` (the last known mean when none did).
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/clock.h"
#include "core/result.h"

namespace sluice::scaling {

// The knobs. The first four come from the function's `workers:` config; the window
// lengths and the stuck threshold have no config fields yet and keep these defaults.
struct ScalerConfig {
  uint32_t min = 0;
  uint32_t max = 1;
  uint64_t target_lag = 500;           // messages of lag per worker
  Millis idle_after{60000};            // idle this long (min 0) -> zero workers
  Millis smoothing_window{20000};      // lag (and busy) are averaged over this window
  double busy_headroom = 0.2;          // workers kept above the invocations running on average
  double scale_up_tolerance = 0.1;     // scale up only past (1 + this) x current capacity
  Millis scale_down_window{30000};     // scale-down stabilisation window
  uint32_t stuck_samples = 15;         // ticks without commit progress -> stuck
  // A function-wide rate_limit (rule 8); unset: no rate ceiling. `by: key` limits
  // each key, not the function, and sets none.
  std::optional<double> rate_per_second;
  uint32_t rate_burst = 1;

  // From `workers:` (max 0 = the function's concurrency) and `rate_limit:`. An error
  // names the field when the figures cannot work (target_lag 0, min > max, max 0, zero
  // windows, a rate that is not positive).
  static Result<ScalerConfig> from(const WorkersConfig& w, uint32_t concurrency,
                                   const std::optional<RateLimitConfig>& rate = std::nullopt);
  Result<void> check() const;
};

// What one subscription's `lag()` returned, as the autoscaler sees it.
struct SourceReading {
  bool ok = false;                        // false: lag() failed; the figures are unknown
  Ordering ordering = Ordering::partition;
  std::vector<PartitionLag> partitions;   // lag < 0 = that partition is unknown
  std::string error;                      // why it failed (for the decision's reasons)
  // `ordering: key` only: the distinct keys with events waiting or running (the
  // dispatcher's key lanes), when the engine knows them; each feeds one worker at a
  // time. Unset = no cap from this subscription.
  std::optional<uint32_t> key_lanes;
};

// Wraps a `Source::lag()` / `TopicBrowser::lag()` result.
SourceReading reading_of(const Result<std::vector<PartitionLag>>& lag, Ordering ordering);

// Rule 8: the most workers `per_second` tokens can keep busy when an invocation takes
// `mean_seconds` on average (Little's law), plus one so that a token falling due
// while every worker finishes its invocation does not wait: ceil(per_second x
// mean_seconds) + 1. Before any invocation has ended (no mean yet) it is `burst`, the
// most invocations the bucket lets start at once. Always within [min, max].
uint32_t rate_ceiling(double per_second, uint32_t burst, std::optional<double> mean_seconds,
                      uint32_t min, uint32_t max);

struct Observation {
  std::vector<SourceReading> sources;  // one per subscription of the function
  double throughput = 0;               // events finished per second since the last tick
  uint64_t inflight = 0;               // events the function holds now
  double busy = 0;                     // invocations running now (not queued)
  uint32_t workers = 0;                // the pool's size now (started workers, busy or idle);
                                       // 0 = nobody consumes, so no partition counts as stuck
  uint64_t invocations = 0;            // invocations that ended since the last tick
  double invocation_seconds = 0;       // their total duration (rule 8's mean)
};

// A partition reported as stuck: its committed offset has not moved for `samples` ticks
// while its lag stayed above zero.
struct StuckPartition {
  std::string broker, topic, group;
  int32_t partition = 0;
  int64_t committed = -1;
  int64_t lag = 0;
  uint32_t samples = 0;
};

struct Decision {
  uint32_t desired = 0;
  uint32_t raw = 0;                 // rule 4 before caps and clamps
  double smoothed_lag = 0;          // messages, over the smoothing window (stuck capped)
  double smoothed_busy = 0;         // invocations running, over the smoothing window
  bool kept_for_load = false;       // the busy term, not the lag, set `raw`
  int64_t lag = 0;                  // this tick's known lag, messages
  std::optional<double> lag_seconds;  // this tick's oldest known lag, seconds
  std::optional<double> drain_seconds;  // lag / throughput, when both are known
  bool held_unknown = false;        // some reading unknown: not scaled in
  bool activated = false;           // came up from zero on pending work
  bool scaled_to_zero = false;      // idle for idle_after: zero workers
  bool stabilising = false;         // a lower size is wanted but the window holds it
  bool capped_by_partitions = false;  // ordered partitions cap the size
  bool capped_by_max = false;
  bool capped_by_rate = false;      // rule 8 lowered the size
  std::optional<uint32_t> rate_ceiling;         // rule 8, with a function-wide rate_limit
  std::optional<double> mean_invocation_seconds;  // over the smoothing window (or last known)
  bool raised_to_min = false;
  std::vector<StuckPartition> stuck;
  std::string unknown;              // the first reading error of this tick, if any

  // One readable line: "desired 4 (lag 1800 smoothed 1650 / 500; capped by 4 ordered partitions)".
  std::string why() const;
};

// Events per second from a monotonically growing count (e.g. the finished
// invocations of a function), between two calls; for `Observation::throughput`.
class RateMeter {
 public:
  explicit RateMeter(const Clock& clock) : clock_(clock) {}
  double update(uint64_t total);  // 0 on the first call and when the clock did not move

 private:
  const Clock& clock_;
  std::optional<SteadyTime> last_at_;
  uint64_t last_total_ = 0;
};

class Autoscaler {
 public:
  Autoscaler(ScalerConfig cfg, const Clock& clock);

  Decision tick(const Observation& obs);

  const ScalerConfig& config() const { return cfg_; }
  uint32_t desired() const { return desired_; }  // the last decision (min before the first)
  // Direction changes of `desired` so far (up after down or down after up), for benches.
  uint32_t direction_changes() const { return direction_changes_; }

 private:
  struct Sample {
    SteadyTime at;
    double lag;
    double busy;
  };
  struct Recommendation {
    SteadyTime at;
    uint32_t workers;
  };
  struct Durations {
    SteadyTime at;
    uint64_t invocations;
    double seconds;
  };
  struct Progress {
    int64_t committed = -1;
    uint32_t still = 0;  // consecutive ticks with lag > 0 and the same committed offset
  };

  // Averages of lag and busy over the smoothing window, this sample included.
  std::pair<double, double> smooth(SteadyTime now, double lag, double busy);
  uint32_t stabilised(SteadyTime now, uint32_t recommendation, bool& stabilising);
  // Rule 8's mean invocation time over the smoothing window, this tick included.
  std::optional<double> mean_duration(SteadyTime now, const Observation& obs);
  void record_direction(uint32_t next);

  ScalerConfig cfg_;
  const Clock& clock_;
  std::deque<Sample> samples_;
  std::deque<Recommendation> recommendations_;
  std::deque<Durations> durations_;       // ticks with invocations that ended
  std::optional<double> last_mean_;       // the last mean measured, kept when none end
  std::map<std::string, Progress> progress_;  // by broker/topic/partition/group
  std::optional<SteadyTime> idle_since_;
  uint32_t desired_;
  int last_direction_ = 0;  // +1 up, -1 down, 0 none yet
  uint32_t direction_changes_ = 0;
};

}  // namespace sluice::scaling
