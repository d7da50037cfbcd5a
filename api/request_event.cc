#include "api/request_event.h"

#include <array>
#include <optional>

#include "core/cloudevents.h"
#include "core/topic.h"

namespace sluice::api {

using namespace http;  // the transport: Request, Status, iequals, sv, ...

namespace {

namespace ce = cloudevents;

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

}  // namespace sluice::api
