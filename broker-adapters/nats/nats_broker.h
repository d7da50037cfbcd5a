// The `nats` broker: core NATS subjects and JetStream streams, on nats.c. This is
// the module's public header (README.md).
//
// Ownership and threads: NatsBroker owns the connection (NatsConn, with nats.c's
// threads), the NatsSink and the NatsBrowser. Sources it makes are owned by the
// caller and must be destroyed before the broker. stop() fails publishes still
// unacknowledged after a flush and closes the connection; it is idempotent.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "broker-adapters/nats/js_source.h"
#include "broker-adapters/nats/nats_conn.h"
#include "broker-adapters/nats/nats_sink.h"
#include "config/config.h"
#include "core/broker.h"

namespace sluice::nats {

// Random access to the stream for the `sluice dlq` and `sluice lag` verbs: topic =
// subject (filter), partition 0, offset = stream sequence. Thread-safe.
class NatsBrowser final : public TopicBrowser {
 public:
  NatsBrowser(NatsConn& c, std::string stream) : conn_(c), stream_(std::move(stream)) {}
  Result<std::vector<Event>> read(std::string_view topic, int32_t partition,
                                  int64_t from_offset, size_t limit) override;
  Result<Event> get(std::string_view topic, int32_t partition, int64_t offset) override;
  Result<void> remove(std::string_view topic, int32_t partition, int64_t offset) override;
  Result<std::vector<PartitionLag>> lag(std::string_view topic,
                                        std::string_view group) override;
  // The stream's messages per subject (stream info with a subjects filter): one
  // request per name, or one for every subject of the stream.
  Result<Holdings> holdings(const std::vector<std::string>& names,
                            std::chrono::milliseconds budget) override;
  Result<Holdings> all_holdings(size_t limit, std::chrono::milliseconds budget) override;

 private:
  NatsConn& conn_;
  const std::string stream_;
};

// What open() refuses in a `jetstream:` stanza before it asks the server: a stream
// name JetStream does not accept (empty, or with '.', '*', '>' or white space).
Result<void> check_jetstream(const BrokerConfig& cfg);

class NatsBroker final : public Broker {
 public:
  // Connects, then checks (or, with jetstream.create, creates) the stream.
  static Result<std::unique_ptr<NatsBroker>> open(const BrokerConfig& cfg);
  ~NatsBroker() override;

  std::string_view name() const override { return conn_->broker(); }
  // JetStream (the broker has `jetstream`): a durable pull consumer named `group`
  // (empty = the broker's group) with the broker's ack_wait / max_ack_pending.
  // Otherwise a core NATS queue subscription (at-most-once).
  Result<std::unique_ptr<Source>> make_source(const std::string& topic,
                                              const std::string& group, const SourceOptions& opts = {}) override;
  // The same with explicit consumer settings (max_ack_pending = the function's
  // concurrency budget). Errc::invalid_argument when the broker has no stream.
  Result<std::unique_ptr<JetStreamSource>> make_jetstream_source(const std::string& topic,
                                                                 const std::string& group,
                                                                 JsSourceOptions opt);
  Sink& sink() override { return *sink_; }
  TopicBrowser* browser() override { return browser_.get(); }
  void stop() override;

  // Connection state for sluice_broker_connected / sluice_broker_reconnects_total.
  bool connected() const { return conn_ && conn_->connected(); }
  uint64_t reconnects() const { return conn_ ? conn_->reconnects() : 0; }
  std::optional<ConnectionState> connection_state() const override {
    return ConnectionState{connected(), reconnects()};
  }
  std::shared_ptr<const BrokerProbe> probe() const override {
    return conn_ ? conn_->shared_probe() : nullptr;
  }

  NatsConn& conn() { return *conn_; }
  const std::string& stream() const { return stream_; }  // empty: no JetStream
  const std::vector<std::string>& stream_subjects() const { return subjects_; }

 private:
  NatsBroker() = default;
  Result<void> setup_stream(const BrokerConfig& cfg);

  std::unique_ptr<NatsConn> conn_;
  std::string group_;
  std::string stream_;
  std::vector<std::string> subjects_;
  std::unique_ptr<NatsSink> sink_;
  std::unique_ptr<NatsBrowser> browser_;
  bool stopped_ = false;
};

// The factory the engine calls for `kind: nats` brokers.
Result<std::unique_ptr<Broker>> make_nats_broker(const BrokerConfig& cfg);
}  // namespace sluice::nats
