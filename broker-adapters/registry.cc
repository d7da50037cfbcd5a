#include "broker-adapters/registry.h"

#include "broker-adapters/local/local_broker.h"

namespace sluice {

Result<std::unique_ptr<Broker>> make_broker(const BrokerConfig& cfg) {
  switch (cfg.kind) {
    case BrokerKind::local:
      return make_local_broker(cfg);
    case BrokerKind::kafka:
    case BrokerKind::nats:
      break;
  }
  return Error{Errc::invalid_argument, std::string("broker '") + cfg.name + "': kind '" +
                                           to_string(cfg.kind) +
                                           "' is not available in this build yet"};
}

}  // namespace sluice
