// The in-memory event: CloudEvents 1.0 attributes, transport coordinates and
// delivery metadata (the C++ mirror of schemas/event.proto).
//
// Ownership: an Event is a plain value. It is moved (never copied) along the hot
// path: adapter -> dispatcher -> runtime; the dispatcher keeps it alive while a
// function holds it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/result.h"

namespace sluice {

namespace v1 {
class Event;
}

struct Header {
  std::string name;
  std::string value;
  friend bool operator==(const Header&, const Header&) = default;
};
using Headers = std::vector<Header>;

struct Event {
  // CloudEvents 1.0 context attributes.
  std::string id;
  std::string source;
  std::string specversion = "1.0";
  std::string type;
  std::string datacontenttype;
  std::string dataschema;
  std::string subject;
  std::string time;  // RFC 3339 as received; empty when absent
  std::vector<std::pair<std::string, std::string>> extensions;
  std::string data;

  // Transport coordinates: where the event was read from.
  std::string broker;
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
  std::string key;
  Headers headers;
  int64_t broker_timestamp_ms = 0;

  // Delivery metadata.
  uint32_t attempt = 0;
  int64_t first_attempt_time_ms = 0;

  const std::string* header(std::string_view name) const;      // case-insensitive
  const std::string* extension(std::string_view name) const;
  void set_header(std::string name, std::string value);        // replaces same name
  size_t byte_size() const;  // approximate memory held (for in-flight byte budgets)
};

// Conversion to and from the protobuf envelope (the at-rest and wire form).
void to_proto(const Event& e, v1::Event* out);
Event from_proto(v1::Event&& p);
std::string encode(const Event& e);              // serialized v1::Event
Result<Event> decode(std::string_view bytes);    // Errc::corrupt when it does not parse

// A fresh random event id (UUID v4 text).
std::string new_event_id();

// Milliseconds since the unix epoch, system clock.
int64_t now_unix_ms();
// RFC 3339 UTC text with millisecond precision, e.g. 2026-11-25T09:43:44.123Z.
std::string format_rfc3339(int64_t unix_ms);
// Parses RFC 3339 (with Z or an offset, optional fraction); nullopt-like error on bad text.
Result<int64_t> parse_rfc3339(std::string_view text);

}  // namespace sluice
