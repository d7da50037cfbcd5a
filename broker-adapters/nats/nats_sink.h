// NatsSink: the Sink of a NATS broker.
//
//  - A subject covered by the broker's JetStream stream is published with
//    js_PublishMsgAsync; `done` fires from nats.c's ack handler only once the
//    stream acknowledged (PublishAck{subject, 0, stream sequence}), or with an
//    error (no ack within `publish_timeout`, stream error).
//  - Any other subject (or a broker with no `jetstream`) goes out as core NATS:
//    natsConnection_PublishMsg + a flush (PING/PONG) before `done`; this is
//    at-most-once (no storage), and it blocks the caller for one round trip.
//
// Ownership and threads: owned by NatsBroker; holds its own jsCtx (its ack handler
// is this object). `mu_` guards `pending_` (natsMsg* in flight -> callback) and is
// never held while a callback runs. Callbacks run on nats.c's threads, or on the
// caller's thread for immediate failures and core publishes.
#pragma once

#include <nats/nats.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "broker-adapters/nats/nats_conn.h"
#include "core/broker.h"

namespace sluice::nats {

class NatsSink final : public Sink {
 public:
  // `stream_subjects`: the subjects of the broker's stream (empty: core only).
  static Result<std::unique_ptr<NatsSink>> open(NatsConn& conn, std::string stream,
                                                std::vector<std::string> stream_subjects);
  ~NatsSink() override;

  std::string_view broker() const override { return conn_.broker(); }
  void publish(std::string_view topic, Event ev, PublishCallback done) override;
  Result<void> flush(std::chrono::milliseconds timeout) override;
  // Fails every publish still waiting for its ack (Errc::closed); idempotent.
  void stop();

  bool uses_jetstream(std::string_view subject) const;

 private:
  NatsSink(NatsConn& c, std::string stream, std::vector<std::string> subjects)
      : conn_(c), stream_(std::move(stream)), subjects_(std::move(subjects)) {}
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self);
  void complete(natsMsg* msg, Result<PublishAck> r);

  struct Pending {
    std::string topic;
    PublishCallback done;
  };

  NatsConn& conn_;
  const std::string stream_;
  const std::vector<std::string> subjects_;
  jsCtx* js_ = nullptr;  // publishing context; its ack handler is on_ack
  std::mutex mu_;
  std::condition_variable idle_;
  std::unordered_map<natsMsg*, Pending> pending_;
  int calling_ = 0;  // completions taken out of pending_ whose callback still runs
  bool stopped_ = false;
};

}  // namespace sluice::nats
