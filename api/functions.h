// The function-invocation routes of the HTTP API (PRODUCT.md §5):
//
//   POST /function/{name}        synchronous: run at once by the dispatcher within the
//                                function's budget (Dispatcher::invoke_sync; no queue);
//                                the function's result is the response body.
//   POST /async-function/{name}  asynchronous: the event is published to the function's
//                                first subscription and 202 is returned once it is
//                                durable; an `X-Callback-Url` (http/https only) receives
//                                the result when the function finished (see
//                                api/callbacks.h); a URL
//                                whose host is a literal address the callback policy
//                                refuses (http.callback_allow) is 400.
//
// Answers of the synchronous path: 200 success (Content-Type from the function),
// 422 rejected, 500 error, 502 crash, 504 timeout, 503 + Retry-After when the function
// asked to be called later or its emitted events could not be published, 429 +
// Retry-After when `concurrency` synchronous calls are already running or the function
// holds its whole budget of events (the dispatcher's queue_budget / max_inflight_bytes).
// An unknown function is 404, never a 202 for nothing.
//
// Threads: handlers run on HTTP strands; synchronous results arrive on the dispatcher
// thread and are answered through the Responder. No mutable state after construction.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "broker-adapters/http/callback_policy.h"
#include "broker-adapters/http/http_server.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/seal.h"
#include "metrics/metrics.h"

namespace sluice::dispatcher {
class Dispatcher;
}  // namespace sluice::dispatcher

namespace sluice::api {

class FunctionRoutes {
 public:
  // Everything passed must outlive the API (the engine owns it all). `sinks` are the
  // brokers' sinks by name that asynchronous invocations publish through (the engine
  // passes the ones POST /topics uses, so both count in sluice_published_total).
  FunctionRoutes(const Config& cfg, dispatcher::Dispatcher& dispatcher,
                 const std::map<std::string, Sink*>& sinks, metrics::Metrics& metrics);
  void add_to(http::HttpServer& server);
  // Set-up, before the routes serve: the key that seals the callback headers of
  // asynchronous invocations (core/seal.h). Without one no callback is requested.
  void set_control_keys(const seal::Keyring* keys) { control_keys_ = keys; }

 private:
  struct Fn {
    const FunctionConfig* config = nullptr;
    Sink* queue_sink = nullptr;   // the first subscription's broker
    std::string queue_topic;      // the first subscription's topic
  };
  void invoke_sync(http::Request&& req, http::Responder res);
  void invoke_async(http::Request&& req, http::Responder res);
  Fn* find(const http::Request& req, std::string_view prefix, std::string* name);

  dispatcher::Dispatcher& dispatcher_;
  std::map<std::string, std::unique_ptr<Fn>> fns_;
  const seal::Keyring* control_keys_ = nullptr;
  const http::CallbackPolicy callback_policy_;    // refuses literal callback addresses
  prometheus::Counter* callbacks_refused_;        // sluice_callbacks_total{outcome="refused"}
};

}  // namespace sluice::api
