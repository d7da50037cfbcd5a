#include "scaling/lag_loop.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "core/clock.h"
#include "core/thread_guard.h"
#include "workers/process.h"

namespace sluice::scaling {

uint32_t event_limit(uint32_t workers, uint32_t events_per_worker, uint32_t concurrency) {
  const uint64_t n = uint64_t{workers} * events_per_worker;
  return static_cast<uint32_t>(std::min<uint64_t>(n, concurrency));
}

LagLoop::LagLoop(metrics::Metrics& metrics, dispatcher::Dispatcher& dispatcher)
    : metrics_(metrics), dispatcher_(dispatcher) {}

LagLoop::~LagLoop() { stop(); }

Result<void> LagLoop::add_function(const FunctionConfig& fn, Runtime& runtime,
                                   uint32_t events_per_worker) {
  auto f = std::make_unique<Sized>();
  f->fn = &fn;
  f->runtime = &runtime;
  f->events_per_worker = events_per_worker;
  f->desired = fn.concurrency;
  if (fn.workers.autoscale) {
    auto sc = ScalerConfig::from(fn.workers, fn.concurrency, fn.rate_limit);
    if (!sc)
      return Error{Errc::invalid_argument, "function '" + fn.name + "': workers: " + sc.error().message};
    f->scaler = std::make_unique<Autoscaler>(sc.value(), Clock::system());
    f->meter = std::make_unique<RateMeter>(Clock::system());
    f->desired = f->scaler->desired();  // `min` until the first tick
    dispatcher_.set_limit(fn.name, event_limit(f->desired, events_per_worker, fn.concurrency));
  }
  functions_.emplace(fn.name, std::move(f));
  return ok();
}

void LagLoop::add_route(Source& src, const std::string& function, Ordering ordering) {
  if (std::find(sources_.begin(), sources_.end(), &src) == sources_.end()) sources_.push_back(&src);
  functions_.at(function)->sources.emplace_back(&src, ordering);
}

void LagLoop::add_broker(const std::string& name, Broker& broker) { brokers_.emplace(name, &broker); }

uint32_t LagLoop::desired(const std::string& function) const {
  return functions_.at(function)->desired.load();
}

bool LagLoop::autoscaled(const std::string& function) const {
  return functions_.at(function)->scaler != nullptr;
}

void LagLoop::start() {
  thread_ = std::thread([this] { run_guarded("lag", [this] { run(); }); });
}

void LagLoop::stop() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void LagLoop::run() {
  std::unique_lock lk(mu_);
  while (!stop_) {
    lk.unlock();
    const Lags lags = read_lags();
    scale(lags, dispatcher_.stats());
    sync_broker_health();
    sync_worker_counters();
    lk.lock();
    cv_.wait_for(lk, std::chrono::seconds(2), [this] { return stop_; });
  }
}

// Each source is asked once per tick; its answer feeds the lag gauges and the
// autoscaler of every function it serves.
LagLoop::Lags LagLoop::read_lags() {
  Lags lags;
  for (Source* s : sources_) {
    auto lag = s->lag();
    if (!lag) {
      spdlog::warn("lag of {}/{} unknown: {}", s->broker(), s->topic(), lag.error().message);
      metrics_.errors.Add({{"component", "lag"}, {"kind", to_string(lag.error().code)}}).Increment();
    } else {
      for (const auto& p : lag.value()) {
        prometheus::Labels l{{"broker", p.broker},
                             {"topic", p.topic},
                             {"partition", std::to_string(p.partition)},
                             {"group", p.group}};
        metrics_.consumer_lag.Add(l).Set(static_cast<double>(p.lag));
        if (p.lag_seconds) metrics_.consumer_lag_seconds.Add(l).Set(*p.lag_seconds);
      }
    }
    lags.emplace(s, std::move(lag));
  }
  return lags;
}

void LagLoop::scale(const Lags& lags, const std::vector<dispatcher::FunctionStats>& stats) {
  for (auto& [name, f] : functions_) {
    Runtime& rt = *f->runtime;
    const dispatcher::FunctionStats* st = nullptr;
    for (const auto& x : stats)
      if (x.name == name) st = &x;
    if (f->scaler && st && st->paused) {
      // A paused function's lag grows by design (`sluice pause`): it is not scaled on
      // it. Its pool goes to `min` (running invocations finish first: Runtime::resize)
      // and the autoscaler is not ticked; after the resume the next tick sizes it.
      apply(name, *f, f->scaler->config().min, "paused");
    } else if (f->scaler && st) {
      Observation o;
      for (auto [src, ordering] : f->sources) {
        o.sources.push_back(reading_of(lags.at(src), ordering));
        if (ordering == Ordering::key) o.sources.back().key_lanes = static_cast<uint32_t>(st->lanes);
      }
      o.inflight = st->held;
      o.busy = static_cast<double>(st->running);
      o.workers = f->desired;  // the pool's size (busy or idle), as last applied
      o.throughput = f->meter->update(st->finished);
      if (st->invocations >= f->invocations_seen) {  // the durations of rule 8 (rate ceiling)
        o.invocations = st->invocations - f->invocations_seen;
        o.invocation_seconds = st->invocation_seconds - f->invocation_seconds_seen;
      }
      f->invocations_seen = st->invocations;
      f->invocation_seconds_seen = st->invocation_seconds;
      const auto d = f->scaler->tick(o);
      if (d.desired == f->desired && (!d.stuck.empty() || d.held_unknown))
        spdlog::warn("[fn {}] {}", name, d.why());
      apply(name, *f, d.desired, d.why());
    }
    metrics_.workers_desired.Add({{"function", name}}).Set(f->desired);
    metrics_.workers.Add({{"function", name}}).Set(static_cast<double>(rt.stats().workers));
  }
}

// The one place a size is applied to an autoscaled function: the dispatcher's limit,
// the pool, desired(); a change is logged with its reason.
void LagLoop::apply(const std::string& name, Sized& f, uint32_t size, const std::string& why) {
  if (f.desired != size) spdlog::info("[fn {}] workers {} -> {}: {}", name, f.desired.load(), size, why);
  f.desired = size;
  dispatcher_.set_limit(name, event_limit(size, f.events_per_worker, f.fn->concurrency));
  f.runtime->resize(size);
}

namespace {
// Adds to a counter what a component's own running total gained since last seen.
void count_since(prometheus::Counter& c, uint64_t now, uint64_t& seen) {
  if (now > seen) c.Increment(static_cast<double>(now - seen));
  seen = now;
}
}  // namespace

// Connection state (NATS) and write health (the local queue's disk) of the brokers.
void LagLoop::sync_broker_health() {
  for (auto& [name, b] : brokers_) {
    const prometheus::Labels l{{"broker", name}};
    if (auto st = b->connection_state()) {
      metrics_.broker_connected.Add(l).Set(st->connected ? 1 : 0);
      count_since(metrics_.broker_reconnects.Add(l), st->reconnects, reconnects_seen_[name]);
    }
    if (auto h = b->write_health()) {
      metrics_.local_queue_writable.Add(l).Set(h->writable ? 1 : 0);
      count_since(metrics_.local_queue_write_failures.Add(l), h->failed_writes,
                  write_failures_seen_[name]);
    }
  }
}

// The function processes' counters (workers/) into the metrics: bytes of output
// dropped over their caps, per function, and starts delayed for want of resources.
void LagLoop::sync_worker_counters() {
  for (auto& [name, f] : functions_) {
    const PoolStats st = f->runtime->stats();
    PoolStats& seen = worker_output_seen_[name];
    count_since(metrics_.worker_output_dropped.Add({{"function", name}, {"stream", "stderr"}}),
                st.stderr_dropped_bytes, seen.stderr_dropped_bytes);
    count_since(metrics_.worker_output_dropped.Add({{"function", name}, {"stream", "log"}}),
                st.log_dropped_bytes, seen.log_dropped_bytes);
  }
  const workers::ExhaustionCounts ex = workers::exhaustion_counts();
  const std::array<std::pair<const char*, uint64_t>, 4> kinds{
      {{"emfile", ex.emfile}, {"enfile", ex.enfile}, {"eagain", ex.eagain}, {"enomem", ex.enomem}}};
  for (size_t i = 0; i < kinds.size(); ++i)
    if (kinds[i].second > exhaustion_seen_[i])
      count_since(metrics_.errors.Add({{"component", "spawn"}, {"kind", kinds[i].first}}),
                  kinds[i].second, exhaustion_seen_[i]);
}

}  // namespace sluice::scaling
