// functions[].subscribe[].filter: the dialects of filter/subscription_filter.h from
// YAML, with SQL compiled here, once (a parse error names the column in the expression).
#include <string>

#include "config/parse.h"
#include "config/values.h"
#include "filter/attribute.h"

namespace sluice::config {
namespace {

using filter::Dialect;
using filter::SubscriptionFilter;

constexpr std::string_view kDialects[] = {"exact", "prefix", "suffix", "all", "any", "not", "sql"};
constexpr std::string_view kDialectList = "exact, prefix, suffix, all, any, not, sql";

std::optional<Dialect> dialect_of(std::string_view key) {
  for (size_t i = 0; i < std::size(kDialects); ++i)
    if (kDialects[i] == key) return static_cast<Dialect>(i);
  return std::nullopt;
}

class FilterReader {
 public:
  explicit FilterReader(Diagnostics& d) : d_(d) {}

  std::optional<SubscriptionFilter> read(const Field& f, int depth) {
    if (!f.node.IsMap() || f.node.size() == 0) {
      d_.error(f.path, f.line,
               "expected a filter: a map of one dialect (" + std::string(kDialectList) +
                   "), got " + describe(f.node));
      return std::nullopt;
    }
    const std::vector<Entry> entries = map_entries(d_, f, "filter dialect");
    if (entries.size() != 1) {
      if (entries.size() > 1)
        d_.error(f.path, f.line,
                 "a filter has one dialect, got " + std::to_string(entries.size()) +
                     " (combine them with all: [...] or any: [...])");
      return std::nullopt;
    }
    const Entry& e = entries.front();
    const Field at{e.value.node, e.value.path, e.key_line};
    const std::optional<Dialect> dialect = dialect_of(e.key);
    if (!dialect) {
      std::string msg = "unknown filter dialect " + quote(e.key) + " (one of " +
                        std::string(kDialectList) + ")";
      std::vector<std::string_view> names(std::begin(kDialects), std::end(kDialects));
      if (std::string_view hint = closest(e.key, names); !hint.empty())
        msg += "; did you mean \"" + std::string(hint) + "\"?";
      d_.error(at.path, at.line, std::move(msg));
      return std::nullopt;
    }
    if (depth > filter::kMaxFilterDepth) {
      d_.error(at.path, at.line,
               "filters nest deeper than " + std::to_string(filter::kMaxFilterDepth) + " levels");
      return std::nullopt;
    }
    if (!count(at, 1)) return std::nullopt;
    switch (*dialect) {
      case Dialect::exact:
      case Dialect::prefix:
      case Dialect::suffix: return read_pairs(*dialect, e.value);
      case Dialect::all:
      case Dialect::any: return read_group(*dialect, e.value, depth);
      case Dialect::not_: {
        auto child = read(e.value, depth + 1);
        if (!child) return std::nullopt;
        return SubscriptionFilter::negate(std::move(*child));
      }
      case Dialect::sql: return read_sql(e.value);
    }
    return std::nullopt;
  }

 private:
  // Counts nodes against kMaxFilterNodes; reports the first excess only.
  bool count(const Field& at, size_t n) {
    nodes_ += n;
    if (nodes_ <= filter::kMaxFilterNodes) return true;
    if (!over_) {
      over_ = true;
      d_.error(at.path, at.line,
               "a filter holds more than " + std::to_string(filter::kMaxFilterNodes) +
                   " dialects and attributes");
    }
    return false;
  }

  std::optional<SubscriptionFilter> read_pairs(Dialect dialect, const Field& f) {
    if (!f.node.IsMap() || f.node.size() == 0) {
      d_.error(f.path, f.line,
               "expected a map of attribute: value (at least one), got " + describe(f.node));
      return std::nullopt;
    }
    SubscriptionFilter::Pairs pairs;
    bool ok = true;
    for (const Entry& e : map_entries(d_, f, "attribute")) {
      if (!filter::valid_attribute_name(e.key)) {
        d_.error(e.value.path, e.key_line,
                 quote(e.key) + " is not a CloudEvents attribute name (1-" +
                     std::to_string(filter::kMaxAttributeNameBytes) +
                     " lower-case letters and digits)");
        ok = false;
        continue;
      }
      if (!e.value.node.IsScalar()) {
        d_.error(e.value.path, e.key_line,
                 "expected a string value, got " + describe(e.value.node));
        ok = false;
        continue;
      }
      const std::string& v = e.value.node.Scalar();
      if (v.empty() || v.size() > filter::kMaxAttributeValueBytes) {
        d_.error(e.value.path, e.key_line,
                 v.empty() ? std::string("must not be empty (an empty value matches ") +
                                 (dialect == Dialect::exact ? "no event" : "every event") + ")"
                           : "longer than " + std::to_string(filter::kMaxAttributeValueBytes) +
                                 " bytes");
        ok = false;
        continue;
      }
      if (!count(e.value, 1)) return std::nullopt;
      pairs.emplace_back(e.key, v);
    }
    if (!ok || pairs.empty()) return std::nullopt;
    return SubscriptionFilter::attributes(dialect, std::move(pairs));
  }

  std::optional<SubscriptionFilter> read_group(Dialect dialect, const Field& f, int depth) {
    if (!f.node.IsSequence() || f.node.size() == 0) {
      d_.error(f.path, f.line, "expected a list of filters (at least one), got " + describe(f.node));
      return std::nullopt;
    }
    std::vector<SubscriptionFilter> children;
    bool ok = true;
    for (size_t i = 0; i < f.node.size() && !over_; ++i) {
      const Field item{f.node[i], index_path(f.path, i), line_of(f.node[i])};
      auto child = read(Field{item.node, item.path, item.line ? item.line : f.line}, depth + 1);
      if (child) children.push_back(std::move(*child));
      else ok = false;
    }
    if (!ok) return std::nullopt;
    return SubscriptionFilter::group(dialect, std::move(children));
  }

  std::optional<SubscriptionFilter> read_sql(const Field& f) {
    auto text = read_string(d_, f);
    if (!text) return std::nullopt;
    auto expr = filter::compile(*text);
    if (!expr) {
      d_.error(f.path, f.line,
               "column " + std::to_string(expr.error().column) + ": " + expr.error().message);
      return std::nullopt;
    }
    const auto& unknown = expr.value().unknown_functions();
    for (const filter::ParseError& u : unknown)
      d_.error(f.path, f.line, "column " + std::to_string(u.column) + ": " + u.message);
    if (!unknown.empty()) return std::nullopt;
    return SubscriptionFilter::sql(std::move(expr).value());
  }

  Diagnostics& d_;
  size_t nodes_ = 0;
  bool over_ = false;
};

}  // namespace

std::optional<filter::SubscriptionFilter> parse_filter(Diagnostics& d, const Field& f) {
  return FilterReader(d).read(f, 1);
}

}  // namespace sluice::config
