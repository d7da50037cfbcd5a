// brokers.<name> with kind: local.
#include "config/brokers/local.h"

#include "config/parse.h"

namespace sluice::config_detail {

namespace keys = config_keys;

std::string default_local_path(const std::string& base_dir) {
  return absolute_path(base_dir, std::string(keys::key("broker_local", "path").def));
}

void parse_local_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                        LocalBrokerConfig& b) {
  auto str = [&](const Field& x) { return read_string(d, x); };
  read_into(b.group, m, "group", str);
  b.path = std::string(keys::key("broker_local", "path").def);
  read_into(b.path, m, "path", str);
  b.path = absolute_path(base_dir, b.path);
  read_into(b.partitions, m, "partitions", [&](const Field& x) {
    return read_uint(d, x, keys::key("broker_local", "partitions"));
  });
}

}  // namespace sluice::config_detail
