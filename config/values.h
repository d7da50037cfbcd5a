// Parsers for the scalar value formats of the config file (durations, sizes, listen
// addresses) and the edit distance behind "did you mean" hints. Pure functions.
// parse_duration and parse_size themselves are declared in config/config.h.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config {

// nullopt when `text` is host:port (port 0..65535, host non-empty, IPv6 in brackets);
// otherwise the message explaining why not.
std::optional<std::string> check_listen(std::string_view text);

// `text` in double quotes for an error message, cut to a readable length: values
// longer than kEchoLimit bytes keep their first kEchoLimit bytes (never splitting a
// UTF-8 sequence) and say how long they were: "aaaa…" (20971520 bytes).
inline constexpr std::size_t kEchoLimit = 64;
std::string quote(std::string_view text);

// A duration / size for messages: the largest unit that divides it ("24h", "90s",
// "1500ms"; "1GiB", "1500B").
std::string format_duration(std::chrono::milliseconds d);
std::string format_size(uint64_t bytes);

// Optimal string alignment distance (insertions, deletions, substitutions, transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when within edit distance 2, else empty.
std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace sluice::config
