// The one table of config keys: each key declared once, with its section, type,
// default, bounds, enum values and one line of documentation (librdkafka's
// CONFIGURATION.md table is the model).
//
// The loader takes from it the accepted and required keys of every section (MapReader),
// the range of every integer, duration and size (read_uint / read_duration / read_size),
// and the defaults of strings it fills in itself. docs/CONFIG.md's key tables and the
// "properties" of schemas/config.schema.json are generated from it (config/config_doc.h,
// `sluice-config-doc`); config_test regenerates both and fails when the committed files
// differ, and checks every default against what the loader fills in.
// Immutable static data; safe to read from any thread.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sluice::config {

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
extern const EnumSpec kOnExpired; // OnExpired
extern const EnumSpec kScheduling; // Scheduling
extern const EnumSpec kKind;      // BrokerKind (the schema has one "const" per broker kind)
extern const EnumSpec kRateBy;    // RateLimitConfig::by_key (function | key)
const std::vector<const EnumSpec*>& enums();

// What a key's value is; decides its schema, its docs "Type" cell and how it is read.
enum class Type {
  string,        // non-empty (or matching `pattern`)
  path,          // a file; relative to the config's directory
  integer,       // [min, max]; no max = up to 2^64-1
  number,        // a decimal, [min, max] (both written as decimals)
  boolean,
  duration,      // [min, max], written like the bounds ("1ms".."24h")
  size,          // [min, max], written like the bounds ("1B".."1GiB")
  listen,        // host:port
  topic,
  broker_ref,    // the name of a configured broker
  enumeration,   // one of `values`
  kind,          // exactly `of` (a broker's kind)
  section,       // a map: the section `of`
  section_list,  // a list of the section `of`
  broker_map,    // a map of name -> the schema $defs `of`
  string_list,   // `non_empty`: at least one item
  string_map,    // string -> string (numbers and booleans kept as written)
  nats_urls,     // one nats:// or tls:// URL or a list of them
  filter,        // a subscription filter: the schema's $defs/filter (docs/FILTERS.md)
};

struct Key {
  std::string_view section;  // Section::name
  std::string_view name;
  Type type;
  // The loader's default as YAML ("30s", "4", "sluice", "[]"); empty = none, or one that is
  // not a constant (then `doc_default` says what it is). Tested against the loader.
  std::string_view def = {};
  std::string_view min = {};  // integer, duration, size: the range as written in the docs
  std::string_view max = {};
  const EnumSpec* values = nullptr;  // enumeration
  std::string_view of = {};          // kind: its name; section(_list): section; broker_map: $defs
  std::string_view pattern = {};     // string: the regular expression of the schema
  bool required = false;
  bool non_empty = false;            // string_list: at least one item
  std::string_view doc_type = {};     // docs "Type" cell, when the derived one is not enough
  std::string_view doc_default = {};  // docs "Default" cell, when `def` is not the whole story
  std::string_view doc = {};          // one line: the docs "Meaning" cell and the schema
                                      // description
};

// Every key, sections in document order and keys in section order.
const std::vector<Key>& keys();
// The key `name` of `section`; it must exist (a typo in the loader aborts, caught by every test).
const Key& key(std::string_view section, std::string_view name);

// One section (a YAML map) and its keys, from the table.
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

// A key's limits, parsed (valid by construction; tested). Integers without a max: 2^64-1.
uint64_t min_integer(const Key& k);
uint64_t max_integer(const Key& k);
Millis min_duration(const Key& k);
Millis max_duration(const Key& k);
uint64_t min_size(const Key& k);
uint64_t max_size(const Key& k);
double min_number(const Key& k);
double max_number(const Key& k);

}  // namespace sluice::config
