#include "api/topics.h"

#include <memory>

#include "api/request_event.h"
#include "core/topic.h"

namespace sluice::api {

using namespace http;  // the transport: Request, Status, json_error, ...

namespace {

constexpr std::string_view kTopicsPrefix = "/topics/";

Response publish_failed(const Error& err) {
  bool retriable = err.retriable || err.code == Errc::unavailable ||
                   err.code == Errc::overloaded || err.code == Errc::timeout ||
                   err.code == Errc::closed || err.code == Errc::no_space;
  Status status = retriable                             ? Status::service_unavailable
                  : err.code == Errc::invalid_argument ? Status::bad_request
                                                       : Status::internal_server_error;
  Response res = json_error(status, "publish failed: " + err.message);
  if (retriable) res.set(bhttp::field::retry_after, "1");
  return res;
}

// {"id":…,"offset":…,"partition":…,"topic":…}: the keys in the order nlohmann::json
// writes them, built without a json tree (this runs once per published event).
std::string accepted_body(const std::string& id, const std::string& topic,
                          const PublishAck& ack) {
  std::string body;
  body.reserve(96 + id.size() + topic.size());
  body += "{\"id\":";
  append_json_string(body, id);
  body += ",\"offset\":";
  body += std::to_string(ack.offset);
  body += ",\"partition\":";
  body += std::to_string(ack.partition);
  body += ",\"topic\":";
  append_json_string(body, ack.topic.empty() ? topic : ack.topic);
  body += '}';
  return body;
}

}  // namespace

TopicRoutes::TopicRoutes(std::map<std::string, Sink*> sinks, std::string default_broker)
    : sinks_(std::move(sinks)), default_broker_(std::move(default_broker)) {}

Result<void> TopicRoutes::check() const {
  if (!sinks_.count(default_broker_))
    return Error{Errc::invalid_argument,
                 "http: default broker '" + default_broker_ + "' has no sink"};
  return ok();
}

void TopicRoutes::add_to(HttpServer& server) {
  server.route(Verb::post, std::string(kTopicsPrefix),
               [this](Request&& req, Responder res) { publish(std::move(req), std::move(res)); });
}

void TopicRoutes::publish(Request&& req, Responder res) {
  auto raw = target_path(sv(req.target())).substr(kTopicsPrefix.size());
  auto topic = url_decode(raw);
  if (!topic || !is_valid_topic_name(topic.value())) {
    auto why = topic ? topic_name_error(topic.value()) : std::nullopt;
    return res(json_error(Status::bad_request,
                          "invalid topic name '" + printable_topic(raw) + "': " +
                              why.value_or("1 to 249 characters of A-Z a-z 0-9 . _ -")));
  }
  if (reserved_.count(topic.value()))
    return res(json_error(Status::forbidden,
                          "topic '" + topic.value() +
                              "' is internal to sluice (a function's retry or dead-letter "
                              "topic): publishing to it over HTTP is refused"));
  auto broker = query_param(sv(req.target()), "broker");
  if (!broker) return res(json_error(Status::bad_request, broker.error().message));
  const std::string& name = broker.value().empty() ? default_broker_ : broker.value();
  auto sink = sinks_.find(name);
  if (sink == sinks_.end())
    return res(json_error(Status::bad_request, "unknown broker '" + name + "'"));
  if (unknown_) {
    if (auto why = unknown_(name, topic.value())) return res(json_error(Status::not_found, *why));
  }

  Status bad = Status::bad_request;
  auto ev = event_of_request(req, &bad);
  if (!ev) return res(json_error(bad, ev.error().message));
  Event& event = ev.value();
  event.topic = topic.value();

  // PublishCallback is a std::function (copyable); the Responder is move-only.
  auto responder = std::make_shared<Responder>(std::move(res));
  std::string id = event.id;  // copied first: `event` is moved into publish()
  sink->second->publish(
      topic.value(), std::move(event),
      [responder, id = std::move(id), topic = topic.value()](Result<PublishAck> r) {
        if (!r) return (*responder)(publish_failed(r.error()));
        (*responder)(json_response(Status::accepted, accepted_body(id, topic, r.value())));
      });
}

}  // namespace sluice::api
