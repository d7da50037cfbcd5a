#include "api/system.h"

#include <nlohmann/json.hpp>

#include "dispatcher/dispatcher.h"

namespace sluice::api {

using namespace http;  // the transport: Request, Status, json_response, ...

void add_health_routes(HttpServer& server, std::function<bool()> ready,
                       std::function<std::string()> metrics_text) {
  server.route(
      Verb::get, "/healthz",
      [](Request&&, Responder res) { res(json_response(Status::ok, R"({"status":"ok"})")); },
      Auth::none);
  server.route(
      Verb::get, "/readyz",
      [ready = std::move(ready)](Request&&, Responder res) {
        if (!ready || ready()) return res(json_response(Status::ok, R"({"status":"ready"})"));
        res(json_error(Status::service_unavailable, "not ready"));
      },
      Auth::none);
  server.route(Verb::get, "/metrics",
               [metrics_text = std::move(metrics_text)](Request&&, Responder res) {
                 Response out{Status::ok, 11};
                 out.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
                 if (metrics_text) out.body() = metrics_text();
                 res(std::move(out));
               });
}

void add_system_routes(HttpServer& server, SystemView view) {
  server.route(Verb::get, "/system/functions", [view = std::move(view)](Request&&, Responder res) {
    nlohmann::json out = nlohmann::json::array();
    auto stats = view.dispatcher->stats();
    for (const auto& fn : view.config->functions) {
      nlohmann::json subs = nlohmann::json::array();
      for (const auto& s : fn.subscribe)
        subs.push_back({{"broker", s.broker}, {"topic", s.topic},
                        {"ordering", to_string(s.ordering)}});
      size_t held = 0, running = 0;
      bool paused = false;
      for (const auto& st : stats)
        if (st.name == fn.name) {
          held = st.held;
          running = st.running;
          paused = st.paused;
        }
      auto ps = view.runtimes->at(fn.name)->stats();
      const PoolView pool = view.pool(fn.name);
      out.push_back({{"name", fn.name},
                     {"runtime", to_string(fn.runtime)},
                     {"subscriptions", subs},
                     {"replicas", ps.workers},
                     {"workers", ps.workers},
                     {"workers_desired", pool.desired},
                     {"autoscaled", pool.autoscaled},
                     {"concurrency", fn.concurrency},
                     {"inflight", held},
                     {"running", running},
                     {"paused", paused}});
    }
    res(json_response(Status::ok, out.dump()));
  });
}

}  // namespace sluice::api
