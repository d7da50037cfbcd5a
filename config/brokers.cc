// brokers: { <name>: { kind: local | kafka | nats, ... } }; the keys of each kind are
// read by config/brokers/<kind>.cc.
#include <algorithm>

#include "config/parse.h"
#include "config/values.h"

namespace sluice::config {
namespace {


const config::Section& kind_section(BrokerKind k) {
  switch (k) {
    case BrokerKind::kafka: return config::section("broker_kafka");
    case BrokerKind::nats: return config::section("broker_nats");
    default: return config::section("broker_local");
  }
}

// "options" on a local broker: say which kinds take it rather than only "unknown key".
std::optional<std::string> other_kind_key(std::string_view key, BrokerKind kind) {
  std::string kinds;
  for (std::size_t i = 0; i < config::kKind.names.size(); ++i) {
    const auto& ks = kind_section(static_cast<BrokerKind>(i)).keys;
    if (std::find(ks.begin(), ks.end(), key) == ks.end()) continue;
    kinds += (kinds.empty() ? "" : " and ") + std::string(config::kKind.names[i]);
  }
  if (kinds.empty()) return std::nullopt;
  return "\"" + std::string(key) + "\" is not allowed on a " + to_string(kind) +
         " broker (only on " + kinds + ")";
}

void parse_broker(Diagnostics& d, const Entry& e, const std::string& base_dir, Config& c) {
  BrokerConfig b;
  b.name = e.key;
  b.line = e.key_line;
  if (e.key.empty()) d.error(e.value.path, e.key_line, "broker names must not be empty");
  const Field& f = e.value;
  if (!f.node.IsMap()) {
    d.error(f.path, f.line, "expected a map with a kind (local | kafka | nats), got " +
                                describe(f.node));
    return;
  }
  std::optional<std::size_t> kind;
  for (const auto& kv : f.node) {
    if (kv.first.IsScalar() && kv.first.Scalar() == "kind") {
      kind = read_enum(d, Field{kv.second, join_path(f.path, "kind"), line_of(kv.second)},
                       config::kKind);
      if (!kind) return;  // the keys cannot be checked without a kind
      break;
    }
  }
  if (!kind) {
    // Check the keys against every kind's, and report the missing kind once.
    config::Section any{"broker", "", "", {}, {"kind"}};
    for (BrokerKind k : {BrokerKind::local, BrokerKind::kafka, BrokerKind::nats}) {
      for (std::string_view key : kind_section(k).keys) {
        if (std::find(any.keys.begin(), any.keys.end(), key) == any.keys.end()) {
          any.keys.push_back(key);
        }
      }
    }
    MapReader check(d, f, any);
    return;
  }
  const BrokerKind k = static_cast<BrokerKind>(*kind);
  MapReader m(d, f, kind_section(k), [&](std::string_view key) { return other_kind_key(key, k); });
  switch (k) {
    case BrokerKind::local:
      parse_local_broker(d, m, base_dir, b.settings.emplace<LocalBrokerConfig>());
      break;
    case BrokerKind::kafka:
      parse_kafka_broker(d, m, base_dir, b.settings.emplace<KafkaBrokerConfig>());
      break;
    case BrokerKind::nats:
      parse_nats_broker(d, m, base_dir, b.settings.emplace<NatsBrokerConfig>());
      break;
  }
  c.brokers.push_back(std::move(b));
}

}  // namespace

BrokerNames parse_brokers(Diagnostics& d, const std::optional<Field>& f, Config& c) {
  BrokerNames names;
  if (!f) {
    BrokerConfig local;
    local.name = "local";
    local.local().path = default_local_path(c.base_dir);
    c.brokers.push_back(std::move(local));
    names.names = {"local"};
    names.first = "local";
    return names;
  }
  if (!f->node.IsMap()) {
    d.error(f->path, f->line,
            f->node.IsNull() ? "must declare at least one broker (or leave out the section "
                               "for the default local broker)"
                             : "expected a map of broker names, got " + describe(f->node));
    names.known = false;
    return names;
  }
  for (const Entry& e : map_entries(d, *f, "broker name")) {
    names.names.push_back(e.key);
    parse_broker(d, e, c.base_dir, c);
  }
  if (!names.names.empty()) names.first = names.names.front();
  if (names.names.empty()) {
    d.error(f->path, f->line, "must declare at least one broker");
    names.known = false;
  }
  return names;
}

}  // namespace sluice::config
