#include "config/bounds.h"

#include <cstdlib>

namespace sluice::config_keys {

namespace {
using K = ValueBound::Kind;
}

const std::vector<ValueBound>& value_bounds() {
  static const std::vector<ValueBound> kBounds = {
      {"http", "max_body", K::size, "1B", "1GiB"},
      {"http", "idle_timeout", K::duration, "1ms", "24h"},
      {"http", "callback_timeout", K::duration, "1ms", "1h"},
      {"engine", "drain_timeout", K::duration, "0s", "24h"},
      {"function", "timeout", K::duration, "1ms", "24h"},
      {"function", "max_inflight_bytes", K::size, "1B", "64GiB"},
      {"function", "start_timeout", K::duration, "1ms", "1h"},
      {"workers", "idle_after", K::duration, "0s", "168h"},
      {"retry", "initial", K::duration, "0s", "24h"},
      {"retry", "max", K::duration, "0s", "24h"},
      {"limits", "memory", K::size, "1MiB", "64TiB"},
  };
  return kBounds;
}

const ValueBound& bound(std::string_view section, std::string_view key) {
  for (const ValueBound& b : value_bounds())
    if (b.section == section && b.key == key) return b;
  std::abort();  // a key missing from the table is a programming error
}

namespace {
Millis duration_of(std::string_view text) {
  auto r = parse_duration(text);
  if (!r) std::abort();
  return r.value();
}
uint64_t size_of(std::string_view text) {
  auto r = parse_size(text);
  if (!r) std::abort();
  return r.value();
}
}  // namespace

Millis min_duration(const ValueBound& b) { return duration_of(b.min); }
Millis max_duration(const ValueBound& b) { return duration_of(b.max); }
uint64_t min_size(const ValueBound& b) { return size_of(b.min); }
uint64_t max_size(const ValueBound& b) { return size_of(b.max); }

}  // namespace sluice::config_keys
