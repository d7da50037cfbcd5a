// JetStreamSource: consumes a subject filter of a JetStream stream through one
// durable pull consumer (name = the group), with explicit acks. At-least-once:
// a message is acked only when the dispatcher settles it.
//
//  - The consumer is created when missing (AckWait, MaxAckPending, the filter,
//    unlimited MaxDeliver: the dispatcher owns retries) and updated when AckWait or
//    MaxAckPending changed; a durable of the same name with another filter is an
//    error. The subscription binds to it, so unsubscribing never deletes it.
//  - One partition (0); offset = stream sequence; DeliveryTag.token = a slot in
//    the table of held natsMsg*, which settle() acks / naks / terms and destroys.
//
// Ownership and threads:
//  - The fetch thread (`sluice-nats-f`, started by start()) owns the subscription:
//    it pulls batches sized by the free budget (max_ack_pending - held, none while
//    paused), converts them and calls the listener with no lock held. It also runs
//    the in-progress keep-alives: every held message older than AckWait/2 gets
//    natsMsg_InProgress every AckWait/2, so long functions are not redelivered.
//  - stop() ends fetching (no callback after it returns) but the thread keeps
//    sending keep-alives for messages still held, until the Source is destroyed;
//    the destructor naks what is still held (immediate redelivery elsewhere).
//  - `mu_` guards `held_`, `paused_` and the flags; settle/pause/resume/lag are
//    callable from any thread. nats.c's message calls happen under `mu_` for
//    keep-alives (so a message is never settled and touched at once) and outside
//    it for settles (the message has left the table by then).
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "broker-adapters/nats/nats_codec.h"
#include "broker-adapters/nats/nats_conn.h"
#include "core/broker.h"

namespace sluice::nats {

struct JsSourceOptions {
  Millis ack_wait{30000};
  int64_t max_ack_pending = 1000;  // the function's concurrency budget
  int fetch_batch = 256;
};

class JetStreamSource final : public Source {
 public:
  static Result<std::unique_ptr<JetStreamSource>> open(NatsConn& conn, std::string stream,
                                                       std::string topic, std::string group,
                                                       JsSourceOptions opt);
  ~JetStreamSource() override;

  std::string_view broker() const override { return conn_.broker(); }
  std::string_view topic() const override { return topic_; }
  std::string_view group() const override { return group_; }
  SourceTraits traits() const override { return {false, true}; }

  Result<void> start(SourceListener& listener) override;
  void stop() override;
  void pause(int32_t partition) override;
  void resume(int32_t partition) override;
  void commit(int32_t, int64_t) override {}  // acks are per message
  void settle(const DeliveryTag& tag, Settle how, std::chrono::milliseconds delay) override;
  Result<std::vector<PartitionLag>> lag() override;

  size_t held() const;
  uint64_t keep_alives_sent() const;
  uint64_t fetch_errors() const;

 private:
  JetStreamSource(NatsConn& c, std::string stream, std::string topic, std::string group,
                  JsSourceOptions opt)
      : conn_(c), stream_(std::move(stream)), topic_(std::move(topic)),
        group_(std::move(group)), opt_(opt),
        key_rule_{c.settings().key_header, c.settings().key_token} {}
  Result<void> ensure_consumer();
  void run();
  void fetch_round(int n);
  void keep_alive();
  int64_t budget_locked() const;     // messages to fetch now (mu_ held); 0 = wait
  int64_t min_fetch_locked() const;  // the smallest fetch worth a request while full
  void report(const Error& e);

  struct Held {
    natsMsg* msg = nullptr;
    std::chrono::steady_clock::time_point since, touched;
  };

  NatsConn& conn_;
  const std::string stream_, topic_, group_;
  const JsSourceOptions opt_;
  const KeyRule key_rule_;
  natsSubscription* sub_ = nullptr;  // fetch thread after start()
  SourceListener* listener_ = nullptr;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<uint64_t, Held> held_;
  uint64_t next_token_ = 1;
  bool paused_ = false;
  bool started_ = false;
  bool fetching_ = false;   // true between start() and stop()
  bool in_round_ = false;   // the thread is fetching or calling the listener
  bool quit_ = false;       // destructor: end the thread
  bool waiting_for_budget_ = false;  // the thread sleeps until a settle frees budget
  uint64_t keep_alives_ = 0, fetch_errors_ = 0;
  int64_t last_log_ms_ = 0;
};

}  // namespace sluice::nats
