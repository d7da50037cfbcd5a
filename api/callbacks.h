// Callbacks of asynchronous invocations (POST /async-function/{name} with an
// X-Callback-Url): the headers that request one, the one event a callback URL receives,
// and the dispatcher's ResultHook that joins them.
//
// The request travels with the queued event as two headers sealed for the function
// (core/seal.h, Kind::callback); only this file names them. The dispatcher asks
// Callbacks::screen() about every event it takes in, and Callbacks::result() for the
// final result of one that asked, which goes to the callback URL through the
// CallbackSink (broker-adapters/http/callback_sink.h).
//
// Threads: request_callback() runs on HTTP strands; Callbacks runs on the dispatcher
// thread (const, no mutable state). The sink and the keys outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/broker.h"
#include "core/event.h"
#include "core/runtime.h"
#include "core/seal.h"
#include "dispatcher/result_hook.h"

namespace sluice::api {

// The names core/seal.cc covers for Kind::callback.
inline constexpr std::string_view kCallbackUrlHeader = "sluice-callback-url";
inline constexpr std::string_view kCallbackFunctionHeader = "sluice-callback-function";

// Drops every callback header the caller put on `event` (the seal too, and a stray
// X-Callback-Url); then, with a `url` and keys, asks for `function`'s result to go there,
// sealed.
void request_callback(Event& event, std::string_view url, std::string_view function,
                      const seal::Keyring* keys);

// The body of a failed result, as the synchronous call and the callback send it:
// {"error": message (or the outcome when there is none), "outcome": outcome}.
std::string error_body(const InvocationResult& r);

// The event POSTed to a callback URL: the result of `function` for `event` after
// `attempts` attempts. Its data is the output with the function's content type
// (success), or error_body() as application/json; its headers X-Call-Id, X-Function-Name, X-Function-Status (200 | 500),
// X-Function-Outcome and X-Function-Attempts.
Event callback_event(std::string_view function, const Event& event, const InvocationResult& r,
                     uint32_t attempts);

class Callbacks final : public dispatcher::ResultHook {
 public:
  // `sink` null: callbacks are screened (forged ones rejected) but never sent.
  Callbacks(Sink* sink, const seal::Keyring& keys) : sink_(sink), keys_(keys) {}

  Screened screen(std::string_view function, Event& event) const override;
  std::optional<Outbound> result(std::string_view function, const Event& event,
                                 const InvocationResult& r, uint32_t attempts) const override;

 private:
  Sink* sink_;
  const seal::Keyring& keys_;
};

}  // namespace sluice::api
