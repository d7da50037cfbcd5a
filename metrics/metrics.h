// The Prometheus metrics of PRODUCT.md section 7, declared in one place.
//
// `Metrics` owns the registry and every family; components take the family they
// report into (or a per-function `FunctionProbe`) at start-up and keep the child
// pointers, so the hot path only touches atomics. prometheus-cpp metric children are
// thread-safe; family lookups (Add) take the family's lock and are done at start-up
// or rarely (new topic/partition labels).
#pragma once

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/broker.h"
#include "core/result.h"
#include "core/runtime.h"
#include "metrics/process_collector.h"

namespace sluice::metrics {

class Metrics {
 public:
  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  prometheus::Registry& registry() { return *registry_; }
  std::string text() const;  // the exposition text of everything registered

  // A broker adapter's probe, read at every scrape into
  // sluice_broker_errors_total{broker,kind} (core/broker.h BrokerProbe). Held weakly:
  // a broker gone since is skipped. Any thread.
  void add_probe(std::string broker, std::weak_ptr<const BrokerProbe> probe);

  prometheus::Family<prometheus::Counter>& events_received;  // {broker,topic}
  prometheus::Family<prometheus::Counter>& invocations;      // {function,outcome}
  prometheus::Family<prometheus::Histogram>& duration;       // {function}
  prometheus::Family<prometheus::Counter>& retries;          // {function}
  prometheus::Family<prometheus::Counter>& dead_letters;     // {function,reason}
  prometheus::Family<prometheus::Gauge>& inflight;           // {function}
  prometheus::Family<prometheus::Gauge>& workers;            // {function}
  prometheus::Family<prometheus::Gauge>& workers_desired;    // {function}
  prometheus::Family<prometheus::Gauge>& consumer_lag;       // {broker,topic,partition,group}
  prometheus::Family<prometheus::Gauge>& consumer_lag_seconds;
  prometheus::Family<prometheus::Counter>& published;        // {broker,topic}
  prometheus::Family<prometheus::Counter>& errors;           // {component,kind}: degraded modes
  prometheus::Family<prometheus::Gauge>& broker_connected;   // {broker}: 1 connected, 0 not
  prometheus::Family<prometheus::Counter>& broker_reconnects;  // {broker}
  // Bytes a function process wrote (stderr, an http server's stdout; stdio Log
  // frames) over its caps, not logged: {function,stream="stderr"|"log"}.
  prometheus::Family<prometheus::Counter>& worker_output_dropped;
  // HTTP listeners (listener: http | metrics): connections open now, and those
  // refused over max_connections or for want of file descriptors.
  prometheus::Family<prometheus::Gauge>& http_connections;            // {listener}
  prometheus::Family<prometheus::Counter>& http_connections_refused;  // {listener}
  // The local queue's disk (Broker::write_health): 0 while it cannot write (full).
  prometheus::Family<prometheus::Gauge>& local_queue_writable;         // {broker}
  prometheus::Family<prometheus::Counter>& local_queue_write_failures;  // {broker}
  // Control headers (core/seal.h) whose seal did not verify: dropped, the event run
  // as a plain one. {function,kind}: kind callback | retry.
  prometheus::Family<prometheus::Counter>& control_headers_rejected;
  // {outcome}: delivered | failed | gave_up | refused | rejected_full (http::CallbackSink)
  prometheus::Family<prometheus::Counter>& callbacks;
  // 1 while a function is paused (`sluice pause`, `paused: true`), else 0: {function}.
  prometheus::Family<prometheus::Gauge>& function_paused;
  // 1 while every function a consumer feeds is paused (its lag grows on purpose), else
  // 0: {broker,topic,group}, the labels of sluice_consumer_lag. The lag alerts skip it.
  prometheus::Family<prometheus::Gauge>& consumer_paused;
  // Invocations that waited for a token of the function's rate_limit, and synchronous
  // calls refused for want of one: {function}.
  prometheus::Family<prometheus::Counter>& events_throttled;
  // {function}: events a subscription's filter did not pass (committed, not invoked).
  prometheus::Family<prometheus::Counter>& events_filtered;
  // Event age (dispatcher/age.h): seconds since an event was made (CloudEvents
  // `time`, else the broker timestamp) when an invocation of it starts, and events
  // not invoked because they were older than max_age. {function}
  prometheus::Family<prometheus::Histogram>& event_age;
  prometheus::Family<prometheus::Counter>& events_expired;

 private:
  explicit Metrics(std::shared_ptr<prometheus::Registry> r);
  std::shared_ptr<prometheus::Registry> registry_;

  // The process itself: sluice_build_info{version,commit} (always 1, registered at
  // construction) and the process_* families (ProcessCollector, read at each
  // text()).
  void register_build_info();
  ProcessCollector process_;
  // sluice_broker_errors_total from the probes (no sample when there are none).
  prometheus::MetricFamily broker_errors() const;
  mutable std::mutex probes_mu_;  // guards probes_
  std::vector<std::pair<std::string, std::weak_ptr<const BrokerProbe>>> probes_;
};

// The children one function reports into, looked up once.
struct FunctionProbe {
  FunctionProbe(Metrics& m, const std::string& function);
  void invoked(Outcome o, double seconds);
  void dead_lettered(Outcome reason);
  void dead_lettered(const char* reason);  // a class of its own (`expired`)

  std::array<prometheus::Counter*, 5> outcomes{};  // indexed by Outcome
  prometheus::Histogram* duration = nullptr;
  prometheus::Counter* retries = nullptr;
  prometheus::Gauge* inflight = nullptr;
  prometheus::Gauge* workers = nullptr;
  prometheus::Gauge* workers_desired = nullptr;
  prometheus::Gauge* paused = nullptr;
  // Events a subscription's filter did not pass: committed without an invocation.
  prometheus::Counter* filtered = nullptr;
  prometheus::Histogram* age = nullptr;     // sluice_event_age_seconds
  prometheus::Counter* expired = nullptr;   // sluice_events_expired_total

 private:
  Metrics& m_;
  std::string function_;
};

}  // namespace sluice::metrics
