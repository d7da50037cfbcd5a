// CoreSource: a core NATS subject subscription (wildcards allowed) in a queue group
// (= the group), so several sluice processes split the messages.
//
// AT-MOST-ONCE: core NATS stores nothing and has no acks. A message is gone once
// delivered; a crash loses what was in flight, and messages published while no
// subscriber is connected are never seen. traits(): no offsets, no per-message
// acks; settle() and commit() do nothing. Use a JetStream stream for at-least-once.
//
// Ownership and threads: nats.c delivers on the subscription's own thread, which
// calls the listener (batches of one). While paused that thread waits in the
// callback, so nats.c buffers (and beyond its pending limits drops: a slow
// consumer error is logged). `mu_` guards the flags; stop() unsubscribes and waits
// until no callback is running.
#pragma once

#include <nats/nats.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "broker-adapters/nats/nats_codec.h"
#include "broker-adapters/nats/nats_conn.h"
#include "core/broker.h"

namespace sluice::nats {

class CoreSource final : public Source {
 public:
  static Result<std::unique_ptr<CoreSource>> open(NatsConn& conn, std::string subject,
                                                  std::string group);
  ~CoreSource() override;

  std::string_view broker() const override { return conn_.broker(); }
  std::string_view topic() const override { return subject_; }
  std::string_view group() const override { return group_; }
  SourceTraits traits() const override { return {false, false}; }

  Result<void> start(SourceListener& listener) override;
  void stop() override;
  void pause(int32_t partition) override;
  void resume(int32_t partition) override;
  void commit(int32_t, int64_t) override {}
  // Core NATS keeps no backlog: an error (never a zero that would look measured).
  Result<std::vector<PartitionLag>> lag() override;

 private:
  CoreSource(NatsConn& c, std::string subject, std::string group)
      : conn_(c), subject_(std::move(subject)), group_(std::move(group)),
        key_rule_{c.settings().key_header, c.settings().key_token} {}
  static void on_msg(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);

  NatsConn& conn_;
  const std::string subject_, group_;
  const KeyRule key_rule_;
  SourceListener* listener_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::mutex mu_;
  std::condition_variable cv_;
  bool paused_ = false, stopping_ = false, started_ = false;
  int in_callback_ = 0;
};

}  // namespace sluice::nats
