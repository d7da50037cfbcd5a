#include "broker-adapters/kafka/kafka_broker.h"

#include "broker-adapters/kafka/kafka_source.h"

namespace sluice::kafka {

Result<std::unique_ptr<KafkaBroker>> KafkaBroker::open(const BrokerConfig& cfg) {
  SLUICE_TRY(sink, KafkaSink::open(cfg));
  // A consumer's options are checked now too, not at the first make_source.
  SLUICE_TRY(probe, make_client(cfg, Role::consumer, cfg.group));
  rd_kafka_consumer_close(probe.get());
  return std::unique_ptr<KafkaBroker>(new KafkaBroker(cfg, std::move(sink)));
}

KafkaBroker::~KafkaBroker() { stop(); }

Result<std::unique_ptr<Source>> KafkaBroker::make_source(const std::string& topic,
                                                         const std::string& group, const SourceOptions& opts) {
  SLUICE_TRY(src, KafkaSource::open(cfg_, topic, group.empty() ? cfg_.group : group));
  return std::unique_ptr<Source>(std::move(src));
}

void KafkaBroker::stop() { sink_->stop(); }

}  // namespace sluice::kafka

namespace sluice {

Result<std::unique_ptr<Broker>> make_kafka_broker(const BrokerConfig& cfg) {
  if (cfg.kind != BrokerKind::kafka)
    return Error{Errc::invalid_argument, "broker '" + cfg.name + "' is not of kind kafka"};
  SLUICE_TRY(b, kafka::KafkaBroker::open(cfg));
  return std::unique_ptr<Broker>(std::move(b));
}

}  // namespace sluice
