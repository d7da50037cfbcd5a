#include "api/functions.h"

#include <nlohmann/json.hpp>

#include "api/callbacks.h"
#include "api/request_event.h"
#include "broker-adapters/http/callback_policy.h"
#include "dispatcher/dispatcher.h"

namespace sluice::api {

namespace {

constexpr std::string_view kSync = "/function/";
constexpr std::string_view kAsync = "/async-function/";

http::Response outcome_response(const std::string& id, InvocationResult&& r) {
  using http::Status;
  http::Response res;
  if (r.outcome == Outcome::success) {
    res.result(Status::ok);
    res.set(http::bhttp::field::content_type,
            r.content_type.empty() ? "application/octet-stream" : r.content_type);
    res.body() = std::move(r.output);
  } else {
    Status st = Status::internal_server_error;
    if (r.outcome == Outcome::rejected) st = Status::unprocessable_entity;
    if (r.outcome == Outcome::crash) st = Status::bad_gateway;
    if (r.outcome == Outcome::timeout) st = Status::gateway_timeout;
    if (r.retry_after) st = Status::service_unavailable;
    res = http::json_response(st, error_body(r));
    if (r.retry_after)
      res.set(http::bhttp::field::retry_after,
              std::to_string(std::max<int64_t>(1, (r.retry_after->count() + 999) / 1000)));
  }
  res.set("X-Call-Id", id);
  res.set("X-Function-Outcome", to_string(r.outcome));
  return res;
}

}  // namespace

FunctionRoutes::FunctionRoutes(const Config& cfg, dispatcher::Dispatcher& dispatcher,
                               const std::map<std::string, Sink*>& sinks, metrics::Metrics& metrics)
    : dispatcher_(dispatcher),
      callback_policy_(cfg.http.callback_allow),
      callbacks_refused_(&metrics.callbacks.Add({{"outcome", "refused"}})) {
  for (const auto& fc : cfg.functions) {
    auto fn = std::make_unique<Fn>();
    fn->config = &fc;
    if (!fc.subscribe.empty()) {
      fn->queue_sink = sinks.at(fc.subscribe.front().broker);
      fn->queue_topic = fc.subscribe.front().topic;
    }
    fns_.emplace(fc.name, std::move(fn));
  }
}

void FunctionRoutes::add_to(http::HttpServer& server) {
  server.route(http::Verb::post, std::string(kSync),
               [this](http::Request&& req, http::Responder res) {
                 invoke_sync(std::move(req), std::move(res));
               });
  server.route(http::Verb::post, std::string(kAsync),
               [this](http::Request&& req, http::Responder res) {
                 invoke_async(std::move(req), std::move(res));
               });
}

FunctionRoutes::Fn* FunctionRoutes::find(const http::Request& req, std::string_view prefix,
                                         std::string* name) {
  auto raw = http::target_path(http::sv(req.target())).substr(prefix.size());
  auto decoded = http::url_decode(raw);
  *name = decoded ? decoded.value() : std::string(raw);
  auto it = fns_.find(*name);
  return it == fns_.end() ? nullptr : it->second.get();
}

void FunctionRoutes::invoke_sync(http::Request&& req, http::Responder res) {
  std::string name;
  Fn* fn = find(req, kSync, &name);
  if (!fn) return res(http::json_error(http::Status::not_found, "unknown function '" + name + "'"));
  http::Status bad = http::Status::bad_request;
  auto ev = event_of_request(req, &bad);
  if (!ev) return res(http::json_error(bad, ev.error().message));
  Event event = std::move(ev).value();
  event.broker = "http";
  std::string id = event.id;
  // Bounded like the queued path: the dispatcher admits it within the function's budget.
  auto responder = std::make_shared<http::Responder>(std::move(res));
  dispatcher_.invoke_sync(name, std::move(event), [responder, id = std::move(id)](dispatcher::SyncAnswer&& a) {
    switch (a.status) {
      case dispatcher::SyncAnswer::Status::done:
        return (*responder)(outcome_response(id, std::move(a.result)));
      case dispatcher::SyncAnswer::Status::busy: {
        auto busy = http::json_error(http::Status::too_many_requests, a.message);
        busy.set(http::bhttp::field::retry_after, "1");
        return (*responder)(std::move(busy));
      }
      case dispatcher::SyncAnswer::Status::output_failed:
        return (*responder)(http::json_error(http::Status::service_unavailable,
                                             "the function ran but its emitted events could "
                                             "not be published; retry the call"));
      case dispatcher::SyncAnswer::Status::stopped: {
        auto out = http::json_error(http::Status::service_unavailable, a.message);
        out.set(http::bhttp::field::retry_after, "1");
        return (*responder)(std::move(out));
      }
    }
  });
}

void FunctionRoutes::invoke_async(http::Request&& req, http::Responder res) {
  std::string name;
  Fn* fn = find(req, kAsync, &name);
  if (!fn) return res(http::json_error(http::Status::not_found, "unknown function '" + name + "'"));
  if (!fn->queue_sink)
    return res(http::json_error(http::Status::conflict,
                                "function '" + name + "' subscribes to no topic"));
  if (fn->queue_topic.find_first_of("*>") != std::string::npos)
    return res(http::json_error(
        http::Status::conflict, "function '" + name + "' subscribes to the wildcard subject '" +
                                    fn->queue_topic +
                                    "'; publish to a concrete subject with POST /topics/{subject}"));
  const std::string callback(http::sv(req["X-Callback-Url"]));
  if (!callback.empty()) {
    auto u = http::parse_callback_url(callback);
    if (!u) return res(http::json_error(http::Status::bad_request, u.error().message));
    // A literal address is checked now; a name where it resolves to, at connect time.
    if (auto allowed = callback_policy_.check_url(u.value()); !allowed) {
      callbacks_refused_->Increment();
      return res(http::json_error(http::Status::bad_request, allowed.error().message));
    }
  }
  http::Status bad = http::Status::bad_request;
  auto ev = event_of_request(req, &bad);
  if (!ev) return res(http::json_error(bad, ev.error().message));
  Event& event = ev.value();
  // Only this function calls back (others subscribed to the topic run it too).
  request_callback(event, callback, name, control_keys_);
  event.topic = fn->queue_topic;
  auto responder = std::make_shared<http::Responder>(std::move(res));
  std::string id = event.id;
  fn->queue_sink->publish(
      fn->queue_topic, std::move(event),
      [responder, id, topic = fn->queue_topic, name](Result<PublishAck> r) {
        if (!r) {
          auto out = http::json_error(http::Status::service_unavailable,
                                      "publish failed: " + r.error().message);
          out.set(http::bhttp::field::retry_after, "1");
          return (*responder)(std::move(out));
        }
        nlohmann::json body = {{"id", id}, {"function", name}, {"topic", topic},
                               {"partition", r.value().partition}, {"offset", r.value().offset}};
        auto out = http::json_response(http::Status::accepted, body.dump());
        out.set("X-Call-Id", id);
        (*responder)(std::move(out));
      });
}

}  // namespace sluice::api
