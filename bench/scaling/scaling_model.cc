// A MODEL of the issue-7 scaling benchmark: the real `Autoscaler` decides, a simulated
// worker pool does the work. It measures the decision logic (reaction, drain,
// worker-seconds, direction changes), not the engine: there is no process start-up,
// no broker and no dispatcher in it. The engine bench (`sluice run` with a backlog)
// follows once the engine ticks the autoscaler and resizes its pools.
//
// Model: events wait in one queue (lag); each worker finishes one event every
// `service_ms`; the lag loop ticks every 2 s; at `t = 0` (just after a tick, the
// worst case) a burst of `burst` events lands. Pool resizes take effect at once.
//
//   bench_scaling_model [burst=100000] [service_ms=5] [max=32] [target_lag=500]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>

#include "scaling/autoscaler.h"

using namespace std::chrono_literals;
using sluice::ManualClock;
using sluice::PartitionLag;
using namespace sluice::scaling;

namespace {

struct Run {
  double first_invocation_s = -1;
  double drained_s = -1;
  double worker_seconds = 0;  // until drained
  double horizon_worker_seconds = 0;  // from the burst to kHorizon (idle time included)
  uint32_t peak = 0;
};

constexpr auto kStep = 1ms;
constexpr int kTickMs = 2000;
constexpr int64_t kHorizonMs = 120 * 1000;  // worker-seconds are also counted up to here

Observation observe(int64_t lag, uint32_t workers, int64_t committed) {
  PartitionLag p;
  p.broker = "local";
  p.topic = "burst";
  p.group = "sluice";
  p.committed = committed;
  p.lag = lag;
  SourceReading r;
  r.ok = true;
  r.ordering = sluice::Ordering::none;
  r.partitions = {p};
  Observation o;
  o.sources = {r};
  o.workers = workers;
  return o;
}

// fixed > 0: a pool of that size, no autoscaler.
Run burst(int64_t events, int service_ms, const ScalerConfig& cfg, uint32_t fixed) {
  ManualClock clock;
  Autoscaler scaler(cfg, clock);
  Run r;
  uint32_t workers = fixed ? fixed : cfg.min;
  int64_t lag = events, done = 0;
  double budget = 0;  // fractional events the pool may finish
  for (int64_t ms = 0; (lag > 0 || ms < kHorizonMs) && ms < 3600 * 1000; ++ms) {
    if (!fixed && ms % kTickMs == kTickMs - 1) {  // the burst landed just after a tick
      workers = scaler.tick(observe(lag, workers, done)).desired;
    }
    budget += static_cast<double>(workers) / service_ms;
    int64_t n = std::min<int64_t>(lag, static_cast<int64_t>(budget));
    budget -= static_cast<double>(n);
    if (n > 0 && r.first_invocation_s < 0) r.first_invocation_s = ms / 1000.0;
    lag -= n;
    done += n;
    if (r.drained_s < 0) r.worker_seconds += workers / 1000.0;
    if (ms < kHorizonMs) r.horizon_worker_seconds += workers / 1000.0;
    r.peak = std::max(r.peak, workers);
    if (lag == 0 && r.drained_s < 0) r.drained_s = (ms + 1) / 1000.0;
    clock.advance(kStep);
  }
  return r;
}

// Ten minutes of a flat lag of 4.5 x target_lag with +-30 % noise on every 2 s reading
// (the consumer keeps up, so the committed offset moves); returns the direction
// changes of the desired worker count and its range after the first minute.
uint32_t noisy_flat(const ScalerConfig& cfg, uint32_t& lo, uint32_t& hi) {
  ManualClock clock;
  Autoscaler scaler(cfg, clock);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> noise(0.7, 1.3);
  uint32_t workers = 0;
  lo = UINT32_MAX;
  hi = 0;
  for (int tick = 0; tick < 300; ++tick) {
    clock.advance(std::chrono::milliseconds(kTickMs));
    auto lag = static_cast<int64_t>(4.5 * static_cast<double>(cfg.target_lag) * noise(rng));
    workers = scaler.tick(observe(lag, workers, tick * 1000)).desired;
    if (tick >= 30) {
      lo = std::min(lo, workers);
      hi = std::max(hi, workers);
    }
  }
  return scaler.direction_changes();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t events = argc > 1 ? std::atoll(argv[1]) : 100000;
  int service_ms = argc > 2 ? std::atoi(argv[2]) : 5;
  ScalerConfig cfg;
  cfg.min = 0;
  cfg.max = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 32;
  cfg.target_lag = argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 500;
  if (auto c = cfg.check(); !c) {
    std::fprintf(stderr, "bad parameters: %s\n", c.error().message.c_str());
    return 2;
  }
  Run fixed = burst(events, service_ms, cfg, cfg.max);
  Run autos = burst(events, service_ms, cfg, 0);
  uint32_t lo = 0, hi = 0;
  uint32_t changes = noisy_flat(cfg, lo, hi);

  std::printf("MODEL (decision logic only): burst %lld events, %d ms each, max %u, target_lag %llu\n",
              static_cast<long long>(events), service_ms, cfg.max,
              static_cast<unsigned long long>(cfg.target_lag));
  std::printf("%-34s %12s %12s\n", "", "fixed max", "autoscaled");
  std::printf("%-34s %12.2f %12.2f\n", "time to first invocation (s)", fixed.first_invocation_s,
              autos.first_invocation_s);
  std::printf("%-34s %12.2f %12.2f\n", "time to drain (s)", fixed.drained_s, autos.drained_s);
  std::printf("%-34s %12.1f %12.1f\n", "worker-seconds until drained", fixed.worker_seconds,
              autos.worker_seconds);
  std::printf("%-34s %12.1f %12.1f\n", "worker-seconds, first 120 s", fixed.horizon_worker_seconds,
              autos.horizon_worker_seconds);
  std::printf("%-34s %12u %12u\n", "peak workers", fixed.peak, autos.peak);
  std::printf("drain ratio autoscaled/fixed: %.3f (target <= 1.2)\n", autos.drained_s / fixed.drained_s);
  std::printf("noisy flat load, 10 min (20 scale-down windows): %u direction changes, workers %u..%u\n",
              changes, lo, hi);
  std::printf("RESULT scaling_model drain_ratio=%.3f react_s=%.2f fixed_ws=%.1f auto_ws=%.1f changes=%u\n",
              autos.drained_s / fixed.drained_s, autos.first_invocation_s,
              fixed.horizon_worker_seconds, autos.horizon_worker_seconds, changes);
  return 0;
}
