// JetStreamSource: consumes a subject filter of a JetStream stream through one
// durable pull consumer (name = the group), with explicit acks. At-least-once:
// a message is acked only when the dispatcher settles it.
//
//  - The consumer is created when missing (AckWait, MaxAckPending, the filter,
//    unlimited MaxDeliver: the dispatcher owns retries) and updated when AckWait or
//    MaxAckPending changed; a durable of the same name with another filter is an
//    error. The subscription binds to it, so unsubscribing never deletes it.
//  - One partition (0); offset = stream sequence; DeliveryTag.token = a slot in
//    the table of held natsMsg* (low 32 bits) and that use's generation (high 32
//    bits: a stale or repeated settle finds another generation and is ignored),
//    which settle() acks / naks / terms. The stream sequence, delivery count and
//    timestamp come from the reply subject (parse_ack_subject: no allocation).
//  - Settled messages are freed in bursts (`dead_`: kBuryBatch messages or
//    kBuryBytes, and every tick) with free_msg (nats_codec.h), on the settling
//    thread: natsMsg_Destroy hands each to nats.c's collector thread and wakes it
//    whenever it sleeps, a context switch per message even in bursts.
//
// Pulling: the Source runs its own pull loop instead of nats.c's Fetch, so that
// the server always has requests waiting while the window has room:
//  - one plain subscription on a fresh inbox; pull requests ({"batch","expires"})
//    are published to $JS.API.CONSUMER.MSG.NEXT.<stream>.<durable> with that inbox
//    as reply, and several stay outstanding at once (`ledger_`, together at most the
//    free window: max_ack_pending - held, and 4 batches). A request costs nats.c's
//    flusher pause (~1 ms) before it leaves; with one Fetch at a time that pause
//    idled the server once per batch.
//  - The server answers a request with messages, then ends it with a status
//    (408 expired, 409 terminated, with Nats-Pending-Messages = what it left
//    unfilled). PullLedger keeps the count: each request also has a local deadline
//    (its expiry + grace, handed on to the next when it is filled), and after a
//    reconnect all are forgotten (a restarted server knows none of them): a lost
//    request never leaves the loop waiting for messages that do not come, nor
//    shrinks the window it asks for.
//  - Messages that arrive after stop() (requests still outstanding) are nak'ed.
//
// Ownership and threads:
//  - The fetch thread (`sluice-nats-f`, started by start()) owns the subscription:
//    it sends the pull requests (none while paused), reads what arrives, converts it
//    and calls the listener with no lock held. It also runs the in-progress
//    keep-alives: every held message older than AckWait/2 gets an in-progress ack
//    (+WPI) every AckWait/2, so long functions are not redelivered.
//  - stop() ends fetching (no callback after it returns) but the thread keeps
//    sending keep-alives for messages still held, until the Source is destroyed;
//    the destructor naks what is still held (immediate redelivery elsewhere).
//  - Pull requests, deliveries, acks, naks, terms and keep-alives share the broker's
//    one connection; acks are plain publishes (batched by nats.c's flusher).
//  - `mu_` guards the held table, the pull accounting, `dead_`, `paused_` and the
//    flags; settle/pause/resume/lag are callable from any thread. Keep-alives are
//    sent under `mu_` (so a message is never settled and touched at once), settles
//    outside it (the message has left the table by then).
#pragma once

#include <nats/nats.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker-adapters/nats/nats_codec.h"
#include "broker-adapters/nats/nats_conn.h"
#include "broker-adapters/nats/pull_ledger.h"
#include "core/broker.h"
#include "core/log_limit.h"

namespace sluice::nats {

struct JsSourceOptions {
  Millis ack_wait{30000};
  int64_t max_ack_pending = 1000;  // the functions' held budget (held_budget)
  int fetch_batch = 1024;
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
  uint64_t pull_requests() const;  // sent so far
  int64_t pulled() const;          // messages asked for and not yet arrived

 private:
  JetStreamSource(NatsConn& c, std::string stream, std::string topic, std::string group,
                  JsSourceOptions opt)
      : conn_(c), stream_(std::move(stream)), topic_(std::move(topic)),
        group_(std::move(group)), opt_(opt),
        key_rule_{c.settings().key_header, c.settings().key_token} {}
  Result<void> ensure_consumer();
  void run();
  // Reads what arrived (waiting up to wait_ms for the first message), at most one
  // batch, and hands it on; false when the subscription failed (backed off).
  bool read_round(int64_t wait_ms);
  void deliver(std::vector<natsMsg*>& msgs);  // data messages only
  bool send_pull(int64_t n);                   // one request for n messages
  void control(natsMsg* m);                    // a status message on the inbox
  void keep_alive();
  int64_t want_locked() const;       // messages to ask for now (mu_ held)
  int64_t min_fetch_locked() const;  // the smallest request worth sending while full
  void report(const Error& e);
  uint64_t hold_locked(natsMsg* m, std::chrono::steady_clock::time_point now);  // -> token
  natsMsg* release_locked(uint64_t token);  // nullptr when not held
  void bury(natsMsg* m);                    // destroy later, with others
  void bury_all();                          // destroy what waits now
  // Publishes an ack-protocol body (+ACK, -NAK, +TERM, +WPI) to m's reply subject
  // (what natsMsg_Ack & co. send; batched by the connection's flusher).
  natsStatus send_ack(natsMsg* m, std::string_view body);

  struct Held {
    natsMsg* msg = nullptr;  // nullptr: a free slot
    uint64_t token = 0;
    std::chrono::steady_clock::time_point since, touched;
  };
  // A burst: this many messages or payload bytes (fewer when the tick comes first).
  // 64 still woke nats.c's collector every ~10 messages; 256 every ~40.
  static constexpr size_t kBuryBatch = 256, kBuryBytes = 4u << 20;

  NatsConn& conn_;
  const std::string stream_, topic_, group_;
  const JsSourceOptions opt_;
  const KeyRule key_rule_;
  natsSubscription* sub_ = nullptr;  // the inbox; read by the fetch thread after start()
  std::string inbox_, next_subject_;
  std::chrono::milliseconds pull_expires_{};
  SourceListener* listener_ = nullptr;
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Held> slots_;         // the held table, indexed by token & 0xffffffff
  std::vector<uint32_t> free_slots_;
  size_t held_count_ = 0;
  uint32_t generation_ = 0;
  std::vector<natsMsg*> dead_;      // settled, destroyed by the next bury burst
  size_t dead_bytes_ = 0;           // their payload bytes
  bool paused_ = false;
  bool started_ = false;
  bool fetching_ = false;   // true between start() and stop()
  bool in_round_ = false;   // the thread is fetching or calling the listener
  bool quit_ = false;       // destructor: end the thread
  bool waiting_for_budget_ = false;  // the thread sleeps until a settle frees budget
  PullLedger ledger_;  // the pull requests outstanding
  uint64_t keep_alives_ = 0;
  LogLimit log_limit_;
};

}  // namespace sluice::nats
