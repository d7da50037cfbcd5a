// The `local` broker: an embedded durable queue in one SQLite file (WAL mode), the
// zero-setup default. This is the module's public header (README.md).
//
// Ownership and threads: LocalBroker owns the LocalQueue (and with it the writer
// thread), the LocalSink and the LocalBrowser. Sources it makes are owned by the
// caller and must be destroyed before the broker. stop() answers every queued
// publish, writes staged commits and joins the writer; it is idempotent.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "broker-adapters/local/local_queue.h"
#include "broker-adapters/local/local_sink.h"
#include "config/config.h"
#include "core/broker.h"

namespace sluice::local {

// Random access for the `sluice dlq` and `sluice lag` verbs, on the queue's shared
// read connection (serialized). Thread-safe.
class LocalBrowser final : public TopicBrowser {
 public:
  explicit LocalBrowser(LocalQueue& q) : q_(q) {}
  Result<std::vector<Event>> read(std::string_view topic, int32_t partition,
                                  int64_t from_offset, size_t limit) override;
  Result<Event> get(std::string_view topic, int32_t partition, int64_t offset) override;
  Result<void> remove(std::string_view topic, int32_t partition, int64_t offset) override;
  Result<std::vector<PartitionLag>> lag(std::string_view topic,
                                        std::string_view group) override;
  // Queries of the database file alone; `budget` is checked between topics.
  Result<Holdings> holdings(const std::vector<std::string>& names,
                            std::chrono::milliseconds budget) override;
  Result<Holdings> all_holdings(size_t limit, std::chrono::milliseconds budget) override;

 private:
  LocalQueue& q_;
};

class LocalBroker final : public Broker {
 public:
  // `group` is used by make_source when it is given no group (BrokerConfig::group).
  static Result<std::unique_ptr<LocalBroker>> open(LocalQueueOptions opt,
                                                   std::string group = "sluice");
  ~LocalBroker() override;

  std::string_view name() const override { return queue_->options().broker; }
  // An empty group means the broker's configured group.
  Result<std::unique_ptr<Source>> make_source(const std::string& topic,
                                              const std::string& group, const SourceOptions& opts = {}) override;
  Sink& sink() override { return sink_; }
  TopicBrowser* browser() override { return &browser_; }
  void stop() override;
  std::optional<WriteHealth> write_health() const override {
    return WriteHealth{queue_->writable(), queue_->failed_appends()};
  }
  std::shared_ptr<const BrokerProbe> probe() const override { return queue_->shared_probe(); }

  LocalQueue& queue() { return *queue_; }

 private:
  LocalBroker(std::unique_ptr<LocalQueue> q, std::string group)
      : queue_(std::move(q)), group_(std::move(group)), sink_(*queue_), browser_(*queue_) {}

  std::unique_ptr<LocalQueue> queue_;
  std::string group_;
  LocalSink sink_;
  LocalBrowser browser_;
};

// The factory the engine calls for `kind: local` brokers.
Result<std::unique_ptr<Broker>> make_local_broker(const BrokerConfig& cfg);
}  // namespace sluice::local
