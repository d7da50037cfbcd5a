#include "broker-adapters/http/ingress.h"

#include <array>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/cloudevents.h"
#include "core/topic.h"

namespace sluice::http {
namespace {

namespace ce = cloudevents;

constexpr std::string_view kTopicsPrefix = "/topics/";
constexpr std::string_view kKeyHeader = "x-sluice-key";

// Request headers that describe the connection, not the event: never stored.
// (Authorization and Cookie above all: credentials must not land in a topic.)
bool is_transport_header(std::string_view name) {
  static constexpr std::array<std::string_view, 17> kDrop = {
      "host",    "content-length", "connection",    "keep-alive",          "transfer-encoding",
      "te",      "trailer",        "upgrade",       "expect",              "authorization",
      "cookie",  "accept",         "accept-encoding", "proxy-authorization", "user-agent",
      "content-type", kKeyHeader};
  for (auto d : kDrop)
    if (iequals(name, d)) return true;
  return false;
}

bool is_ce_header(std::string_view name) {
  return name.size() > 3 && iequals(name.substr(0, 3), ce::kHttpPrefix);
}

std::string media_type(std::string_view content_type) {
  std::string_view mt = content_type.substr(0, content_type.find(';'));
  while (!mt.empty() && mt.back() == ' ') mt.remove_suffix(1);
  while (!mt.empty() && mt.front() == ' ') mt.remove_prefix(1);
  std::string out(mt);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Why a Content-Type cannot be published (415), if it cannot.
std::optional<std::string> unsupported_format(const std::string& mt) {
  if (mt == ce::kBatchContentType)
    return "batched CloudEvents (application/cloudevents-batch+json) are not supported: "
           "send one event per request";
  if (mt.rfind("application/cloudevents+", 0) == 0 && mt != ce::kStructuredContentType)
    return "event format '" + mt + "' is not supported: use application/cloudevents+json "
           "or binary mode (ce-* headers)";
  return std::nullopt;
}

Headers request_headers(const Request& req, bool keep_ce) {
  Headers out;
  for (const auto& f : req) {
    std::string_view name = sv(f.name_string());
    if (is_transport_header(name) || (!keep_ce && is_ce_header(name))) continue;
    out.push_back({std::string(name), std::string(sv(f.value()))});
  }
  return out;
}

// Plain mode: the body is the data; sluice fills in the CloudEvents attributes.
Result<Event> plain_event(Request& req) {
  Event e;
  for (const auto& f : req) {
    std::string_view name = sv(f.name_string());
    if (!is_ce_header(name)) continue;
    if (iequals(name, "ce-partitionkey")) {
      auto key = ce::percent_decode_header(sv(f.value()));
      if (!key) return Error{Errc::invalid_argument, "header 'ce-partitionkey': " + key.error().message};
      e.key = std::move(key).value();
      continue;
    }
    return Error{Errc::invalid_argument,
                 "header '" + std::string(name) +
                     "' needs binary mode: send 'ce-specversion: 1.0' with ce-id, ce-source "
                     "and ce-type"};
  }
  e.id = new_event_id();
  e.source = "/sluice/http";
  e.type = "io.sluice.publish";
  e.time = format_rfc3339(now_unix_ms());
  e.datacontenttype = std::string(sv(req[bhttp::field::content_type]));
  e.headers = request_headers(req, false);
  e.data = std::move(req.body());
  return e;
}

Result<Event> event_from_request(Request& req, const std::string& mt) {
  Result<Event> ev = Error{};
  if (mt == ce::kStructuredContentType) {
    ev = ce::parse_structured(req.body());
    if (ev) ev.value().headers = request_headers(req, false);
  } else if (req.find("ce-specversion") != req.end()) {
    ev = ce::parse_binary(request_headers(req, true), ce::kHttpPrefix, std::move(req.body()),
                          sv(req[bhttp::field::content_type]));
  } else {
    ev = plain_event(req);
  }
  if (ev && ev.value().key.empty()) ev.value().key = std::string(sv(req["X-Sluice-Key"]));
  return ev;
}

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

}  // namespace

bool is_valid_topic_name(std::string_view topic) {
  if (topic_name_error(topic)) return false;
  for (char c : topic) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

Result<Event> event_of_request(Request& req, Status* status) {
  const std::string mt = media_type(sv(req[bhttp::field::content_type]));
  if (auto why = unsupported_format(mt)) {
    *status = Status::unsupported_media_type;
    return Error{Errc::invalid_argument, *why};
  }
  *status = Status::bad_request;
  return event_from_request(req, mt);
}

HttpIngress::HttpIngress(const HttpConfig& cfg, std::map<std::string, Sink*> sinks,
                         std::string default_broker, std::function<bool()> ready,
                         std::function<std::string()> metrics_text, HttpServer::Options opts)
    : sinks_(std::move(sinks)),
      default_broker_(std::move(default_broker)),
      ready_(std::move(ready)),
      metrics_text_(std::move(metrics_text)),
      server_(cfg, opts) {
  server_.route(Verb::post, std::string(kTopicsPrefix),
                [this](Request&& req, Responder res) { publish(std::move(req), std::move(res)); });
  server_.route(
      Verb::get, "/healthz",
      [](Request&&, Responder res) { res(json_response(Status::ok, R"({"status":"ok"})")); },
      Auth::none);
  server_.route(
      Verb::get, "/readyz",
      [this](Request&&, Responder res) {
        if (!ready_ || ready_()) return res(json_response(Status::ok, R"({"status":"ready"})"));
        res(json_error(Status::service_unavailable, "not ready"));
      },
      Auth::none);
  server_.route(Verb::get, "/metrics", [this](Request&&, Responder res) {
    Response out{Status::ok, 11};
    out.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    if (metrics_text_) out.body() = metrics_text_();
    res(std::move(out));
  });
}

Result<void> HttpIngress::start() {
  if (!sinks_.count(default_broker_))
    return Error{Errc::invalid_argument,
                 "http: default broker '" + default_broker_ + "' has no sink"};
  return server_.start();
}

void HttpIngress::stop() { server_.stop(); }

void HttpIngress::publish(Request&& req, Responder res) {
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
        const PublishAck& ack = r.value();
        nlohmann::json body = {{"id", id},
                               {"topic", ack.topic.empty() ? topic : ack.topic},
                               {"partition", ack.partition},
                               {"offset", ack.offset}};
        (*responder)(json_response(
            Status::accepted, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)));
      });
}

}  // namespace sluice::http
