// brokers.<name> with kind: nats (and its jetstream stanza).
#include "config/brokers/nats.h"

#include "config/parse.h"
#include "config/values.h"

namespace sluice::config {
namespace {


void parse_urls(Diagnostics& d, const Field& f, NatsBrokerConfig& b) {
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

void parse_jetstream(Diagnostics& d, const Field& f, NatsBrokerConfig& b) {
  MapReader m(d, f, config::section("jetstream"));
  if (!m.is_map()) return;
  JetStreamConfig js;
  read_into(js.stream, m, "stream", [&](const Field& x) { return read_string(d, x); });
  read_into(js.subjects, m, "subjects",
            [&](const Field& x) { return read_string_list(d, x, /*non_empty_list=*/true); });
  read_into(js.create, m, "create", [&](const Field& x) { return read_bool(d, x); });
  b.jetstream = std::move(js);
}

}  // namespace

void parse_nats_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                       NatsBrokerConfig& b) {
  b.urls = {std::string(config::key("broker_nats", "url").def)};
  if (auto u = m.get("url")) parse_urls(d, *u, b);
  if (auto js = m.get("jetstream")) parse_jetstream(d, *js, b);
  read_into(b.options, m, "options", [&](const Field& x) { return read_options(d, x, base_dir); });
}

}  // namespace sluice::config
