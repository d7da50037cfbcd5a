#include "api/callbacks.h"

#include <nlohmann/json.hpp>

#include "broker-adapters/http/http_util.h"

namespace sluice::api {

void request_callback(Event& event, std::string_view url, std::string_view function,
                      const seal::Keyring* keys) {
  // Every sluice-callback-* header of the request (its seal too) is the caller's, not
  // sluice's: dropped, so only the headers sealed below steer a callback.
  std::erase_if(event.headers, [](const Header& h) {
    constexpr std::string_view kPrefix = "sluice-callback-";
    return (h.name.size() >= kPrefix.size() &&
            http::iequals(std::string_view(h.name).substr(0, kPrefix.size()), kPrefix)) ||
           http::iequals(h.name, "X-Callback-Url");
  });
  if (url.empty() || !keys) return;
  event.set_header(std::string(kCallbackUrlHeader), std::string(url));
  event.set_header(std::string(kCallbackFunctionHeader), std::string(function));
  keys->apply(seal::Kind::callback, event, function);
}

std::string error_body(const InvocationResult& r) {
  const nlohmann::json body = {{"error", r.message.empty() ? to_string(r.outcome) : r.message},
                               {"outcome", to_string(r.outcome)}};
  return body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Event callback_event(std::string_view function, const Event& event, const InvocationResult& r,
                     uint32_t attempts) {
  Event cb;
  cb.id = event.id;
  const bool ok = r.outcome == Outcome::success;
  cb.data = ok ? r.output : error_body(r);
  cb.datacontenttype = ok ? (r.content_type.empty() ? "application/octet-stream" : r.content_type)
                          : "application/json";
  cb.set_header("X-Call-Id", event.id);
  cb.set_header("X-Function-Name", std::string(function));
  cb.set_header("X-Function-Status", ok ? "200" : "500");
  cb.set_header("X-Function-Outcome", to_string(r.outcome));
  cb.set_header("X-Function-Attempts", std::to_string(attempts));
  return cb;
}

// Callback headers count only under a seal made for this function (POST
// /async-function); anything else is dropped here, before it can steer anything.
dispatcher::ResultHook::Screened Callbacks::screen(std::string_view function, Event& event) const {
  if (event.headers.empty() || !seal::has_any(seal::Kind::callback, event)) return {};
  const std::string* who = event.header(kCallbackFunctionHeader);
  // Another function's callback (a topic with several subscribers): not ours to judge.
  if (who && *who != function) return {};
  const seal::Verdict v = keys_.verify(seal::Kind::callback, event, function);
  if (v == seal::Verdict::verified)
    return {who != nullptr && event.header(kCallbackUrlHeader) != nullptr, nullptr};
  seal::strip(seal::Kind::callback, event);
  return {false, seal::to_string(v)};
}

std::optional<dispatcher::ResultHook::Outbound> Callbacks::result(std::string_view function,
                                                      const Event& event,
                                                      const InvocationResult& r,
                                                      uint32_t attempts) const {
  if (!sink_) return std::nullopt;
  // Only headers that passed screen() are left on the event.
  const std::string* url = event.header(kCallbackUrlHeader);
  const std::string* who = event.header(kCallbackFunctionHeader);
  if (!url || !who || *who != function) return std::nullopt;
  return Outbound{sink_, *url, callback_event(function, event, r, attempts)};
}

}  // namespace sluice::api
