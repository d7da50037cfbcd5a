// The two small interfaces every broker adapter implements (DESIGN.md):
//
//   Source — consumes a topic for a consumer group and hands out Deliveries.
//   Sink   — publishes events; the completion fires once the event is durable.
//
// Adapters know nothing about functions, retries or dead letters: the dispatcher
// alone decides when a delivery is finished, and tells the Source through
// `Delivery::ack/nack/term` (per-message brokers such as NATS JetStream) and
// `Source::commit` (offset brokers such as Kafka and the local queue).
//
// Threads: adapters run their own threads. Every callback below is invoked on an
// adapter thread; the receiver must not block in it and hands work over by posting
// to its own executor. All Source/Sink methods are thread-safe unless noted.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/broker_probe.h"
#include "core/event.h"
#include "core/result.h"

namespace sluice {

class Source;

// How a finished delivery is settled at the broker.
enum class Settle : uint8_t {
  ack,   // done (success or dead-lettered): never deliver again
  nack,  // redeliver after a delay (per-message-ack brokers only)
  term,  // stop redelivering: the event was dead-lettered
};

// Opaque adapter-private coordinates of one delivery (no per-event allocation).
struct DeliveryTag {
  int32_t partition = 0;
  int64_t offset = 0;
  uint64_t token = 0;  // adapter-private (e.g. a JetStream reply-subject slot)
};

// One event handed out by a Source, with the handle to settle it.
// Move-only. Settling is optional for offset sources (commit() does the work).
class Delivery {
 public:
  Delivery() = default;
  Delivery(Event ev, Source* src, DeliveryTag tag)
      : event(std::move(ev)), source_(src), tag_(tag) {}
  // With a default-made event, to be filled in place (no Event move on the hot path).
  Delivery(Source* src, DeliveryTag tag) : source_(src), tag_(tag) {}
  Delivery(Delivery&&) noexcept = default;
  Delivery& operator=(Delivery&&) noexcept = default;
  Delivery(const Delivery&) = delete;
  Delivery& operator=(const Delivery&) = delete;

  Event event;
  // Times the broker delivered this event before (JetStream NumDelivered - 1);
  // 0 when the broker does not say. Counted as attempts already made.
  uint32_t redeliveries = 0;
  // Times the broker handed this event out before without sluice settling it or
  // explaining why (the engine died holding it): counted as crashes towards
  // retry.max_crashes (dispatcher/age.h). 0 when the broker does not count.
  uint32_t unsettled = 0;

  void ack();
  void nack(std::chrono::milliseconds delay);
  void term();
  Source* source() const { return source_; }
  const DeliveryTag& tag() const { return tag_; }

 private:
  Source* source_ = nullptr;
  DeliveryTag tag_;
};

// What a Source tells its consumer (the dispatcher).
class SourceListener {
 public:
  virtual ~SourceListener() = default;
  // A batch of deliveries, in offset order per partition.
  virtual void on_deliveries(Source& src, std::vector<Delivery>&& batch) = 0;
  // Partitions taken away (rebalance): the listener must stop committing for them.
  virtual void on_partitions_revoked(Source& src, const std::vector<int32_t>& parts) {}
  // A broker/network failure the source is riding out (logged and counted by it).
  virtual void on_source_error(Source& src, const Error& err) {}
};

struct PartitionLag {
  std::string broker, topic, group;
  int32_t partition = 0;
  int64_t committed = -1;  // next offset to consume; -1 when nothing is committed
  int64_t end = 0;         // next offset to be written (high watermark)
  int64_t lag = 0;         // messages waiting (end - max(committed, log start))
  std::optional<double> lag_seconds;  // age of the oldest unconsumed event, if known
};

struct SourceTraits {
  bool commits_offsets = true;  // contiguous-prefix commits (Kafka, local)
  bool per_message_ack = false; // Delivery::ack/nack/term matter (NATS JetStream)
  // The consumer's in-flight budget is enforced with throttle() (stop taking events
  // from the client, which keeps what it prefetched) instead of pausing each
  // partition (Kafka: librdkafka drops a paused partition's prefetch and refetches it
  // on resume). pause()/resume() still serve ordering and retry gates.
  bool throttles = false;
};

// Events a function may hold (received and not yet settled) when nothing pins it:
// sized for throughput (a source must be able to hand out the next events while the
// current ones run), not for `concurrency`, which bounds the events *running*. The
// bytes held are bounded by the function's max_inflight_bytes as well. The
// dispatcher's budget and the window a broker keeps unsettled for the consumer
// (JetStream's MaxAckPending) are both this number.
inline uint32_t held_budget(uint32_t concurrency) {
  constexpr uint32_t kMinHeld = 4096;
  return concurrency > kMinHeld / 2 ? 2 * concurrency : kMinHeld;
}

class Source {
 public:
  virtual ~Source() = default;
  virtual std::string_view broker() const = 0;
  virtual std::string_view topic() const = 0;
  virtual std::string_view group() const = 0;
  virtual SourceTraits traits() const = 0;

  // Begins consuming; deliveries go to `listener` (which outlives the Source).
  virtual Result<void> start(SourceListener& listener) = 0;
  // Stops consuming; no delivery callback runs after it returns. Idempotent.
  // commit() and flush_commits() keep working after stop() until the Source is
  // destroyed: the engine stops intake first, drains in-flight work, then commits.
  virtual void stop() = 0;

  // Back pressure: stop/restart handing out events of one partition.
  virtual void pause(int32_t partition) = 0;
  virtual void resume(int32_t partition) = 0;
  // Back pressure on the whole source, for sources whose traits say `throttles`:
  // true = hand out nothing more until throttle(false). May be called from any thread.
  virtual void throttle(bool on) {}

  // Offset brokers: everything before `next_offset` on `partition` is finished.
  // May be batched; `flush_commits` makes it durable (shutdown, revoke).
  virtual void commit(int32_t partition, int64_t next_offset) = 0;
  virtual Result<void> flush_commits() { return ok(); }

  // Per-message brokers: settle one delivery.
  virtual void settle(const DeliveryTag& tag, Settle how, std::chrono::milliseconds delay) {}

  // Lag of every partition this source reads (an error, never zero, when unknown).
  virtual Result<std::vector<PartitionLag>> lag() = 0;
};

inline void Delivery::ack() {
  if (source_) source_->settle(tag_, Settle::ack, {});
}
inline void Delivery::nack(std::chrono::milliseconds delay) {
  if (source_) source_->settle(tag_, Settle::nack, delay);
}
inline void Delivery::term() {
  if (source_) source_->settle(tag_, Settle::term, {});
}

struct PublishAck {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// Completion of one publish, on an adapter thread: the event is durable, or not.
using PublishCallback = std::function<void(Result<PublishAck>)>;

class Sink {
 public:
  virtual ~Sink() = default;
  virtual std::string_view broker() const = 0;
  // Publishes `ev` (its key, headers and CloudEvents attributes) to `topic`.
  // `done` is called exactly once, after the event is durable or has failed.
  virtual void publish(std::string_view topic, Event ev, PublishCallback done) = 0;
  // Waits until every publish so far has completed or `timeout` passed.
  virtual Result<void> flush(std::chrono::milliseconds timeout) = 0;
};

// Events a topic holds (TopicBrowser::holdings).
struct TopicHolding {
  std::string topic;
  int64_t events = 0;
};
struct Holdings {
  std::vector<TopicHolding> topics;  // those holding events, in name order
  std::string incomplete;            // non-empty: why some topics were not counted
};

// Random access to stored events of a topic (the `sluice dlq` verbs, `sluice lag`).
// Not on the hot path. Thread-safe.
class TopicBrowser {
 public:
  virtual ~TopicBrowser() = default;
  // Up to `limit` events of `topic` with offset >= from_offset, in (partition, offset)
  // order; partition -1 = every partition. Each event has partition/offset set.
  virtual Result<std::vector<Event>> read(std::string_view topic, int32_t partition,
                                          int64_t from_offset, size_t limit) = 0;
  // Errc::not_found when there is no such event.
  virtual Result<Event> get(std::string_view topic, int32_t partition, int64_t offset) = 0;
  // Removes one stored event (DLQ replay). Errc::invalid_argument where the broker
  // cannot delete (Kafka); callers then track what they replayed themselves.
  virtual Result<void> remove(std::string_view topic, int32_t partition, int64_t offset) = 0;
  // Every partition's lag for a consumer group on a topic.
  virtual Result<std::vector<PartitionLag>> lag(std::string_view topic,
                                                std::string_view group) = 0;
  // How many events each of `names` holds now, summed over its partitions (`sluice lag`
  // lists topics that hold events and have no subscriber). Names the broker does not
  // have, or that hold nothing, are left out. Asks the broker once where it can (Kafka:
  // one metadata and one offsets request); stops at `budget` and says so in
  // Holdings::incomplete. Errc::invalid_argument where the broker keeps no events.
  virtual Result<Holdings> holdings(const std::vector<std::string>& names,
                                    std::chrono::milliseconds budget) {
    (void)names, (void)budget;
    return Error{Errc::invalid_argument, "this broker keeps no events to count"};
  }
  // The same for every topic the broker has, up to `limit` that hold events (`sluice
  // lag --all`); the broker's own topics (Kafka: names that begin with '_') skipped.
  virtual Result<Holdings> all_holdings(size_t limit, std::chrono::milliseconds budget) {
    (void)limit, (void)budget;
    return Error{Errc::invalid_argument, "this broker does not list its topics"};
  }
};

// What the engine knows about the consumer of a Source, for adapters that size
// broker-side windows from it (JetStream's MaxAckPending). Zero = adapter default.
struct SourceOptions {
  uint32_t max_in_flight = 0;                // events the consumer may hold unsettled
  std::chrono::milliseconds max_run_time{0};  // longest a function may run (timeout)
};

// The connection of a broker that keeps one (NATS): exported as
// sluice_broker_connected / sluice_broker_reconnects_total.
struct ConnectionState {
  bool connected = false;
  uint64_t reconnects = 0;  // since start
};

// Whether a broker that stores events itself (the local queue) can write now:
// exported as sluice_local_queue_writable / sluice_local_queue_write_failures_total,
// and /readyz answers not ready while `writable` is false (a full disk).
struct WriteHealth {
  bool writable = true;
  uint64_t failed_writes = 0;  // events whose write failed, since start
};

// A broker as configured: makes Sources and a shared Sink. One per `brokers:` entry.
class Broker {
 public:
  virtual ~Broker() = default;
  virtual std::string_view name() const = 0;
  virtual Result<std::unique_ptr<Source>> make_source(const std::string& topic,
                                                      const std::string& group,
                                                      const SourceOptions& opts = {}) = 0;
  virtual Sink& sink() = 0;
  virtual TopicBrowser* browser() { return nullptr; }  // null when the broker has none
  virtual void stop() = 0;  // stops the sink's threads after flushing
  // Null for brokers without a connection of their own to watch (local, Kafka:
  // librdkafka reconnects per broker and reports errors through the sources).
  virtual std::optional<ConnectionState> connection_state() const { return std::nullopt; }
  // Null for brokers whose storage is elsewhere (Kafka, NATS). Any thread.
  virtual std::optional<WriteHealth> write_health() const { return std::nullopt; }
  // The adapter's degraded-mode counters; shared, so it may outlive the broker (a
  // scrape racing shutdown reads a probe nobody increments any more). Any thread.
  virtual std::shared_ptr<const BrokerProbe> probe() const { return nullptr; }
};

}  // namespace sluice
