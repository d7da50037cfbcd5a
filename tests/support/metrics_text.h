// The value of one series in Prometheus exposition text (Metrics::text()), for tests
// that check a metric moved. Header-only, no gtest.
#pragma once

#include <cstdlib>
#include <optional>
#include <string>

namespace sluice::testsupport {

// `series` is the name with its labels exactly as printed, e.g.
// sluice_broker_errors_total{broker="k",kind="decode"}. nullopt when absent.
inline std::optional<double> sample(const std::string& text, const std::string& series) {
  const std::string head = series + " ";
  for (size_t at = 0; at < text.size();) {
    size_t end = text.find('\n', at);
    if (end == std::string::npos) end = text.size();
    if (text.compare(at, head.size(), head) == 0)
      return std::strtod(text.c_str() + at + head.size(), nullptr);
    at = end + 1;
  }
  return std::nullopt;
}

}  // namespace sluice::testsupport
