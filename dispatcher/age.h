// Event age (a function's `max_age`, `on_expired`) and crash quarantine
// (`retry.max_crashes`): the pure rules the dispatcher applies when an event's turn
// comes (just before an invocation starts, including a retry that fell due).
// No clock of its own: the caller passes the time in (tests inject it).
//
// Threads: pure functions; any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/event.h"

namespace sluice::dispatcher::age {

// When the event was made: its CloudEvents `time`, else the broker's timestamp;
// nullopt when neither is known (or `time` does not parse and there is no timestamp).
std::optional<int64_t> origin_ms(const Event& e);

// The age at `now_ms` of an event made at `origin`; a time in the future is age 0.
int64_t age_ms(int64_t origin, int64_t now_ms);

// True when `max_age` is set (> 0) and the event is older than it at `now_ms`. An
// event of unknown origin never expires.
bool expired(std::optional<int64_t> origin, std::chrono::milliseconds max_age, int64_t now_ms);

// "age 1h2m > max_age 15m": the message of an `expired` dead letter.
std::string describe(int64_t age, std::chrono::milliseconds max_age);

}  // namespace sluice::dispatcher::age

namespace sluice::dispatcher::crash {

// True when `crashes` (invocations that ended in `crash`, plus the broker deliveries a
// dying engine left unsettled) reached `max_crashes`: the event is dead-lettered as
// `crash` instead of being invoked (again).
constexpr bool quarantined(uint32_t crashes, uint32_t max_crashes) {
  return max_crashes > 0 && crashes >= max_crashes;
}

// Crash counts of events handed back to the broker for their next attempt (a retry
// topic record, a JetStream redelivery), taken again when they come back, so the
// count goes on across those paths. In memory: a restart forgets them (the broker's
// own delivery count covers a dying engine). Bounded: beyond kCap entries the oldest
// goes first. Dispatcher thread only.
class Ledger {
 public:
  static constexpr size_t kCap = 65536;
  void put(std::string key, uint32_t crashes);
  uint32_t take(const std::string& key);  // 0 when unknown; forgets it
  size_t size() const { return counts_.size(); }

 private:
  std::unordered_map<std::string, uint32_t> counts_;
  std::deque<std::string> order_;  // insertion order (may name keys already taken)
};

}  // namespace sluice::dispatcher::crash
