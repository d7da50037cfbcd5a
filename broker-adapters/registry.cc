#include "broker-adapters/registry.h"

#include "broker-adapters/local/local_broker.h"
#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_client.h"
#include "broker-adapters/nats/nats_broker.h"
#include "broker-adapters/nats/nats_conn.h"

namespace sluice {

Result<std::unique_ptr<Broker>> make_broker(const BrokerConfig& cfg) {
  switch (cfg.kind) {
    case BrokerKind::local:
      return make_local_broker(cfg);
    case BrokerKind::nats:
      return make_nats_broker(cfg);
    case BrokerKind::kafka:
      return make_kafka_broker(cfg);
  }
  return Error{Errc::invalid_argument, std::string("broker '") + cfg.name + "': unknown kind '" +
                                           to_string(cfg.kind) + "'"};
}

Result<void> check_broker_options(const BrokerConfig& cfg) {
  switch (cfg.kind) {
    case BrokerKind::local: return ok();
    case BrokerKind::kafka: return kafka::check_options(cfg);
    case BrokerKind::nats: {
      SLUICE_TRY(nats::parse_settings(cfg));
      return ok();
    }
  }
  return ok();
}

std::string consumer_group(const BrokerConfig& broker, const std::string& function) {
  if (broker.kind != BrokerKind::nats) return broker.group;
  std::string f = function;
  for (char& c : f)
    if (c == '.' || c == '*' || c == '>') c = '_';
  return broker.group + "_" + f;
}

}  // namespace sluice
