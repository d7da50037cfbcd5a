#include "broker-adapters/nats/core_source.h"

#include "broker-adapters/nats/nats_codec.h"

namespace sluice::nats {

Result<std::unique_ptr<CoreSource>> CoreSource::open(NatsConn& conn, std::string subject,
                                                     std::string group) {
  const std::string who = "nats broker '" + conn.broker() + "': core source '" + subject + "'";
  if (subject.empty() || subject.find_first_of(" \t\r\n") != std::string::npos)
    return Error{Errc::invalid_argument, who + ": not a valid subject"};
  if (group.find_first_of(" \t\r\n") != std::string::npos)
    return Error{Errc::invalid_argument, who + ": not a valid queue group '" + group + "'"};
  return std::unique_ptr<CoreSource>(new CoreSource(conn, std::move(subject), std::move(group)));
}

CoreSource::~CoreSource() {
  stop();
  if (sub_) natsSubscription_Destroy(sub_);
}

Result<void> CoreSource::start(SourceListener& listener) {
  std::lock_guard lk(mu_);
  const std::string who = "nats core source " + subject_ + "/" + group_;
  if (started_ || stopping_) return Error{Errc::invalid_argument, who + ": start() may be called once"};
  listener_ = &listener;
  natsStatus s = group_.empty()
                     ? natsConnection_Subscribe(&sub_, conn_.nc(), subject_.c_str(), &CoreSource::on_msg, this)
                     : natsConnection_QueueSubscribe(&sub_, conn_.nc(), subject_.c_str(),
                                                     group_.c_str(), &CoreSource::on_msg, this);
  if (s != NATS_OK) return nats_error(who + ": subscribe", s);
  // The subscription is known to the server once this returns, so a publish after
  // start() is seen.
  s = natsConnection_FlushTimeout(conn_.nc(), conn_.settings().connect_timeout.count());
  if (s != NATS_OK) return nats_error(who + ": subscribe (flush)", s);
  started_ = true;
  return ok();
}

void CoreSource::stop() {
  natsSubscription* sub = nullptr;
  {
    std::lock_guard lk(mu_);
    if (stopping_) return;
    stopping_ = true;
    sub = sub_;
  }
  cv_.notify_all();
  if (sub) natsSubscription_Unsubscribe(sub);
  std::unique_lock lk(mu_);
  cv_.wait(lk, [&] { return in_callback_ == 0; });
}

void CoreSource::pause(int32_t) {
  std::lock_guard lk(mu_);
  paused_ = true;
}

void CoreSource::resume(int32_t) {
  {
    std::lock_guard lk(mu_);
    paused_ = false;
  }
  cv_.notify_all();
}

Result<std::vector<PartitionLag>> CoreSource::lag() {
  return Error{Errc::invalid_argument, "nats core source " + subject_ +
                                           ": core NATS keeps no backlog, lag is not defined"};
}

void CoreSource::on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  auto* s = static_cast<CoreSource*>(self);
  {
    std::unique_lock lk(s->mu_);
    s->cv_.wait(lk, [&] { return s->stopping_ || !s->paused_; });
    if (s->stopping_) {
      free_msg(msg);
      return;
    }
    ++s->in_callback_;
  }
  MsgCoords at{s->conn_.broker(), {}, 0, now_unix_ms()};
  std::vector<Delivery> batch;
  bool bad = false;
  batch.emplace_back(msg_to_event(msg, at, s->key_rule_, &bad), s, DeliveryTag{0, -1, 0});
  if (bad) s->conn_.probe().count(NatsError::decode);
  free_msg(msg);
  s->listener_->on_deliveries(*s, std::move(batch));
  std::lock_guard lk(s->mu_);
  if (--s->in_callback_ == 0) s->cv_.notify_all();
}

}  // namespace sluice::nats
