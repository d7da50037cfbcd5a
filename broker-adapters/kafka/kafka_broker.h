// The `kafka` broker: librdkafka's C API (Debian librdkafka-dev). This is the
// module's public header (README.md).
//
// Ownership and threads: KafkaBroker owns the KafkaSink (one producer and its poll
// thread) and the KafkaBrowser, and shares its KafkaProbe with the sink and sources. Sources it makes are owned by the caller and are
// independent of it (each has its own consumer). stop() flushes and stops the sink;
// it is idempotent and also run by the destructor.
#pragma once

#include <memory>
#include <string>

#include "broker-adapters/kafka/kafka_sink.h"
#include "config/config.h"
#include "core/broker.h"

namespace sluice::kafka {

// Random access for the `sluice dlq` and `sluice lag` verbs. Each call makes a
// short-lived consumer (assign + seek, no group membership, never commits), so
// calls are independent and thread-safe. Not for the hot path.
class KafkaBrowser final : public TopicBrowser {
 public:
  explicit KafkaBrowser(BrokerConfig cfg) : cfg_(std::move(cfg)) {}
  Result<std::vector<Event>> read(std::string_view topic, int32_t partition,
                                  int64_t from_offset, size_t limit) override;
  Result<Event> get(std::string_view topic, int32_t partition, int64_t offset) override;
  // Always Errc::invalid_argument: Kafka cannot delete single records.
  Result<void> remove(std::string_view topic, int32_t partition, int64_t offset) override;
  Result<std::vector<PartitionLag>> lag(std::string_view topic,
                                        std::string_view group) override;
  // One metadata request for every topic (never one per name: that could create the
  // topic on a cluster that auto-creates), then the partitions' earliest and latest
  // offsets in batched ListOffsets requests.
  Result<Holdings> holdings(const std::vector<std::string>& names,
                            std::chrono::milliseconds budget) override;
  Result<Holdings> all_holdings(size_t limit, std::chrono::milliseconds budget) override;

 private:
  const BrokerConfig cfg_;
};

class KafkaBroker final : public Broker {
 public:
  static Result<std::unique_ptr<KafkaBroker>> open(const BrokerConfig& cfg);
  ~KafkaBroker() override;

  std::string_view name() const override { return cfg_.name; }
  // An empty group means the broker's configured group.
  Result<std::unique_ptr<Source>> make_source(const std::string& topic,
                                              const std::string& group, const SourceOptions& opts = {}) override;
  Sink& sink() override { return *sink_; }
  TopicBrowser* browser() override { return &browser_; }
  void stop() override;
  std::shared_ptr<const BrokerProbe> probe() const override { return probe_; }

 private:
  KafkaBroker(BrokerConfig cfg, std::shared_ptr<KafkaProbe> probe, std::unique_ptr<KafkaSink> sink)
      : cfg_(std::move(cfg)), probe_(std::move(probe)), sink_(std::move(sink)), browser_(cfg_) {}

  const BrokerConfig cfg_;
  const std::shared_ptr<KafkaProbe> probe_;
  std::unique_ptr<KafkaSink> sink_;
  KafkaBrowser browser_;
};

// The factory the engine calls for `kind: kafka` brokers. Checks every option
// (an unknown or invalid librdkafka property is an Errc::invalid_argument naming it)
// and waits up to kConnectTimeout for the cluster to answer a metadata request: a
// cluster that does not is an Errc::invalid_argument too (bad bootstrap, port, TLS or
// SASL settings). Once open, outages are ridden out, never fatal.
Result<std::unique_ptr<Broker>> make_kafka_broker(const BrokerConfig& cfg);
}  // namespace sluice::kafka
