#include "filter/subscription_filter.h"

#include <optional>

#include "filter/attribute.h"

namespace sluice::filter {

struct SubscriptionFilter::Node {
  struct Match {
    detail::Attr attr;
    std::string name;
    std::string value;
  };
  Dialect dialect = Dialect::all;
  std::vector<Match> pairs;                   // exact, prefix, suffix
  std::vector<SubscriptionFilter> children;   // all, any, not (one)
  std::optional<Expression> sql;             // sql
};

const char* to_string(Dialect d) noexcept {
  switch (d) {
    case Dialect::exact: return "exact";
    case Dialect::prefix: return "prefix";
    case Dialect::suffix: return "suffix";
    case Dialect::all: return "all";
    case Dialect::any: return "any";
    case Dialect::not_: return "not";
    case Dialect::sql: return "sql";
  }
  return "?";
}

SubscriptionFilter SubscriptionFilter::attributes(Dialect d, Pairs pairs) {
  auto n = std::make_shared<Node>();
  n->dialect = d;
  n->pairs.reserve(pairs.size());
  for (auto& [name, value] : pairs)
    n->pairs.push_back({detail::resolve_attribute(name), std::move(name), std::move(value)});
  return SubscriptionFilter(std::move(n));
}

SubscriptionFilter SubscriptionFilter::group(Dialect d, std::vector<SubscriptionFilter> children) {
  auto n = std::make_shared<Node>();
  n->dialect = d;
  n->children = std::move(children);
  return SubscriptionFilter(std::move(n));
}

SubscriptionFilter SubscriptionFilter::negate(SubscriptionFilter child) {
  auto n = std::make_shared<Node>();
  n->dialect = Dialect::not_;
  n->children.push_back(std::move(child));
  return SubscriptionFilter(std::move(n));
}

SubscriptionFilter SubscriptionFilter::sql(Expression e) {
  auto n = std::make_shared<Node>();
  n->dialect = Dialect::sql;
  n->sql.emplace(std::move(e));
  return SubscriptionFilter(std::move(n));
}

Dialect SubscriptionFilter::dialect() const { return node_->dialect; }

SubscriptionFilter::Pairs SubscriptionFilter::pairs() const {
  Pairs out;
  for (const Node::Match& m : node_->pairs) out.emplace_back(m.name, m.value);
  return out;
}

const std::vector<SubscriptionFilter>& SubscriptionFilter::children() const { return node_->children; }

const std::string& SubscriptionFilter::sql_text() const {
  static const std::string kNone;
  return node_->sql ? node_->sql->text() : kNone;
}

bool SubscriptionFilter::matches(const EventView& event) const {
  if (!node_) return true;
  const Node& n = *node_;
  const Event& e = event.event();
  switch (n.dialect) {
    case Dialect::exact:
    case Dialect::prefix:
    case Dialect::suffix:
      for (const Node::Match& m : n.pairs) {
        const auto v = detail::lookup(e, m.attr, m.name);
        if (!v) return false;
        const std::string_view want = m.value;
        const bool ok = n.dialect == Dialect::exact    ? *v == want
                        : n.dialect == Dialect::prefix ? v->starts_with(want)
                                                       : v->ends_with(want);
        if (!ok) return false;
      }
      return true;
    case Dialect::all:
      for (const SubscriptionFilter& c : n.children)
        if (!c.matches(event)) return false;
      return true;
    case Dialect::any:
      for (const SubscriptionFilter& c : n.children)
        if (c.matches(event)) return true;
      return false;
    case Dialect::not_:
      return !n.children.front().matches(event);
    case Dialect::sql:
      return n.sql->matches(event);
  }
  return false;
}

bool operator==(const SubscriptionFilter& a, const SubscriptionFilter& b) {
  if (a.node_ == b.node_) return true;
  if (!a.node_ || !b.node_) return false;
  const auto& x = *a.node_;
  const auto& y = *b.node_;
  if (x.dialect != y.dialect || x.children != y.children || x.pairs.size() != y.pairs.size())
    return false;
  for (size_t i = 0; i < x.pairs.size(); ++i)
    if (x.pairs[i].name != y.pairs[i].name || x.pairs[i].value != y.pairs[i].value) return false;
  return x.sql.has_value() == y.sql.has_value() && (!x.sql || x.sql->text() == y.sql->text());
}

}  // namespace sluice::filter
