#include "broker-adapters/local/local_broker.h"

#include "broker-adapters/local/local_source.h"

namespace sluice::local {

Result<std::unique_ptr<LocalBroker>> LocalBroker::open(LocalQueueOptions opt,
                                                       std::string group) {
  SLUICE_TRY(q, LocalQueue::open(std::move(opt)));
  return std::unique_ptr<LocalBroker>(new LocalBroker(std::move(q), std::move(group)));
}

LocalBroker::~LocalBroker() { stop(); }

Result<std::unique_ptr<Source>> LocalBroker::make_source(const std::string& topic,
                                                         const std::string& group, const SourceOptions& opts) {
  SLUICE_TRY(src, LocalSource::open(*queue_, topic, group.empty() ? group_ : group));
  return std::unique_ptr<Source>(std::move(src));
}

void LocalBroker::stop() { queue_->stop(); }

Result<std::unique_ptr<Broker>> make_local_broker(const BrokerConfig& cfg) {
  if (cfg.kind() != BrokerKind::local)
    return Error{Errc::invalid_argument,
                 "broker '" + cfg.name + "' is not of kind local"};
  SLUICE_TRY(b, local::LocalBroker::open(local::local_queue_options(cfg), cfg.local().group));
  return std::unique_ptr<Broker>(std::move(b));
}

}  // namespace sluice::local
