// The engine's periodic tick: every 2 s it reads each Source's lag() once, exports it
// (sluice_consumer_lag, ..._seconds), ticks each autoscaled function's Autoscaler
// with it, and applies the decision — Dispatcher::set_limit() (events allowed at
// once) and Runtime::resize() (workers). The same tick exports the brokers'
// connection and write health and the function processes' counters (output dropped
// over caps, spawns delayed for want of resources).
//
// Threads: set-up (add_function, add_route, add_broker) and start() on the caller's
// thread, before the loop runs; stop() on that thread too. Between start() and stop()
// the loop's own thread owns every member except `Sized::desired`, an atomic that
// desired()/autoscaled() read from any thread (/system/functions). Everything it is
// given (dispatcher, runtimes, sources, brokers, metrics) must outlive stop().
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/result.h"
#include "core/runtime.h"
#include "dispatcher/dispatcher.h"
#include "metrics/metrics.h"
#include "scaling/autoscaler.h"

namespace sluice::scaling {

// Events a function may run at once with `workers` workers, each taking
// `events_per_worker` (workers::RuntimeInfo): never more than `concurrency`.
uint32_t event_limit(uint32_t workers, uint32_t events_per_worker, uint32_t concurrency);

class LagLoop {
 public:
  LagLoop(metrics::Metrics& metrics, dispatcher::Dispatcher& dispatcher);
  ~LagLoop();  // stop()
  LagLoop(const LagLoop&) = delete;
  LagLoop& operator=(const LagLoop&) = delete;

  // Set-up, before start(). A function with a `workers:` stanza gets an Autoscaler and
  // starts at its `min` (the dispatcher's limit is set at once; the caller resizes the
  // runtime to desired() before starting it); a fixed pool keeps `concurrency`.
  Result<void> add_function(const FunctionConfig& fn, Runtime& runtime, uint32_t events_per_worker);
  // A source feeding a function (each route once): its lag counts for that function.
  void add_route(Source& src, const std::string& function, Ordering ordering);
  // Brokers whose connection / write health is exported.
  void add_broker(const std::string& name, Broker& broker);

  void start();
  void stop();  // idempotent; joins the thread

  // The pool size last applied (autoscaled) or `concurrency` (fixed). Any thread.
  uint32_t desired(const std::string& function) const;
  bool autoscaled(const std::string& function) const;

 private:
  // Sizing of one function's pool: fixed at `concurrency`, or the autoscaler's.
  struct Sized {
    const FunctionConfig* fn = nullptr;
    Runtime* runtime = nullptr;
    uint32_t events_per_worker = 1;
    std::unique_ptr<Autoscaler> scaler;  // null: fixed pool
    std::unique_ptr<RateMeter> meter;
    uint64_t invocations_seen = 0;  // FunctionStats totals at the last tick
    double invocation_seconds_seen = 0;
    std::vector<std::pair<Source*, Ordering>> sources;  // subscriptions (+ retry topic)
    std::atomic<uint32_t> desired{0};
  };
  using Lags = std::map<Source*, Result<std::vector<PartitionLag>>>;

  void run();
  Lags read_lags();
  void scale(const Lags& lags, const std::vector<dispatcher::FunctionStats>& stats);
  void apply(const std::string& name, Sized& f, uint32_t size, const std::string& why);
  void sync_broker_health();
  void sync_worker_counters();

  metrics::Metrics& metrics_;
  dispatcher::Dispatcher& dispatcher_;
  std::map<std::string, std::unique_ptr<Sized>> functions_;
  std::vector<Source*> sources_;  // each once, in the order first routed
  std::map<std::string, Broker*> brokers_;
  // Counters already added to the metrics (loop thread only).
  std::map<std::string, uint64_t> reconnects_seen_;
  std::map<std::string, uint64_t> write_failures_seen_;
  std::map<std::string, PoolStats> worker_output_seen_;
  std::array<uint64_t, 4> exhaustion_seen_{};  // emfile, enfile, eagain, enomem

  std::mutex mu_;  // pairs with cv_; guards stop_
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace sluice::scaling
