// The settings of a `kind: nats` broker (broker-adapters/nats reads them).
// Part of the immutable Config (read from any thread once loaded). config/README.md
// says why the per-kind settings live here and not in the adapter's folder.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice {

struct JetStreamConfig {
  std::string stream;
  std::vector<std::string> subjects;
  bool create = false;  // create the stream at start when missing

  bool operator==(const JetStreamConfig&) const = default;
};

struct NatsBrokerConfig {
  std::vector<std::string> urls;                // nats:// or tls://; never empty after loading
  std::optional<JetStreamConfig> jetstream;     // absent = core NATS
  std::map<std::string, std::string> options;   // checked by the adapter (nats_conn.h)
  // Not a config key: the prefix of durable consumer names (`<group>_<function>`).
  std::string group = "sluice";

  bool operator==(const NatsBrokerConfig&) const = default;
};

}  // namespace sluice
