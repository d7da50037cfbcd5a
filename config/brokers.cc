// brokers: { <name>: { kind: local | kafka | nats, ... } }
#include <algorithm>

#include "config/parse.h"
#include "config/values.h"

namespace sluice::config_detail {
namespace {

namespace keys = config_keys;

constexpr const char* kDefaultLocalPath = "./data/sluice.db";
constexpr const char* kDefaultNatsUrl = "nats://127.0.0.1:4222";

const keys::Section& kind_section(BrokerKind k) {
  switch (k) {
    case BrokerKind::kafka: return keys::section("broker_kafka");
    case BrokerKind::nats: return keys::section("broker_nats");
    default: return keys::section("broker_local");
  }
}

// "options" on a local broker: say which kinds take it rather than only "unknown key".
std::optional<std::string> other_kind_key(std::string_view key, BrokerKind kind) {
  std::string kinds;
  for (std::size_t i = 0; i < keys::kKind.names.size(); ++i) {
    const auto& ks = kind_section(static_cast<BrokerKind>(i)).keys;
    if (std::find(ks.begin(), ks.end(), key) == ks.end()) continue;
    kinds += (kinds.empty() ? "" : " and ") + std::string(keys::kKind.names[i]);
  }
  if (kinds.empty()) return std::nullopt;
  return "\"" + std::string(key) + "\" is not allowed on a " + to_string(kind) +
         " broker (only on " + kinds + ")";
}

void parse_urls(Diagnostics& d, const Field& f, BrokerConfig& b) {
  std::vector<Field> items;
  if (f.node.IsSequence()) {
    if (f.node.size() == 0) d.error(f.path, f.line, "must not be empty");
    for (std::size_t i = 0; i < f.node.size(); ++i) {
      items.push_back(Field{f.node[i], index_path(f.path, i), line_of(f.node[i])});
    }
  } else if (f.node.IsScalar()) {
    items.push_back(f);
  } else {
    d.error(f.path, f.line, "expected a URL or a list of URLs, got " + describe(f.node));
    return;
  }
  b.urls.clear();
  for (const Field& item : items) {
    auto url = read_string(d, item);
    if (!url) continue;
    const bool scheme = url->rfind("nats://", 0) == 0 || url->rfind("tls://", 0) == 0;
    const std::size_t host_at = url->find("://") + 3;
    if (!scheme || url->size() <= host_at) {
      d.error(item.path, item.line, "expected a nats:// or tls:// URL, got " + quote(*url));
      continue;
    }
    b.urls.push_back(*url);
  }
}

void parse_jetstream(Diagnostics& d, const Field& f, BrokerConfig& b) {
  MapReader m(d, f, keys::section("jetstream"));
  if (!m.is_map()) return;
  JetStreamConfig js;
  read_into(js.stream, m, "stream", [&](const Field& x) { return read_string(d, x); });
  read_into(js.subjects, m, "subjects",
            [&](const Field& x) { return read_string_list(d, x, /*non_empty_list=*/true); });
  read_into(js.create, m, "create", [&](const Field& x) { return read_bool(d, x); });
  b.jetstream = std::move(js);
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
                       keys::kKind);
      if (!kind) return;  // the keys cannot be checked without a kind
      break;
    }
  }
  if (!kind) {
    // Check the keys against every kind's, and report the missing kind once.
    keys::Section any{"broker", "", "", {}, {"kind"}};
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
  b.kind = static_cast<BrokerKind>(*kind);
  MapReader m(d, f, kind_section(b.kind),
              [&](std::string_view key) { return other_kind_key(key, b.kind); });
  auto str = [&](const Field& x) { return read_string(d, x); };
  read_into(b.group, m, "group", str);
  switch (b.kind) {
    case BrokerKind::local:
      b.path = kDefaultLocalPath;
      read_into(b.path, m, "path", str);
      b.path = absolute_path(base_dir, b.path);
      read_into(b.partitions, m, "partitions",
                [&](const Field& x) { return read_uint(d, x, 1, 1024); });
      break;
    case BrokerKind::kafka:
      read_into(b.bootstrap, m, "bootstrap", str);
      break;
    case BrokerKind::nats:
      b.urls = {kDefaultNatsUrl};
      if (auto u = m.get("url")) parse_urls(d, *u, b);
      if (auto js = m.get("jetstream")) parse_jetstream(d, *js, b);
      break;
  }
  read_into(b.options, m, "options", [&](const Field& x) { return read_string_map(d, x); });
  c.brokers.push_back(std::move(b));
}

}  // namespace

BrokerNames parse_brokers(Diagnostics& d, const std::optional<Field>& f, Config& c) {
  BrokerNames names;
  if (!f) {
    BrokerConfig local;
    local.name = "local";
    local.path = absolute_path(c.base_dir, kDefaultLocalPath);
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

}  // namespace sluice::config_detail
