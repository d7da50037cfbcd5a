// The filter of a subscription: the CloudEvents Subscriptions API's filter dialects
// (exact, prefix, suffix, all, any, not, sql), as a tree built once at config load and
// evaluated per event against the same EventView as CESQL (filter/cesql.h).
//
//   auto f = SubscriptionFilter::all({SubscriptionFilter::attributes(Dialect::prefix,
//                                         {{"type", "com.example."}}),
//                                     SubscriptionFilter::sql(*compile("int(priority) > 3"))});
//   if (f.matches(EventView(event))) ...
//
// exact / prefix / suffix: every (attribute, value) pair holds — the attribute exists
// and its value equals / starts with / ends with the value (case-sensitive bytes); an
// event that lacks the attribute does not match. all: every child matches (none: true);
// any: at least one does; not: the child does not; sql: the expression's result is
// Boolean true with no error (an evaluation error counts as no match).
//
// Threads: immutable after it is built; copies share the tree (config structs stay
// cheap to copy and nothing recompiles). matches() is const and allocation-free
// (unless a CESQL function builds a long string), safe on any number of threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "filter/cesql.h"

namespace sluice::filter {

// Bounds the config loader enforces on a filter: nesting of dialects (a sql node's own
// nesting is bounded by kMaxDepth), the dialect nodes and attribute pairs of one
// filter together, and the bytes of one attribute value.
inline constexpr int kMaxFilterDepth = 16;
inline constexpr size_t kMaxFilterNodes = 256;
inline constexpr size_t kMaxAttributeValueBytes = 4096;

enum class Dialect : uint8_t { exact, prefix, suffix, all, any, not_, sql };
// "exact", "prefix", "suffix", "all", "any", "not", "sql" (the YAML keys).
const char* to_string(Dialect d) noexcept;

class SubscriptionFilter {
 public:
  using Pairs = std::vector<std::pair<std::string, std::string>>;  // attribute -> value

  // No filter: every event matches; `bool(f)` is false.
  SubscriptionFilter() = default;

  // exact, prefix or suffix over `pairs` (names: valid_attribute_name()).
  static SubscriptionFilter attributes(Dialect d, Pairs pairs);
  // all or any over `children`.
  static SubscriptionFilter group(Dialect d, std::vector<SubscriptionFilter> children);
  static SubscriptionFilter negate(SubscriptionFilter child);
  static SubscriptionFilter sql(Expression e);

  explicit operator bool() const { return node_ != nullptr; }
  Dialect dialect() const;  // of a non-empty filter
  // The filter as written, for views (GET /system/functions), of a non-empty filter:
  // the (attribute, value) pairs of exact, prefix and suffix; the children of all, any
  // and not; the expression text of sql (empty for the other dialects).
  Pairs pairs() const;
  const std::vector<SubscriptionFilter>& children() const;
  const std::string& sql_text() const;
  bool matches(const EventView& event) const;

  // Same tree: dialects, pairs, children and SQL text.
  friend bool operator==(const SubscriptionFilter& a, const SubscriptionFilter& b);

  struct Node;

 private:
  explicit SubscriptionFilter(std::shared_ptr<const Node> n) : node_(std::move(n)) {}
  std::shared_ptr<const Node> node_;
};

}  // namespace sluice::filter
