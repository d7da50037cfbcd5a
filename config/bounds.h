// The documented range of every duration and size in the config (docs/CONFIG.md,
// "Config bounds"). The loader checks values against this table; config_test checks
// the table against schemas/config.schema.json ("x-minimum"/"x-maximum") and the key
// rows of docs/CONFIG.md, so the three cannot drift.
//
// Why maxima at all: a duration is later added to a clock reading and a size becomes an
// allocation or a budget; an absurd value (2562047h, 18446744073709551615) must be a
// config error naming the field, not an overflow at run time.
// Immutable static data; safe to read from any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sluice::config_keys {

struct ValueBound {
  enum class Kind { duration, size };
  std::string_view section;  // config_keys::section() name
  std::string_view key;
  Kind kind;
  std::string_view min;  // as written in the docs and the schema, e.g. "1ms", "0s", "1MiB"
  std::string_view max;
};

// Every duration and size key, in document order.
const std::vector<ValueBound>& value_bounds();
// The bound of `section`.`key`; it must exist (programming error otherwise).
const ValueBound& bound(std::string_view section, std::string_view key);

// The bound's limits, parsed (they are valid by construction; tested).
Millis min_duration(const ValueBound& b);
Millis max_duration(const ValueBound& b);
uint64_t min_size(const ValueBound& b);
uint64_t max_size(const ValueBound& b);

}  // namespace sluice::config_keys
