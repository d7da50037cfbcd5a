// KafkaSink: the Sink of a Kafka broker — an idempotent librdkafka producer.
//
// Ownership and threads:
//  - Owned by KafkaBroker; counts producer errors in the broker's KafkaProbe. Owns
//    the producer handle and one poll thread
//    (`sluice-kafka-p`) that serves delivery reports: every PublishCallback runs
//    there (or on a thread inside flush(), which also serves reports), exactly once.
//    A publish that librdkafka refuses at once (queue full, bad topic) is answered
//    on the caller's thread.
//  - publish/flush are thread-safe. `mu_` (shared for publish, exclusive for stop)
//    makes sure no publish races the handle's destruction; after stop() publishes
//    fail with Errc::closed.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>

#include "broker-adapters/kafka/kafka_client.h"
#include "broker-adapters/kafka/kafka_probe.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/log_limit.h"

namespace sluice::kafka {

class KafkaSink final : public Sink {
 public:
  // Makes the producer (options checked here) and starts the poll thread.
  static Result<std::unique_ptr<KafkaSink>> open(const BrokerConfig& cfg,
                                                 std::shared_ptr<KafkaProbe> probe);
  ~KafkaSink() override;

  std::string_view broker() const override { return name_; }
  void publish(std::string_view topic, Event ev, PublishCallback done) override;
  Result<void> flush(std::chrono::milliseconds timeout) override;
  // Flushes up to `timeout`, fails what is still queued (Errc::closed), joins the
  // poll thread and destroys the producer. Idempotent.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  KafkaSink(std::string name, std::shared_ptr<KafkaProbe> probe)
      : name_(std::move(name)), probe_(std::move(probe)) {}
  static void on_delivery(rd_kafka_t* rk, const rd_kafka_message_t* msg, void* opaque);
  static void on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque);
  void run();

  const std::string name_;
  const std::shared_ptr<KafkaProbe> probe_;
  Handle rk_;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::shared_mutex mu_;  // guards rk_ against destruction while publishing
  bool stopped_ = false;  // under mu_
  LogLimit log_limit_;
};

}  // namespace sluice::kafka
