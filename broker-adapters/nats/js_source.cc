#include "broker-adapters/nats/js_source.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>

#include "broker-adapters/nats/js_lookup.h"
#include "broker-adapters/nats/nats_codec.h"

namespace sluice::nats {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int64_t kNanosPerMs = 1000000;

// The JetStream ack protocol: the body of a publish to the message's reply subject.
constexpr std::string_view kAck = "+ACK", kNak = "-NAK", kTerm = "+TERM", kInProgress = "+WPI";

std::chrono::milliseconds tick_of(const JsSourceOptions& o) {
  return std::clamp(o.ack_wait / 8, Millis(20), Millis(500));
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
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = s->stream_.c_str();
  so.Consumer = s->group_.c_str();  // bind: the library neither creates nor deletes it
  so.ManualAck = true;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus st = js_PullSubscribe(&s->sub_, conn.js(), s->topic_.c_str(), s->group_.c_str(),
                                   nullptr, &so, &jerr);
  if (st != NATS_OK) return js_error(who + ": pull subscribe", st, jerr);
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
    natsMsg_Destroy(h.msg);
    h.msg = nullptr;
  }
  held_count_ = 0;
  bury_all();
  if (sub_) natsSubscription_Destroy(sub_);  // no Unsubscribe: the durable stays
}

Result<void> JetStreamSource::start(SourceListener& listener) {
  std::lock_guard lk(mu_);
  if (started_)
    return Error{Errc::invalid_argument, "nats source " + topic_ + "/" + group_ +
                                             ": start() may be called once"};
  started_ = true;
  fetching_ = true;
  listener_ = &listener;
  thread_ = std::thread([this] { run(); });
  return ok();
}

void JetStreamSource::stop() {
  std::unique_lock lk(mu_);
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
    wake = waiting_for_budget_ && budget_locked() >= min_fetch_locked();
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
  for (natsMsg* d : now) natsMsg_Destroy(d);
}

void JetStreamSource::bury_all() {
  std::vector<natsMsg*> now;
  {
    std::lock_guard lk(mu_);
    now.swap(dead_);
    dead_bytes_ = 0;
  }
  for (natsMsg* d : now) natsMsg_Destroy(d);
}

size_t JetStreamSource::held() const {
  std::lock_guard lk(mu_);
  return held_count_;
}
uint64_t JetStreamSource::keep_alives_sent() const {
  std::lock_guard lk(mu_);
  return keep_alives_;
}
uint64_t JetStreamSource::fetch_errors() const {
  std::lock_guard lk(mu_);
  return fetch_errors_;
}

void JetStreamSource::report(const Error& e) {
  const int64_t now = now_unix_ms();
  {
    std::lock_guard lk(mu_);
    ++fetch_errors_;
    if (now - last_log_ms_ < 5000) return;
    last_log_ms_ = now;
  }
  spdlog::warn("{} (will retry)", e.message);
  if (listener_) listener_->on_source_error(*this, e);
}

// The smallest fetch worth a round trip while the window is full: half a batch
// (at least 1, at most what the window allows).
int64_t JetStreamSource::min_fetch_locked() const {
  return std::max<int64_t>(1, std::min<int64_t>(opt_.fetch_batch, opt_.max_ack_pending) / 2);
}

int64_t JetStreamSource::budget_locked() const {
  if (!fetching_ || paused_) return 0;
  const int64_t free = opt_.max_ack_pending - static_cast<int64_t>(held_count_);
  return std::min<int64_t>(opt_.fetch_batch, free);
}

void JetStreamSource::run() {
  pthread_setname_np(pthread_self(), "sluice-nats-f");
  const auto tick = tick_of(opt_);
  auto next_keep_alive = Clock::now();
  for (;;) {
    int n = 0;
    {
      std::unique_lock lk(mu_);
      if (quit_) break;
      auto budget = [&] { return budget_locked(); };
      n = static_cast<int>(std::max<int64_t>(0, budget()));
      if (n < min_fetch_locked()) {
        // Wait for a worthwhile fetch: one request per freed slot would cost a
        // round trip per message once the window is full. After a tick without
        // that much room, whatever is free is fetched.
        in_round_ = false;
        cv_.notify_all();
        waiting_for_budget_ = true;
        cv_.wait_for(lk, tick, [&] { return quit_ || budget() >= min_fetch_locked(); });
        waiting_for_budget_ = false;
        if (quit_) break;
        n = static_cast<int>(std::max<int64_t>(0, budget()));
        in_round_ = n > 0;
      } else {
        in_round_ = true;
      }
    }
    if (n > 0) fetch_round(n);
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

void JetStreamSource::fetch_round(int n) {
  natsMsgList list{nullptr, 0};
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = natsSubscription_Fetch(&list, sub_, n, tick_of(opt_).count(), &jerr);
  if (list.Count == 0) {
    natsMsgList_Destroy(&list);
    if (s != NATS_OK && s != NATS_TIMEOUT) {
      report(js_error("nats source " + topic_ + "/" + group_ + ": fetch", s, jerr));
      std::unique_lock lk(mu_);  // back off a little; stop/quit wake us
      cv_.wait_for(lk, tick_of(opt_), [&] { return quit_ || !fetching_; });
    }
    return;
  }
  // Into the held table first, so each Delivery is built once with its token (no
  // settle can reach them before the listener has them).
  const size_t count = static_cast<size_t>(list.Count);
  std::vector<uint64_t> tokens(count);
  {
    std::lock_guard lk(mu_);
    if (!fetching_) {
      // stop() raced the fetch: hand these straight back to the server.
      for (size_t i = 0; i < count; ++i) send_ack(list.Msgs[i], kNak);
      natsMsgList_Destroy(&list);
      return;
    }
    const auto now = Clock::now();
    for (size_t i = 0; i < count; ++i) tokens[i] = hold_locked(list.Msgs[i], now);
  }
  std::vector<Delivery> batch;
  batch.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    natsMsg* m = list.Msgs[i];
    list.Msgs[i] = nullptr;  // the held table owns it
    MsgCoords at{conn_.broker(), stream_, 0, 0};
    uint64_t delivered = 1;
    const char* reply = natsMsg_GetReply(m);
    if (AckMeta meta; reply && parse_ack_subject(reply, meta)) {
      at.sequence = meta.stream_seq;
      at.timestamp_ms = meta.timestamp_ns / kNanosPerMs;
      delivered = meta.delivered;
    }
    auto& d = batch.emplace_back(msg_to_event(m, at, key_rule_), this,
                                 DeliveryTag{0, static_cast<int64_t>(at.sequence), tokens[i]});
    if (delivered > 1) {
      d.event.set_header("sluice-nats-delivered", std::to_string(delivered));
      // Attempts already made: the dispatcher counts on from there (a nak-with-delay
      // retry must still end in the dead letter after max_attempts).
      d.redeliveries = static_cast<uint32_t>(std::min<uint64_t>(delivered - 1, UINT32_MAX));
    }
  }
  natsMsgList_Destroy(&list);
  {
    std::lock_guard lk(mu_);
    if (!fetching_) {
      // stop() came during the conversion: give them back rather than hand them out.
      for (auto& d : batch) {
        if (natsMsg* m = release_locked(d.tag().token)) {
          send_ack(m, kNak);
          dead_.push_back(m);
        }
      }
      return;  // destroyed by the next burst (bury_all every tick, or the destructor)
    }
  }
  listener_->on_deliveries(*this, std::move(batch));
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
