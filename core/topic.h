// What a topic name may be: the one check shared by config validation, HTTP ingress
// and `sluice publish` (a name any broker would store under, and that cannot walk a
// path or break a log line).
//
// Threads: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace sluice {

inline constexpr size_t kMaxTopicName = 249;  // Kafka's limit, the lowest of the brokers

// Why `topic` is not a topic name (a phrase to follow "topic 'x': "), or nullopt
// when it is one: 1 to 249 bytes, not "." or "..", no '/' or '\', no whitespace or
// control characters. NATS wildcards ('*', '>') pass; a broker may refuse more.
std::optional<std::string> topic_name_error(std::string_view topic);

// A topic name as it may appear in an error message: printable ASCII, cut to a
// readable length.
std::string printable_topic(std::string_view topic);

}  // namespace sluice
