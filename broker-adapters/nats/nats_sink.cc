#include "broker-adapters/nats/nats_sink.h"

#include "core/clock.h"

#include <spdlog/spdlog.h>

#include "broker-adapters/nats/nats_codec.h"

namespace sluice::nats {

Result<std::unique_ptr<NatsSink>> NatsSink::open(NatsConn& conn, std::string stream,
                                                 std::vector<std::string> stream_subjects) {
  std::unique_ptr<NatsSink> s(new NatsSink(conn, std::move(stream), std::move(stream_subjects)));
  jsOptions o;
  jsOptions_Init(&o);
  o.PublishAsync.AckHandler = &NatsSink::on_ack;
  o.PublishAsync.AckHandlerClosure = s.get();
  o.PublishAsync.MaxPending = 4096;  // js_PublishMsgAsync stalls beyond this (back pressure)
  natsStatus st = natsConnection_JetStream(&s->js_, conn.nc(), &o);
  if (st != NATS_OK)
    return nats_error("nats broker '" + conn.broker() + "': publish context", st, Errc::internal);
  return s;
}

NatsSink::~NatsSink() {
  stop();
  if (js_) jsCtx_Destroy(js_);
}

bool NatsSink::uses_jetstream(std::string_view subject) const {
  for (const auto& p : subjects_)
    if (subject_matches(p, subject)) return true;
  return false;
}

void NatsSink::publish(std::string_view topic, Event ev, PublishCallback done) {
  const std::string who = "nats broker '" + conn_.broker() + "': publish to '" +
                          std::string(topic) + "'";
  if (topic.empty() || topic.find_first_of(" \t\r\n") != std::string_view::npos ||
      topic.find('*') != std::string_view::npos || topic.find('>') != std::string_view::npos) {
    done(Error{Errc::invalid_argument, who + ": not a valid subject to publish to"});
    return;
  }
  auto msg = event_to_msg(topic, ev);
  if (!msg) {
    done(Error{msg.error().code, who + ": " + msg.error().message});
    return;
  }
  MsgPtr m = std::move(msg).value();

  if (!subjects_.empty() && !uses_jetstream(topic)) {
    // A stream is configured but does not store this subject: a core publish would
    // lose it silently (a dead letter, an output). Refuse instead.
    std::string subs;
    for (const auto& p : subjects_) subs += (subs.empty() ? "" : ", ") + p;
    done(Error{Errc::invalid_argument,
               who + ": the subject is not in the stream's subjects (" + subs +
                   "), so it would not be stored; add it to jetstream.subjects"});
    return;
  }
  if (!uses_jetstream(topic)) {  // no stream at all: core NATS, at-most-once
    natsStatus s = natsConnection_PublishMsg(conn_.nc(), m.get());
    if (s == NATS_OK) s = natsConnection_FlushTimeout(conn_.nc(), conn_.settings().publish_timeout.count());
    if (s != NATS_OK) return done(nats_error(who, s));
    return done(PublishAck{std::string(topic), 0, -1});
  }

  natsMsg* key = m.get();
  {
    std::lock_guard lk(mu_);
    if (stopped_) {
      done(Error{Errc::closed, who + ": the broker is stopped"});
      return;
    }
    pending_.emplace(key, Pending{std::string(topic), std::move(done)});
  }
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = conn_.settings().publish_timeout.count();
  natsMsg* raw = m.release();
  natsStatus s = js_PublishMsgAsync(js_, &raw, &po);
  if (s != NATS_OK) {
    // The library did not take the message: no ack will come for it.
    complete(key, nats_error(who, s));  // before the destroy: `key` is not reused meanwhile
    natsMsg_Destroy(raw);
  }
}

void NatsSink::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* self) {
  auto* sink = static_cast<NatsSink*>(self);
  if (pa != nullptr) {
    sink->complete(msg, PublishAck{std::string(natsMsg_GetSubject(msg)), 0,
                                   static_cast<int64_t>(pa->Sequence)});
  } else {
    std::string what = "nats broker '" + sink->conn_.broker() + "': publish to '" +
                       natsMsg_GetSubject(msg) + "'";
    Error e = pae ? nats_error(what, pae->Err) : Error{Errc::io, what + ": no ack"};
    if (pae && pae->ErrText) e.message += std::string(" (") + pae->ErrText + ")";
    if (pae && pae->Err == NATS_TIMEOUT) e = Error{Errc::timeout, e.message, true};
    sink->complete(msg, std::move(e));
  }
  natsMsg_Destroy(msg);
}

void NatsSink::complete(natsMsg* msg, Result<PublishAck> r) {
  PublishCallback done;
  {
    std::lock_guard lk(mu_);
    auto it = pending_.find(msg);
    if (it == pending_.end()) return;  // already failed by stop()
    done = std::move(it->second.done);
    pending_.erase(it);
    ++calling_;
  }
  done(std::move(r));
  std::lock_guard lk(mu_);  // flush() waits until the callback has run, not just left
  if (--calling_ == 0 && pending_.empty()) idle_.notify_all();
}

Result<void> NatsSink::flush(std::chrono::milliseconds timeout) {
  const auto deadline = deadline_in(timeout);
  {
    std::unique_lock lk(mu_);
    if (!idle_.wait_until(lk, deadline, [&] { return pending_.empty() && calling_ == 0; }))
      return Error{Errc::timeout,
                   "nats broker '" + conn_.broker() + "': " + std::to_string(pending_.size()) +
                       " publishes not acknowledged within " +
                       std::to_string(timeout.count()) + " ms",
                   true};
  }
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  natsStatus s = natsConnection_FlushTimeout(conn_.nc(), std::max<int64_t>(1, left.count()));
  if (s != NATS_OK) return nats_error("nats broker '" + conn_.broker() + "': flush", s);
  return ok();
}

void NatsSink::stop() {
  std::unordered_map<natsMsg*, Pending> left;
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    left.swap(pending_);
    idle_.notify_all();
  }
  if (!left.empty())
    spdlog::warn("nats broker '{}': {} publishes unanswered at stop", conn_.broker(), left.size());
  for (auto& [m, p] : left)
    p.done(Error{Errc::closed,
                 "nats broker '" + conn_.broker() + "': stopped before '" + p.topic +
                     "' was acknowledged",
                 true});
}

}  // namespace sluice::nats
