#include "metrics/metrics.h"

#include <prometheus/text_serializer.h>

#include "core/version.h"
#include "metrics/build_info.h"

namespace sluice::metrics {

using prometheus::BuildCounter;
using prometheus::BuildGauge;
using prometheus::BuildHistogram;

namespace {
std::shared_ptr<prometheus::Registry> make_registry() {
  return std::make_shared<prometheus::Registry>();
}
}  // namespace

Metrics::Metrics() : Metrics(make_registry()) {}

// Delegating through a private constructor would need the registry before the
// families; build the registry in a static helper and bind the references here.
Metrics::Metrics(std::shared_ptr<prometheus::Registry> r)
    : events_received(BuildCounter()
                          .Name("sluice_events_received_total")
                          .Help("Events received from brokers, per broker and topic")
                          .Register(*r)),
      invocations(BuildCounter()
                      .Name("sluice_invocations_total")
                      .Help("Function invocations by outcome")
                      .Register(*r)),
      duration(BuildHistogram()
                   .Name("sluice_invocation_duration_seconds")
                   .Help("Duration of one function invocation")
                   .Register(*r)),
      retries(BuildCounter()
                  .Name("sluice_retries_total")
                  .Help("Invocations retried after a failure")
                  .Register(*r)),
      dead_letters(BuildCounter()
                       .Name("sluice_dead_letters_total")
                       .Help("Events written to the dead-letter queue, by reason")
                       .Register(*r)),
      inflight(BuildGauge()
                   .Name("sluice_inflight")
                   .Help("Events a function holds now (queued, running or waiting to retry)")
                   .Register(*r)),
      workers(BuildGauge().Name("sluice_workers").Help("Workers running now").Register(*r)),
      workers_desired(BuildGauge()
                          .Name("sluice_workers_desired")
                          .Help("Workers the autoscaler wants")
                          .Register(*r)),
      consumer_lag(BuildGauge()
                       .Name("sluice_consumer_lag")
                       .Help("Messages waiting per partition and consumer group")
                       .Register(*r)),
      consumer_lag_seconds(BuildGauge()
                               .Name("sluice_consumer_lag_seconds")
                               .Help("Age of the oldest unconsumed message")
                               .Register(*r)),
      published(BuildCounter()
                    .Name("sluice_published_total")
                    .Help("Events published durably (outputs, retries, dead letters, ingress)")
                    .Register(*r)),
      errors(BuildCounter()
                 .Name("sluice_errors_total")
                 .Help("Failures sluice rode out, by component and kind")
                 .Register(*r)),
      broker_connected(BuildGauge()
                           .Name("sluice_broker_connected")
                           .Help("1 while the connection to the broker is up, 0 while it is "
                                 "down (reconnecting)")
                           .Register(*r)),
      broker_reconnects(BuildCounter()
                            .Name("sluice_broker_reconnects_total")
                            .Help("Connections to the broker re-established after a loss")
                            .Register(*r)),
      worker_output_dropped(BuildCounter()
                                .Name("sluice_worker_output_dropped_bytes_total")
                                .Help("Bytes of a function's stderr (stream=stderr) or stdio "
                                      "Log frames (stream=log) over their caps, not logged")
                                .Register(*r)),
      http_connections(BuildGauge()
                           .Name("sluice_http_connections")
                           .Help("Connections open now on an HTTP listener")
                           .Register(*r)),
      http_connections_refused(BuildCounter()
                                   .Name("sluice_http_connections_refused_total")
                                   .Help("Connections an HTTP listener refused (canned 503): over "
                                         "max_connections or no file descriptor free")
                                   .Register(*r)),
      local_queue_writable(BuildGauge()
                               .Name("sluice_local_queue_writable")
                               .Help("1 while the local queue can write, 0 while its disk is "
                                     "full (publishes answer 503, /readyz is not ready)")
                               .Register(*r)),
      local_queue_write_failures(BuildCounter()
                                     .Name("sluice_local_queue_write_failures_total")
                                     .Help("Events the local queue failed to write (full disk, "
                                           "I/O errors); their publishers got the error")
                                     .Register(*r)),
      control_headers_rejected(
          BuildCounter()
              .Name("sluice_control_headers_rejected_total")
              .Help("Records whose sluice control headers (callback, retry state) had no "
                    "valid seal: the headers were dropped")
              .Register(*r)),
      callbacks(BuildCounter()
                    .Name("sluice_callbacks_total")
                    .Help("Callbacks of asynchronous invocations, by outcome: delivered, "
                          "failed (one attempt), gave_up, refused (destination not allowed), "
                          "rejected_full (queue full, the event is held back)")
                    .Register(*r)),
      function_paused(BuildGauge()
                          .Name("sluice_function_paused")
                          .Help("1 while the function is paused (sluice pause), else 0")
                          .Register(*r)),
      consumer_paused(BuildGauge()
                          .Name("sluice_consumer_paused")
                          .Help("1 while every function the consumer feeds is paused (its lag "
                                "grows on purpose), else 0")
                          .Register(*r)),
      events_throttled(BuildCounter()
                           .Name("sluice_events_throttled_total")
                           .Help("Invocations that waited for a token of the function's "
                                 "rate_limit, and synchronous calls refused for want of one")
                           .Register(*r)),
      events_filtered(BuildCounter()
                          .Name("sluice_events_filtered_total")
                          .Help("Events a subscription's filter did not pass: committed "
                                "without an invocation")
                          .Register(*r)),
      event_age(BuildHistogram()
                    .Name("sluice_event_age_seconds")
                    .Help("Age of an event (CloudEvents time, else the broker timestamp) when "
                          "an invocation of it starts")
                    .Register(*r)),
      events_expired(BuildCounter()
                         .Name("sluice_events_expired_total")
                         .Help("Events not invoked because they were older than max_age "
                               "(dead-lettered as expired, or dropped by on_expired: drop)")
                         .Register(*r)),
      registry_(std::move(r)) {
  register_build_info();
}

std::string Metrics::text() const {
  prometheus::TextSerializer s;
  auto families = registry_->Collect();
  for (auto& f : process_.Collect()) families.push_back(std::move(f));
  if (auto f = broker_errors(); !f.metric.empty()) families.push_back(std::move(f));
  return s.Serialize(families);
}

void Metrics::register_build_info() {
  BuildGauge()
      .Name("sluice_build_info")
      .Help("The build of this sluice: version (the CMake project version) and git commit; "
            "always 1")
      .Register(*registry_)
      .Add({{"version", std::string(sluice::kVersion)}, {"commit", std::string(build::kCommit)}})
      .Set(1);
}

void Metrics::add_probe(std::string broker, std::weak_ptr<const BrokerProbe> probe) {
  std::lock_guard lk(probes_mu_);
  probes_.emplace_back(std::move(broker), std::move(probe));
}

prometheus::MetricFamily Metrics::broker_errors() const {
  prometheus::MetricFamily f{"sluice_broker_errors_total",
                             "Failures a broker adapter rode out, by broker and kind "
                             "(broker-adapters/README.md)",
                             prometheus::MetricType::Counter,
                             {}};
  std::lock_guard lk(probes_mu_);
  for (const auto& [broker, weak] : probes_) {
    auto probe = weak.lock();
    if (!probe) continue;
    for (const ErrorCount& c : probe->error_counts()) {
      prometheus::ClientMetric m;
      m.label = {{"broker", broker}, {"kind", std::string(c.kind)}};
      m.counter.value = static_cast<double>(c.count);
      f.metric.push_back(std::move(m));
    }
  }
  return f;
}

static const prometheus::Histogram::BucketBoundaries& duration_buckets() {
  static const prometheus::Histogram::BucketBoundaries b{
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  return b;
}

FunctionProbe::FunctionProbe(Metrics& m, const std::string& fn) : m_(m), function_(fn) {
  for (Outcome o : {Outcome::success, Outcome::error, Outcome::timeout, Outcome::crash,
                    Outcome::rejected})
    outcomes[static_cast<size_t>(o)] =
        &m.invocations.Add({{"function", fn}, {"outcome", to_string(o)}});
  duration = &m.duration.Add({{"function", fn}}, duration_buckets());
  retries = &m.retries.Add({{"function", fn}});
  inflight = &m.inflight.Add({{"function", fn}});
  workers = &m.workers.Add({{"function", fn}});
  workers_desired = &m.workers_desired.Add({{"function", fn}});
  paused = &m.function_paused.Add({{"function", fn}});
  filtered = &m.events_filtered.Add({{"function", fn}});
  static const prometheus::Histogram::BucketBoundaries kAgeBuckets{
      0.001, 0.01, 0.1, 1, 10, 60, 300, 900, 3600, 21600, 86400};
  age = &m.event_age.Add({{"function", fn}}, kAgeBuckets);
  expired = &m.events_expired.Add({{"function", fn}});
}

void FunctionProbe::invoked(Outcome o, double seconds) {
  outcomes[static_cast<size_t>(o)]->Increment();
  duration->Observe(seconds);
}

void FunctionProbe::dead_lettered(Outcome reason) { dead_lettered(dead_letter_reason(reason)); }

void FunctionProbe::dead_lettered(const char* reason) {
  m_.dead_letters.Add({{"function", function_}, {"reason", reason}}).Increment();
}

}  // namespace sluice::metrics
