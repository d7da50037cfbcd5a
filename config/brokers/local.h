// The settings of a `kind: local` broker (broker-adapters/local reads them).
// Part of the immutable Config (read from any thread once loaded). config/README.md
// says why the per-kind settings live here and not in the adapter's folder.
#pragma once

#include <string>
#include <vector>

namespace sluice {

struct LocalBrokerConfig {
  std::string path;            // the database file; absolute after loading
  int partitions = 4;          // partitions of topics created on first use
  std::string group = "sluice";  // consumer group whose offsets are stored
  // Publishable without a subscriber (topology::known_topics); accept_any_topic: all.
  std::vector<std::string> topics;
  bool accept_any_topic = false;

  bool operator==(const LocalBrokerConfig&) const = default;
};

}  // namespace sluice
