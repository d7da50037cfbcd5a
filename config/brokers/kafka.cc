// brokers.<name> with kind: kafka.
#include "config/brokers/kafka.h"

#include "config/parse.h"

namespace sluice::config {

void parse_kafka_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                        KafkaBrokerConfig& b) {
  auto str = [&](const Field& x) { return read_string(d, x); };
  read_into(b.group, m, "group", str);
  read_into(b.bootstrap, m, "bootstrap", str);
  read_into(b.options, m, "options", [&](const Field& x) { return read_options(d, x, base_dir); });
}

}  // namespace sluice::config
