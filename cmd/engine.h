// The engine behind `sluice run`: opens the brokers, starts the worker pools, the
// dispatcher, the sources, HTTP ingress and metrics; on a signal drains in-flight
// work up to `engine.drain_timeout`, commits, and stops everything in order.
//
// Threads: the caller's thread runs start()/run_until_signal()/shutdown(); each
// component runs its own threads (see their headers). scaling::LagLoop's thread polls
// the sources' lag every 2 s into the lag gauges and sizes the worker pools.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/runtime.h"
#include "core/seal.h"
#include "dispatcher/dispatcher.h"
#include "metrics/metrics.h"
#include "scaling/lag_loop.h"
#include "topology/plan.h"  // internal_topics

namespace sluice::http {
class CallbackSink;
class MetricsListener;
}  // namespace sluice::http
namespace sluice::api {
class Callbacks;
class HttpApi;
}  // namespace sluice::api
namespace sluice::metrics {
class CountedSink;
}  // namespace sluice::metrics

namespace sluice::cmd {

class Engine {
 public:
  explicit Engine(const Config& cfg);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Opens and starts everything; on failure whatever started is stopped again.
  Result<void> start();
  // Graceful stop: intake stops, in-flight work drains (up to the deadline), the
  // finished prefix is committed. Returns true when nothing was abandoned.
  bool shutdown();

  uint16_t http_port() const;     // 0 when HTTP is off
  uint16_t metrics_port() const;  // 0 when metrics are off
  // /readyz: started, not stopping, and every broker that stores events can write.
  bool ready() const;

 private:

  const Config& cfg_;
  metrics::Metrics metrics_;
  // engine.control_key_file, loaded (or created) first: the dispatcher and the
  // invoke API seal with it, so it outlives them.
  std::optional<seal::Keyring> control_keys_;
  std::map<std::string, std::unique_ptr<Broker>> brokers_;
  // HTTP ingress publishes through these (over brokers_' sinks), so its events count
  // in sluice_published_total; the dispatcher counts its own publishes.
  std::map<std::string, std::unique_ptr<metrics::CountedSink>> ingress_sinks_;
  std::map<std::string, std::unique_ptr<Runtime>> runtimes_;
  std::vector<std::unique_ptr<Source>> sources_;
  // Screens callback requests and builds callbacks for the dispatcher (api/callbacks.h);
  // outlives it.
  std::unique_ptr<api::Callbacks> callback_hook_;
  std::unique_ptr<dispatcher::Dispatcher> dispatcher_;
  // Lag gauges and pool sizing, on a thread of its own (scaling/lag_loop.h).
  std::unique_ptr<scaling::LagLoop> lag_loop_;
  std::unique_ptr<http::CallbackSink> callbacks_;  // results of async invocations
  std::unique_ptr<api::HttpApi> http_;  // the HTTP listener and its routes (api/)
  std::unique_ptr<http::MetricsListener> metrics_listener_;  // metrics.listen
  std::atomic<bool> ready_{false};
};

}  // namespace sluice::cmd
