// The one table of config keys the loader accepts, per section (a YAML map).
//
// The loader checks unknown and missing keys against this table, and the tests check it
// against schemas/config.schema.json and docs/CONFIG.md so the three cannot drift.
// Immutable static data; safe to read from any thread.
#pragma once

#include <string_view>
#include <vector>

namespace sluice::config_keys {

struct Section {
  std::string_view name;            // used by the loader to look the section up
  std::string_view schema_pointer;  // JSON pointer of its object schema in config.schema.json
  std::string_view doc_heading;     // its "### heading" in docs/CONFIG.md
  std::vector<std::string_view> keys;
  std::vector<std::string_view> required;
};

// Every section, in document order.
const std::vector<Section>& sections();
// The section called `name`; the name must exist (programming error otherwise).
const Section& section(std::string_view name);

// The accepted spellings of an enum-valued key, in the declaration order of the C++ enum.
struct EnumSpec {
  // JSON pointer of the property schema with an "enum" (for kKind: the oneOf of broker kinds)
  std::string_view schema_pointer;
  std::vector<std::string_view> names;
};
extern const EnumSpec kRuntime;   // RuntimeKind
extern const EnumSpec kOrdering;  // Ordering
extern const EnumSpec kBackoff;   // BackoffKind
extern const EnumSpec kJitter;    // Jitter
extern const EnumSpec kMode;      // RetryMode
extern const EnumSpec kKind;      // BrokerKind (the schema has one "const" per broker kind)
const std::vector<const EnumSpec*>& enums();

}  // namespace sluice::config_keys
