// The system and health routes of the HTTP listener (PRODUCT.md §5):
//
//   GET /healthz             200 {"status":"ok"}                      (no auth)
//   GET /readyz              200, or 503 while `ready()` says no      (no auth)
//   GET /metrics             Prometheus text from `metrics_text()`
//   GET /system/functions    every function: subscriptions (with their filters), flow
//                            control (rate_limit, max_per_key, max_age), workers, in
//                            flight, paused
//
// Threads: the handlers run on the HTTP connection strands. What they are given must
// be callable from any thread and outlive the server.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "broker-adapters/http/http_server.h"
#include "config/config.h"
#include "core/runtime.h"

namespace sluice::dispatcher {
class Dispatcher;
}  // namespace sluice::dispatcher

namespace sluice::api {

// Null `ready` is always ready; null `metrics_text` serves an empty page.
void add_health_routes(http::HttpServer& server, std::function<bool()> ready,
                       std::function<std::string()> metrics_text);

// The sizing of a function's pool, as the engine decided it last.
struct PoolView {
  uint32_t desired = 0;
  bool autoscaled = false;
};

// What GET /system/functions reads; everything must outlive the server.
struct SystemView {
  const Config* config = nullptr;
  const dispatcher::Dispatcher* dispatcher = nullptr;
  const std::map<std::string, std::unique_ptr<Runtime>>* runtimes = nullptr;
  std::function<PoolView(const std::string& function)> pool;
};
void add_system_routes(http::HttpServer& server, SystemView view);

// A subscription filter as written in the config: {"sql": "..."} or the dialect map
// ({"exact": {"type": "..."}}, {"all": [...]}, {"not": {...}}); null for none.
nlohmann::json filter_json(const filter::SubscriptionFilter& f);
// What the config says of a function, as GET /system/functions shows it (the CLI shows
// the same when the engine does not answer): name, runtime, subscriptions (broker,
// topic, ordering, filter), concurrency, rate_limit ({per_second, burst, by} or null),
// max_per_key (0 = none), max_age ("15m" or null) and on_expired.
nlohmann::json function_config_json(const FunctionConfig& fn);

}  // namespace sluice::api
