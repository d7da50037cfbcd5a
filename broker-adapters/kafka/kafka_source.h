// KafkaSource: consumes one topic for one consumer group (librdkafka high-level
// consumer, cooperative-sticky assignor).
//
// Offsets (README.md): enable.auto.offset.store=false, enable.auto.commit=true —
// commit(p, next) only *stores* `next` (rd_kafka_offset_store) and librdkafka's
// auto-commit sends stored offsets every auto.commit.interval.ms (100 ms by default
// here); flush_commits() commits them synchronously; on revoke and on close the
// stored offsets are committed synchronously too. Nothing else stores offsets, so a
// record is committed only once the dispatcher says its partition prefix finished.
//
// Ownership and threads:
//  - Made by KafkaBroker::make_source; the caller owns it (it needs no broker; it
//    shares the broker's KafkaProbe, which counts its decode and consume errors).
//  - The consumer handle is made in open() (so bad options fail there) and
//    destroyed by the destructor, after rd_kafka_consumer_close.
//  - start() subscribes and launches the poll thread (`sluice-kafka-c`), which
//    alone calls rd_kafka_consumer_poll, serves the rebalance callback, applies
//    pause/resume and calls the listener (on_deliveries, on_partitions_revoked,
//    on_source_error) with no lock of ours held. stop() joins it, so it must not
//    be called from inside those callbacks.
//  - `mu_` guards the wanted-paused set, the assigned set, the dirty flag and the
//    throttle state; pause/resume/throttle/commit/flush_commits/lag may be called
//    from any thread.
//  - Back pressure (throttle): while throttled the poll thread stops calling
//    rd_kafka_consumer_poll, so what librdkafka prefetched stays in its queue
//    (bounded by queued.max.messages.kbytes) and is handed out at once when the
//    throttle lifts; pausing would drop it (librdkafka refetches a resumed
//    partition). A throttle that lasts kThrottlePauseAfter pauses every partition
//    and polls again, so rebalances and max.poll.interval.ms are served while a
//    slow function holds its budget.
//  - lag() peeks with a second consumer of its own (LagPeeker), never with the
//    subscribed one.
//  - commit(), flush_commits() and lag() work from open() until destruction
//    (also after stop(), as core/broker.h requires).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker-adapters/kafka/kafka_client.h"
#include "broker-adapters/kafka/kafka_lag.h"
#include "broker-adapters/kafka/kafka_probe.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/log_limit.h"

namespace sluice::kafka {

class KafkaSource final : public Source {
 public:
  static Result<std::unique_ptr<KafkaSource>> open(const BrokerConfig& cfg, std::string topic,
                                                   std::string group,
                                                   std::shared_ptr<KafkaProbe> probe);
  ~KafkaSource() override;

  std::string_view broker() const override { return broker_; }
  std::string_view topic() const override { return topic_; }
  std::string_view group() const override { return group_; }
  SourceTraits traits() const override { return {true, false, true}; }

  Result<void> start(SourceListener& listener) override;
  void stop() override;
  void pause(int32_t partition) override;
  void resume(int32_t partition) override;
  void throttle(bool on) override;
  void commit(int32_t partition, int64_t next_offset) override;
  Result<void> flush_commits() override;
  // Every partition of the topic for this group (committed offsets are the group's),
  // with lag_seconds from a peek at the oldest unconsumed records (kafka_lag.h).
  Result<std::vector<PartitionLag>> lag() override;

  // Partitions assigned to this member now (tests, diagnostics).
  std::vector<int32_t> assignment();
  // Where this source counts its decode and consume errors (shared with the broker).
  const KafkaProbe& probe() const { return *probe_; }
  // Throttled so long that every partition is paused and polled (tests, diagnostics).
  bool throttle_paused() {
    std::lock_guard g(mu_);
    return throttle_paused_;
  }

 private:
  KafkaSource(std::string broker, std::string topic, std::string group,
              std::shared_ptr<KafkaProbe> probe)
      : broker_(std::move(broker)), topic_(std::move(topic)), group_(std::move(group)),
        probe_(std::move(probe)) {}
  static void on_rebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err,
                           rd_kafka_topic_partition_list_t* parts, void* opaque);
  void rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts);
  void run();
  void nudge_fetcher();
  void take(rd_kafka_message_t* m, std::vector<Delivery>& batch);
  void apply_pauses();
  bool hold_back();
  bool wants_paused(int32_t partition) const;  // under mu_
  void set_paused(const std::vector<int32_t>& parts, bool paused);
  void report(const Error& e);
  void wake();

  const std::string broker_, topic_, group_;
  const std::shared_ptr<KafkaProbe> probe_;
  Handle rk_;
  std::unique_ptr<LagPeeker> peeker_;  // its own reader; lag() may run on any thread
  rd_kafka_queue_t* queue_ = nullptr;   // the consumer queue, for rd_kafka_queue_yield
  rd_kafka_topic_t* rkt_ = nullptr;     // the topic's handle, for rd_kafka_offset_store
  SourceListener* listener_ = nullptr;  // set by start(), read by the poll thread

  std::mutex stop_mu_;  // serializes start()/stop() (the thread join)
  std::thread thread_;
  bool started_ = false;  // under stop_mu_
  std::atomic<bool> stopping_{false};
  std::atomic<bool> closing_{false};  // destructor: revoke without calling the listener

  std::mutex mu_;
  std::set<int32_t> want_paused_;  // what pause()/resume() asked for
  std::set<int32_t> assigned_;     // current assignment (written by the rebalance callback)
  bool dirty_ = false;             // want_paused_ changed since the poll thread looked
  bool throttled_ = false;         // throttle(true): poll nothing
  bool throttle_paused_ = false;   // throttled for kThrottlePauseAfter: all paused, polling
  std::chrono::steady_clock::time_point throttled_since_;
  std::condition_variable throttle_cv_;  // the poll thread waits on it while throttled

  std::set<int32_t> applied_;  // poll thread only: paused at librdkafka
  // Poll thread only: next offset to hand out per partition since its assignment
  // (nudge_fetcher() seeks there; a record below it is a repeat and is skipped).
  std::map<int32_t, int64_t> next_offset_;

  bool decode_warned_ = false;  // poll thread only: the first malformed record is logged
  LogLimit log_limit_;
};

}  // namespace sluice::kafka
