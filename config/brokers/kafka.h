// The settings of a `kind: kafka` broker (broker-adapters/kafka reads them).
// Part of the immutable Config (read from any thread once loaded). config/README.md
// says why the per-kind settings live here and not in the adapter's folder.
#pragma once

#include <map>
#include <string>

namespace sluice {

struct KafkaBrokerConfig {
  std::string bootstrap;         // host:port[,host:port...]
  std::string group = "sluice";  // consumer group id
  std::map<std::string, std::string> options;  // passed through to librdkafka (checked there)

  bool operator==(const KafkaBrokerConfig&) const = default;
};

}  // namespace sluice
