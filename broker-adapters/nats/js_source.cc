#include "broker-adapters/nats/js_source.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "broker-adapters/nats/js_lookup.h"
#include "broker-adapters/nats/nats_codec.h"
#include "core/thread_guard.h"

namespace sluice::nats {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kNanosPerMs = 1000000;

// The JetStream ack protocol: the body of a publish to the message's reply subject.
constexpr std::string_view kAck = "+ACK", kNak = "-NAK", kTerm = "+TERM", kInProgress = "+WPI";

std::chrono::milliseconds tick_of(const JsSourceOptions& o) {
  return std::clamp(o.ack_wait / 8, Millis(20), Millis(500));
}

// How long a pull request waits at the server for messages: idle, a consumer
// sends a request per outstanding slot this often.
std::chrono::milliseconds pull_expiry_of(const JsSourceOptions& o) {
  return std::clamp(4 * tick_of(o), Millis(1000), Millis(5000));
}

// Requests outstanding at once: at most this many batches.
constexpr int64_t kMaxPullBatches = 4;

int64_t header_int(natsMsg* m, const char* key, int64_t fallback) {
  const char* v = nullptr;
  if (natsMsgHeader_Get(m, key, &v) != NATS_OK || !v) return fallback;
  int64_t n = 0;
  const char* end = v + std::strlen(v);
  auto [p, ec] = std::from_chars(v, end, n);
  return ec == std::errc{} && p == end && n >= 0 ? n : fallback;
}

}  // namespace

Result<std::unique_ptr<JetStreamSource>> JetStreamSource::open(NatsConn& conn, std::string stream,
                                                               std::string topic,
                                                               std::string group,
                                                               JsSourceOptions opt) {
  const std::string who = "nats broker '" + conn.broker() + "': source " + topic + "/" + group;
  if (topic.empty()) return Error{Errc::invalid_argument, who + ": empty subject"};
  if (group.empty() || group.find_first_of(".*> \t") != std::string::npos)
    return Error{Errc::invalid_argument,
                 who + ": the group names the durable consumer and may not be empty or "
                       "contain '.', '*', '>' or spaces"};
  std::unique_ptr<JetStreamSource> s(
      new JetStreamSource(conn, std::move(stream), std::move(topic), std::move(group), opt));
  SLUICE_TRY(s->ensure_consumer());
  natsInbox* inbox = nullptr;
  natsStatus st = natsInbox_Create(&inbox);
  if (st != NATS_OK) return nats_error(who + ": inbox", st, Errc::internal);
  s->inbox_ = inbox;
  natsInbox_Destroy(inbox);
  s->next_subject_ = "$JS.API.CONSUMER.MSG.NEXT." + s->stream_ + "." + s->group_;
  s->pull_expires_ = pull_expiry_of(s->opt_);
  st = natsConnection_SubscribeSync(&s->sub_, conn.nc(), s->inbox_.c_str());
  if (st != NATS_OK) return nats_error(who + ": subscribe to the pull inbox", st);
  // What may wait here is bounded by the requests (the free window), not by nats.c's
  // default limits (64 MB would drop a window of big messages as a slow consumer).
  natsSubscription_SetPendingLimits(s->sub_, -1, -1);
  return s;
}

Result<void> JetStreamSource::ensure_consumer() {
  const std::string who = "nats broker '" + conn_.broker() + "': consumer '" + group_ +
                          "' on stream '" + stream_ + "'";
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = group_.c_str();
  cc.AckPolicy = js_AckExplicit;
  cc.AckWait = opt_.ack_wait.count() * kNanosPerMs;
  cc.MaxAckPending = opt_.max_ack_pending;
  cc.MaxDeliver = -1;  // the dispatcher owns retries and dead letters
  cc.FilterSubject = topic_.c_str();
  cc.DeliverPolicy = js_DeliverAll;
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_GetConsumerInfo(&ci, conn_.js(), stream_.c_str(), group_.c_str(), nullptr, &jerr);
  if (st == NATS_OK) {
    const std::string filter =
        ci->Config && ci->Config->FilterSubject ? ci->Config->FilterSubject : "";
    const bool same_filter = topic_ == filter;
    const int64_t old_wait_ms = ci->Config ? ci->Config->AckWait / kNanosPerMs : 0;
    const int64_t old_pending = ci->Config ? ci->Config->MaxAckPending : 0;
    const bool pull = ci->Config && (!ci->Config->DeliverSubject || !*ci->Config->DeliverSubject);
    const bool explicit_ack = ci->Config && ci->Config->AckPolicy == js_AckExplicit;
    const bool same = ci->Config && ci->Config->AckWait == cc.AckWait &&
                      ci->Config->MaxAckPending == cc.MaxAckPending;
    jsConsumerInfo_Destroy(ci);
    ci = nullptr;
    if (!same_filter)
      return Error{Errc::invalid_argument, who + " already exists with filter '" + filter +
                                               "', not '" + topic_ +
                                               "' (use another group for this subject)"};
    if (!pull || !explicit_ack)
      return Error{Errc::invalid_argument,
                   who + " already exists but is not a pull consumer with explicit acks "
                         "(delete it, or use another group)"};
    if (same) return ok();
    // Another function concurrency / ack_wait than when it was created: follow the
    // configuration (every process sharing the durable should use the same one).
    st = js_UpdateConsumer(&ci, conn_.js(), stream_.c_str(), &cc, nullptr, &jerr);
    if (st != NATS_OK)
      return js_error(who + ": update (ack_wait " + std::to_string(old_wait_ms) + " -> " +
                          std::to_string(opt_.ack_wait.count()) + " ms, max_ack_pending " +
                          std::to_string(old_pending) + " -> " +
                          std::to_string(opt_.max_ack_pending) + ")",
                      st, jerr);
    jsConsumerInfo_Destroy(ci);
    spdlog::info("{}: updated ack_wait {} -> {} ms, max_ack_pending {} -> {}", who, old_wait_ms,
                 opt_.ack_wait.count(), old_pending, opt_.max_ack_pending);
    return ok();
  }
  if (jerr != JSConsumerNotFoundErr && st != NATS_NOT_FOUND) return js_error(who, st, jerr);
  st = js_AddConsumer(&ci, conn_.js(), stream_.c_str(), &cc, nullptr, &jerr);
  if (st != NATS_OK) return js_error(who + ": create", st, jerr);
  jsConsumerInfo_Destroy(ci);
  spdlog::info("{}: created (filter {}, ack_wait {} ms, max_ack_pending {})", who, topic_,
               opt_.ack_wait.count(), opt_.max_ack_pending);
  return ok();
}

JetStreamSource::~JetStreamSource() {
  stop();
  {
    std::lock_guard lk(mu_);
    quit_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // Still held: let the server redeliver them now rather than after AckWait.
  for (auto& h : slots_) {
    if (!h.msg) continue;
    send_ack(h.msg, kNak);
    free_msg(h.msg);
    h.msg = nullptr;
  }
  held_count_ = 0;
  bury_all();
  if (sub_) {
    // Arrived for requests still outstanding (never started, or the drain is not
    // through): back to the server at once.
    natsMsg* m = nullptr;
    while (natsSubscription_IsValid(sub_) && natsSubscription_NextMsg(&m, sub_, 0) == NATS_OK) {
      send_ack(m, kNak);  // a status message has no reply subject: nothing sent
      free_msg(m);
    }
    natsSubscription_Destroy(sub_);  // unsubscribes the inbox if still valid; the durable stays
  }
}

Result<void> JetStreamSource::start(SourceListener& listener) {
  std::lock_guard lk(mu_);
  if (started_)
    return Error{Errc::invalid_argument, "nats source " + topic_ + "/" + group_ +
                                             ": start() may be called once"};
  started_ = true;
  fetching_ = true;
  listener_ = &listener;
  thread_ = std::thread([this] { run_guarded("jetstream fetch", [this] { run(); }); });
  return ok();
}

void JetStreamSource::stop() {
  std::unique_lock lk(mu_);
  if (fetching_ && sub_) {
    // Withdraw the inbox: the server drops requests whose reply subject lost its
    // interest, so nothing more comes (a nak'ed message would otherwise go straight
    // back to an outstanding request of ours). What is already on its way is still
    // read, and nak'ed, until the drain completes.
    natsSubscription_Drain(sub_);
  }
  fetching_ = false;
  cv_.notify_all();
  if (thread_.joinable() && std::this_thread::get_id() != thread_.get_id())
    cv_.wait(lk, [&] { return !in_round_; });
}

void JetStreamSource::pause(int32_t) {
  std::lock_guard lk(mu_);
  paused_ = true;
}

void JetStreamSource::resume(int32_t) {
  {
    std::lock_guard lk(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

void JetStreamSource::settle(const DeliveryTag& tag, Settle how, std::chrono::milliseconds delay) {
  natsMsg* msg = nullptr;
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    msg = release_locked(tag.token);
    if (!msg) return;  // settled twice, or not ours
    // Budget freed: wake the fetch thread only if it waits for it and may fetch now
    // (a wake-up per settle costs a context switch per event).
    wake = waiting_for_budget_ && want_locked() >= min_fetch_locked();
  }
  if (wake) cv_.notify_all();
  natsStatus s = NATS_OK;
  const char* what = "ack";
  switch (how) {
    case Settle::ack: s = send_ack(msg, kAck); break;
    case Settle::nack:
      what = "nak";
      if (delay.count() > 0) {
        char body[64];
        const int len = std::snprintf(body, sizeof body, "-NAK {\"delay\":%lld}",
                                      static_cast<long long>(delay.count()) * kNanosPerMs);
        s = send_ack(msg, std::string_view(body, static_cast<size_t>(len)));
      } else {
        s = send_ack(msg, kNak);
      }
      break;
    case Settle::term: what = "term"; s = send_ack(msg, kTerm); break;
  }
  if (s != NATS_OK)  // the server redelivers after AckWait: at-least-once holds
    report(nats_error("nats source " + topic_ + "/" + group_ + ": " + what + " of stream sequence " +
                          std::to_string(tag.offset),
                      s));
  bury(msg);
}

natsStatus JetStreamSource::send_ack(natsMsg* m, std::string_view body) {
  const char* reply = natsMsg_GetReply(m);
  if (!reply || !*reply) return NATS_ILLEGAL_STATE;  // not a JetStream message
  return natsConnection_Publish(conn_.nc(), reply, body.data(), static_cast<int>(body.size()));
}

uint64_t JetStreamSource::hold_locked(natsMsg* m, Clock::time_point now) {
  uint32_t slot;
  if (!free_slots_.empty()) {
    slot = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  if (++generation_ == 0) generation_ = 1;  // token 0 is never handed out
  const uint64_t token = (static_cast<uint64_t>(generation_) << 32) | slot;
  slots_[slot] = Held{m, token, now, now};
  ++held_count_;
  return token;
}

natsMsg* JetStreamSource::release_locked(uint64_t token) {
  const uint64_t slot = token & 0xffffffffu;
  if (slot >= slots_.size() || !slots_[slot].msg || slots_[slot].token != token) return nullptr;
  natsMsg* m = slots_[slot].msg;
  slots_[slot].msg = nullptr;
  free_slots_.push_back(static_cast<uint32_t>(slot));
  --held_count_;
  return m;
}

void JetStreamSource::bury(natsMsg* m) {
  std::vector<natsMsg*> now;
  {
    std::lock_guard lk(mu_);
    if (dead_.capacity() < kBuryBatch) dead_.reserve(kBuryBatch);
    dead_.push_back(m);
    dead_bytes_ += static_cast<size_t>(std::max(0, natsMsg_GetDataLength(m)));
    if (dead_.size() < kBuryBatch && dead_bytes_ < kBuryBytes) return;
    dead_bytes_ = 0;
    now.reserve(kBuryBatch);
    now.swap(dead_);
  }
  for (natsMsg* d : now) free_msg(d);
}

void JetStreamSource::bury_all() {
  std::vector<natsMsg*> now;
  {
    std::lock_guard lk(mu_);
    now.swap(dead_);
    dead_bytes_ = 0;
  }
  for (natsMsg* d : now) free_msg(d);
}

size_t JetStreamSource::held() const {
  std::lock_guard lk(mu_);
  return held_count_;
}
uint64_t JetStreamSource::keep_alives_sent() const {
  std::lock_guard lk(mu_);
  return keep_alives_;
}
uint64_t JetStreamSource::pull_requests() const {
  std::lock_guard lk(mu_);
  return ledger_.requests();
}
int64_t JetStreamSource::pulled() const {
  std::lock_guard lk(mu_);
  return ledger_.outstanding();
}

void JetStreamSource::report(const Error& e) {
  conn_.probe().count(NatsError::fetch);
  auto quiet = log_limit_.allow();
  if (!quiet) return;
  spdlog::warn("{} (will retry){}", e.message, suppressed_note(*quiet));
  if (listener_) listener_->on_source_error(*this, e);
}

// The smallest request worth a round trip while the window is full: half a batch
// (at least 1, at most what the window allows).
int64_t JetStreamSource::min_fetch_locked() const {
  return std::max<int64_t>(1, std::min<int64_t>(opt_.fetch_batch, opt_.max_ack_pending) / 2);
}

// The free window (max_ack_pending - held, at most kMaxPullBatches batches) less what
// was asked for already; 0 while paused or stopped.
int64_t JetStreamSource::want_locked() const {
  if (!fetching_ || paused_) return 0;
  const int64_t free = opt_.max_ack_pending - static_cast<int64_t>(held_count_);
  const int64_t cap = std::min<int64_t>(free, kMaxPullBatches * opt_.fetch_batch);
  return std::max<int64_t>(0, cap - ledger_.outstanding());
}

bool JetStreamSource::send_pull(int64_t n) {
  char body[96];
  const int len = std::snprintf(body, sizeof body, "{\"batch\":%lld,\"expires\":%lld}",
                                static_cast<long long>(n),
                                static_cast<long long>(pull_expires_.count()) * kNanosPerMs);
  natsStatus s = natsConnection_PublishRequest(conn_.nc(), next_subject_.c_str(), inbox_.c_str(),
                                               body, len);
  if (s != NATS_OK) {
    report(nats_error("nats source " + topic_ + "/" + group_ + ": pull request", s));
    return false;
  }
  std::lock_guard lk(mu_);
  // Over at the server after `expires` (counted from its arrival there): the grace
  // covers the flusher, the network and a busy server.
  ledger_.asked(n, Clock::now() + pull_expires_ + std::max(pull_expires_, Millis(1000)));
  return true;
}

void JetStreamSource::control(natsMsg* m) {
  const char* status = nullptr;
  natsMsgHeader_Get(m, "Status", &status);
  const std::string_view code = status ? status : "";
  if (code == "100") return;  // an idle heartbeat (not asked for)
  const char* desc = nullptr;
  natsMsgHeader_Get(m, "Description", &desc);
  {
    std::lock_guard lk(mu_);
    // 408 (expired) / 409 (terminated) / 404 (nothing, no_wait) end the oldest
    // request; the server says how much of it was left unfilled.
    ledger_.ended(header_int(m, "Nats-Pending-Messages", -1));
  }
  if (code == "408" || code == "404") return;  // an expired request: routine
  const std::string_view d = desc ? desc : "";
  if (code == "409" && (d.find("Leadership") != std::string_view::npos ||
                        d.find("Exceeded") != std::string_view::npos)) {
    spdlog::debug("nats source {}/{}: pull request ended: {} {}", topic_, group_, code, d);
    return;
  }
  report(Error{Errc::unavailable,
               "nats source " + topic_ + "/" + group_ + ": pull request answered " +
                   std::string(code) + " " + std::string(d),
               true});
}

void JetStreamSource::run() {
  pthread_setname_np(pthread_self(), "sluice-nats-f");
  const auto tick = tick_of(opt_);
  auto next_keep_alive = Clock::now() + tick;
  uint64_t reconnects = conn_.reconnects();
  for (;;) {
    int64_t ask = 0, outstanding = 0;
    {
      std::unique_lock lk(mu_);
      if (quit_) break;
      if (const uint64_t r = conn_.reconnects(); r != reconnects) {
        // A restarted (or another) server knows none of the requests: ask again.
        reconnects = r;
        ledger_.forget();
      }
      ledger_.expire(Clock::now());
      ask = want_locked();
      if (ask < min_fetch_locked()) {
        if (ledger_.outstanding() == 0) {
          // Nothing asked for and not enough room to ask: wait for settles to free
          // half a batch (a request per freed slot would cost a round trip per
          // message), a resume, or a tick, after which whatever is free is asked for.
          waiting_for_budget_ = true;
          cv_.wait_until(lk, std::min(next_keep_alive, Clock::now() + tick),
                         [&] { return quit_ || want_locked() >= min_fetch_locked(); });
          waiting_for_budget_ = false;
          if (quit_) break;
          ask = want_locked();
        } else {
          ask = 0;  // requests outstanding: their messages (or their end) come first
        }
      }
    }
    bool sent = true;
    while (ask > 0 && sent) {
      const int64_t n = std::min<int64_t>(ask, opt_.fetch_batch);
      sent = send_pull(n);
      ask -= n;
    }
    bool drained = false;
    {
      std::unique_lock lk(mu_);
      if (!sent) cv_.wait_for(lk, tick, [&] { return quit_; });  // back off a little
      outstanding = ledger_.outstanding();
      // Stopped and the inbox drained: only keep-alives are left to do.
      drained = !fetching_ && !natsSubscription_IsValid(sub_);
      if (drained) cv_.wait_until(lk, next_keep_alive, [&] { return quit_; });
    }
    // Wait for messages only while some were asked for; else just take what is
    // there (late arrivals of forgotten requests).
    const auto until_tick = std::chrono::duration_cast<Millis>(next_keep_alive - Clock::now());
    if (!drained && !read_round(outstanding > 0 ? std::clamp<int64_t>(until_tick.count(), 1, tick.count()) : 0)) {
      std::unique_lock lk(mu_);  // back off a little; quit wakes us
      cv_.wait_for(lk, tick, [&] { return quit_; });
    }
    if (Clock::now() >= next_keep_alive) {  // at most once per tick (the held table may be large)
      keep_alive();
      bury_all();  // settled messages left from the last burst
      next_keep_alive = Clock::now() + tick;
    }
  }
  std::lock_guard lk(mu_);
  in_round_ = false;
  cv_.notify_all();
}

bool JetStreamSource::read_round(int64_t wait_ms) {
  natsMsg* m = nullptr;
  natsStatus s = natsSubscription_NextMsg(&m, sub_, wait_ms);
  if (s == NATS_TIMEOUT) return true;
  if (s == NATS_INVALID_SUBSCRIPTION) {
    std::lock_guard lk(mu_);
    if (!fetching_) return true;  // the drain after stop() completed
  }
  if (s != NATS_OK) {
    if (s == NATS_NO_RESPONDERS) {  // JetStream not (yet) there: ask again later
      std::lock_guard lk(mu_);
      ledger_.forget();
    }
    report(nats_error("nats source " + topic_ + "/" + group_ + ": pull", s));
    return false;
  }
  std::vector<natsMsg*> msgs;
  msgs.reserve(static_cast<size_t>(opt_.fetch_batch));
  const size_t max = static_cast<size_t>(std::max(1, opt_.fetch_batch));
  for (;;) {
    const char* reply = natsMsg_GetReply(m);
    if (reply && *reply) {
      msgs.push_back(m);
    } else {  // a status message: ends (part of) a request
      control(m);
      free_msg(m);
    }
    if (msgs.size() >= max || natsSubscription_NextMsg(&m, sub_, 0) != NATS_OK) break;
  }
  if (!msgs.empty()) deliver(msgs);
  return true;
}

void JetStreamSource::deliver(std::vector<natsMsg*>& msgs) {
  // Into the held table first, so each Delivery is built once with its token (no
  // settle can reach them before the listener has them).
  const size_t count = msgs.size();
  std::vector<uint64_t> tokens(count);
  {
    std::lock_guard lk(mu_);
    ledger_.arrived(static_cast<int64_t>(count));
    if (!fetching_) {
      // Stopped: requests still outstanding delivered these; hand them straight back.
      for (natsMsg* m : msgs) {
        send_ack(m, kNak);
        dead_.push_back(m);  // destroyed by the next burst
      }
      return;
    }
    in_round_ = true;  // stop() waits until the listener has them
    const auto now = Clock::now();
    for (size_t i = 0; i < count; ++i) tokens[i] = hold_locked(msgs[i], now);
  }
  std::vector<Delivery> batch;
  batch.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    natsMsg* m = msgs[i];  // the held table owns it
    MsgCoords at{conn_.broker(), stream_, 0, 0};
    uint64_t delivered = 1;
    const char* reply = natsMsg_GetReply(m);
    if (AckMeta meta; reply && parse_ack_subject(reply, meta)) {
      at.sequence = meta.stream_seq;
      at.timestamp_ms = meta.timestamp_ns / kNanosPerMs;
      delivered = meta.delivered;
    }
    bool bad = false;
    auto& d = batch.emplace_back(msg_to_event(m, at, key_rule_, &bad), this,
                                 DeliveryTag{0, static_cast<int64_t>(at.sequence), tokens[i]});
    if (bad) conn_.probe().count(NatsError::decode);
    if (delivered > 1) {
      d.event.set_header("sluice-nats-delivered", std::to_string(delivered));
      // Attempts already made: the dispatcher counts on from there (a nak-with-delay
      // retry must still end in the dead letter after max_attempts).
      d.redeliveries = static_cast<uint32_t>(std::min<uint64_t>(delivered - 1, UINT32_MAX));
      // Crash quarantine (dispatcher/age.h): the server cannot tell sluice's own naks
      // from an engine that died holding the message; the dispatcher counts these as
      // crashes only on routes that never nak (docs/CONFIG.md "Crash quarantine").
      d.unsettled = d.redeliveries;
    }
  }
  listener_->on_deliveries(*this, std::move(batch));
  std::lock_guard lk(mu_);
  in_round_ = false;
  cv_.notify_all();
}

Result<std::vector<PartitionLag>> JetStreamSource::lag() {
  SLUICE_TRY(pl, consumer_lag(conn_, stream_, topic_, group_));
  return std::vector<PartitionLag>{std::move(pl)};
}

void JetStreamSource::keep_alive() {
  const auto half = opt_.ack_wait / 2;
  const auto now = Clock::now();
  std::lock_guard lk(mu_);
  for (auto& h : slots_) {
    if (!h.msg) continue;
    if (now - h.since < half || now - h.touched < half) continue;
    if (send_ack(h.msg, kInProgress) == NATS_OK) {
      h.touched = now;
      ++keep_alives_;
    }
  }
}

}  // namespace sluice::nats
