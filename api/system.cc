#include "api/system.h"

#include <nlohmann/json.hpp>

#include "config/values.h"
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

nlohmann::json filter_json(const filter::SubscriptionFilter& f) {
  if (!f) return nullptr;
  const char* dialect = filter::to_string(f.dialect());
  switch (f.dialect()) {
    case filter::Dialect::exact:
    case filter::Dialect::prefix:
    case filter::Dialect::suffix: {
      nlohmann::json pairs = nlohmann::json::object();
      for (auto& [name, value] : f.pairs()) pairs[name] = value;
      return {{dialect, pairs}};
    }
    case filter::Dialect::all:
    case filter::Dialect::any: {
      nlohmann::json children = nlohmann::json::array();
      for (const auto& c : f.children()) children.push_back(filter_json(c));
      return {{dialect, children}};
    }
    case filter::Dialect::not_:
      return {{dialect, filter_json(f.children().front())}};
    case filter::Dialect::sql:
      return {{dialect, f.sql_text()}};
  }
  return nullptr;
}

nlohmann::json function_config_json(const FunctionConfig& fn) {
  nlohmann::json subs = nlohmann::json::array();
  for (const auto& s : fn.subscribe)
    subs.push_back({{"broker", s.broker},
                    {"topic", s.topic},
                    {"ordering", to_string(s.ordering)},
                    {"filter", filter_json(s.filter)}});
  nlohmann::json rate = nullptr;
  if (fn.rate_limit)
    rate = {{"per_second", fn.rate_limit->per_second},
            {"burst", fn.rate_limit->burst},
            {"by", fn.rate_limit->by_key ? "key" : "function"}};
  return {{"name", fn.name},
          {"runtime", to_string(fn.runtime)},
          {"subscriptions", subs},
          {"concurrency", fn.concurrency},
          {"rate_limit", rate},
          {"max_per_key", fn.max_per_key},
          {"max_age", fn.max_age.count() > 0 ? nlohmann::json(config::format_duration(fn.max_age))
                                             : nlohmann::json(nullptr)},
          {"on_expired", fn.on_expired == OnExpired::drop ? "drop" : "dead_letter"}};
}

void add_system_routes(HttpServer& server, SystemView view) {
  server.route(Verb::get, "/system/functions", [view = std::move(view)](Request&&, Responder res) {
    nlohmann::json out = nlohmann::json::array();
    auto stats = view.dispatcher->stats();
    for (const auto& fn : view.config->functions) {
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
      nlohmann::json entry = function_config_json(fn);
      entry.update({{"replicas", ps.workers},
                    {"workers", ps.workers},
                    {"workers_desired", pool.desired},
                    {"autoscaled", pool.autoscaled},
                    {"inflight", held},
                    {"running", running},
                    {"paused", paused}});
      out.push_back(std::move(entry));
    }
    res(json_response(Status::ok, out.dump()));
  });
}

}  // namespace sluice::api
