// Parsers for the scalar value formats of the config file (durations, sizes, listen
// addresses) and the edit distance behind "did you mean" hints. Pure functions.
// parse_duration and parse_size themselves are declared in config/config.h.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::config_detail {

// nullopt when `text` is host:port (port 0..65535, host non-empty, IPv6 in brackets);
// otherwise the message explaining why not.
std::optional<std::string> check_listen(std::string_view text);

// Optimal string alignment distance (insertions, deletions, substitutions, transpositions).
std::size_t edit_distance(std::string_view a, std::string_view b);

// The candidate closest to `word` when within edit distance 2, else empty.
std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates);

}  // namespace sluice::config_detail
