// brokers.<name> with kind: local.
#include "config/brokers/local.h"

#include "config/parse.h"

namespace sluice::config {


std::string default_local_path(const std::string& base_dir) {
  return absolute_path(base_dir, std::string(config::key("broker_local", "path").def));
}

void parse_local_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                        LocalBrokerConfig& b) {
  auto str = [&](const Field& x) { return read_string(d, x); };
  read_into(b.group, m, "group", str);
  b.path = std::string(config::key("broker_local", "path").def);
  read_into(b.path, m, "path", str);
  b.path = absolute_path(base_dir, b.path);
  read_into(b.partitions, m, "partitions", [&](const Field& x) {
    return read_uint(d, x, config::key("broker_local", "partitions"));
  });
  read_into(b.accept_any_topic, m, "accept_any_topic",
            [&](const Field& x) { return read_bool(d, x); });
  if (auto f = m.get("topics")) {
    if (!f->node.IsSequence()) {
      d.error(f->path, f->line, "expected a list of topic names, got " + describe(f->node));
      return;
    }
    for (std::size_t i = 0; i < f->node.size(); ++i) {
      const YAML::Node item = f->node[i];
      if (auto t = read_topic(d, Field{item, index_path(f->path, i), line_of(item)}))
        b.topics.push_back(std::move(*t));
    }
  }
}

}  // namespace sluice::config
