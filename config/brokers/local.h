// The settings of a `kind: local` broker (broker-adapters/local reads them).
// Part of the immutable Config (read from any thread once loaded). config/README.md
// says why the per-kind settings live here and not in the adapter's folder.
#pragma once

#include <string>

namespace sluice {

struct LocalBrokerConfig {
  std::string path;            // the database file; absolute after loading
  int partitions = 4;          // partitions of topics created on first use
  std::string group = "sluice";  // consumer group whose offsets are stored

  bool operator==(const LocalBrokerConfig&) const = default;
};

}  // namespace sluice
