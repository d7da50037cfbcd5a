// The engine behind `sluice run`: opens the brokers, starts the worker pools, the
// dispatcher, the sources, HTTP ingress and metrics; on a signal drains in-flight
// work up to `engine.drain_timeout`, commits, and stops everything in order.
//
// Threads: the caller's thread runs start()/run_until_signal()/shutdown(); each
// component runs its own threads (see their headers). A small lag thread polls the
// sources' lag every few seconds into the lag gauges.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/runtime.h"
#include "core/seal.h"
#include "dispatcher/dispatcher.h"
#include "metrics/metrics.h"
#include "scaling/autoscaler.h"

namespace sluice {

namespace http {
class CallbackSink;
class MetricsListener;
}  // namespace http
namespace api {
class Callbacks;
class HttpApi;
}  // namespace api

// The topics only sluice writes to: every function's retry topic and dead-letter
// topic (HTTP ingress refuses them; `sluice publish` needs --internal).
std::set<std::string> internal_topics(const Config& cfg);

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

  uint16_t http_port() const;  // 0 when HTTP is off
  // /readyz: started, not stopping, and every broker that stores events can write.
  bool ready() const;

 private:
  // Sizing of one function's pool: fixed at `concurrency`, or the autoscaler's.
  struct Pool {
    const FunctionConfig* fn = nullptr;
    std::unique_ptr<scaling::Autoscaler> scaler;  // null: fixed pool
    std::unique_ptr<scaling::RateMeter> meter;
    std::vector<std::pair<Source*, Ordering>> sources;  // subscriptions (+ retry topic)
    std::atomic<uint32_t> desired{0};
  };
  void scale(const std::map<Source*, Result<std::vector<PartitionLag>>>& lags,
             const std::vector<FunctionStats>& stats);

  void lag_loop();

  const Config& cfg_;
  Metrics metrics_;
  // engine.control_key_file, loaded (or created) first: the dispatcher and the
  // invoke API seal with it, so it outlives them.
  std::optional<seal::Keyring> control_keys_;
  std::map<std::string, std::unique_ptr<Broker>> brokers_;
  std::map<std::string, std::unique_ptr<Runtime>> runtimes_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::map<std::string, std::unique_ptr<Pool>> pools_;
  std::map<std::string, uint64_t> reconnects_seen_;  // lag thread only
  // Function process counters already added to the metrics (lag thread only).
  std::map<std::string, PoolStats> worker_output_seen_;
  std::array<uint64_t, 4> exhaustion_seen_{};  // emfile, enfile, eagain, enomem
  void sync_worker_counters();
  std::map<std::string, uint64_t> write_failures_seen_;  // lag thread only
  // Screens callback requests and builds callbacks for the dispatcher (api/callbacks.h);
  // outlives it.
  std::unique_ptr<api::Callbacks> callback_hook_;
  std::unique_ptr<Dispatcher> dispatcher_;
  std::unique_ptr<http::CallbackSink> callbacks_;  // results of async invocations
  std::unique_ptr<api::HttpApi> http_;  // the HTTP listener and its routes (api/)
  std::unique_ptr<http::MetricsListener> metrics_listener_;  // metrics.listen
  std::atomic<bool> ready_{false};

  std::mutex lag_mu_;
  std::condition_variable lag_cv_;
  bool lag_stop_ = false;
  std::thread lag_thread_;
};

}  // namespace sluice
