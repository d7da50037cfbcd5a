// The section parsers of the loader (config.cc drives them in this order:
// brokers, http/metrics/engine, functions). Each reports into Diagnostics and fills
// the part of Config it owns. Run on the loading thread only.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "config/reader.h"

namespace sluice::config {

// What functions may refer to: every declared broker name (valid or not, so one bad
// broker does not also make each reference to it an error).
struct BrokerNames {
  std::vector<std::string> names;
  bool known = true;  // false when the brokers section itself is unusable: skip reference checks
  std::string first;  // the default broker of subscriptions, dead letters and outputs
};

// `brokers:` (absent: the default local broker).
BrokerNames parse_brokers(Diagnostics& d, const std::optional<Field>& f, Config& c);
// The keys of one broker of each kind, read from its map (`kind` already read);
// config/brokers/<kind>.cc.
void parse_local_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                        LocalBrokerConfig& b);
void parse_kafka_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                        KafkaBrokerConfig& b);
void parse_nats_broker(Diagnostics& d, const MapReader& m, const std::string& base_dir,
                       NatsBrokerConfig& b);
// The database of the local broker used when `brokers:` is absent.
std::string default_local_path(const std::string& base_dir);
// `functions:`
void parse_functions(Diagnostics& d, const Field& f, const BrokerNames& brokers, Config& c);

// A subscription's `filter:` (config/subscription_filter.cc); nullopt after reporting.
std::optional<filter::SubscriptionFilter> parse_filter(Diagnostics& d, const Field& f);

}  // namespace sluice::config
