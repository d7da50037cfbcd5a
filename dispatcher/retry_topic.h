// Retry topics (`retry.mode: topic`): a failed event is re-published to the
// function's retry topic (topology/plan.h names it) with its retry state in headers,
// and the original is committed, so the lane it blocked is free again. A consumer of
// the retry topic holds each event back until it is due (the dispatcher pauses the
// partition meanwhile: no busy loop, no early delivery).
//
// Headers (string values, like the dead-letter headers):
//   sluice-retry-attempt         attempts made so far (>= 1)
//   sluice-retry-due             unix ms before which the event must not run
//   sluice-retry-first-failure   unix ms of the first failed attempt
//   sluice-retry-origin          broker/topic/partition/offset the event was first
//                                read from; restored when the event is dead-lettered
//   sluice-retry-seal            the seal over the four above (core/seal.h), bound
//                                to the event id, the function and the payload
//
// The dispatcher trusts the retry state only under a seal that verifies; a record
// on a retry topic without one runs at once as a fresh event (Dispatcher::deliver).
#pragma once

#include <cstdint>
#include <string>

#include "core/event.h"
#include "core/result.h"
#include "core/seal.h"

namespace sluice::dispatcher::retry {

inline constexpr std::string_view kAttempt = "sluice-retry-attempt";
inline constexpr std::string_view kDue = "sluice-retry-due";
inline constexpr std::string_view kFirstFailure = "sluice-retry-first-failure";
inline constexpr std::string_view kOrigin = "sluice-retry-origin";

struct State {
  uint32_t attempts = 0;
  int64_t due_ms = 0;
  int64_t first_failure_ms = 0;
};

// The event to publish to the retry topic: `ev` (payload, key, CloudEvents
// attributes and headers untouched) plus the retry headers, sealed for `function`
// with the first key of `keys`. The origin is the event's own coordinates unless it
// already came from a retry topic.
Event make_event(const Event& ev, const State& st, const seal::Keyring& keys,
                 std::string_view function);

// Reads and removes the retry headers (and their seal) of an event consumed from a
// retry topic whose seal was verified, and
// puts its origin coordinates back. Errc::corrupt (with the reason) when the headers
// are missing or malformed; the event is then left with whatever could be read.
Result<State> take_state(Event& ev);

}  // namespace sluice::dispatcher::retry
