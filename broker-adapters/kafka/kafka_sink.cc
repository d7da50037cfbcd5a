#include "broker-adapters/kafka/kafka_sink.h"

#include <spdlog/spdlog.h>

#include <mutex>

#include "broker-adapters/kafka/kafka_codec.h"
#include "core/thread_guard.h"

namespace sluice::kafka {

Result<std::unique_ptr<KafkaSink>> KafkaSink::open(const BrokerConfig& cfg,
                                                   std::shared_ptr<KafkaProbe> probe) {
  std::unique_ptr<KafkaSink> s(new KafkaSink(cfg.name, std::move(probe)));
  SLUICE_TRY(rk, make_client(cfg, Role::producer, {}, [&](rd_kafka_conf_t* conf) {
               rd_kafka_conf_set_opaque(conf, s.get());
               rd_kafka_conf_set_dr_msg_cb(conf, &KafkaSink::on_delivery);
               rd_kafka_conf_set_error_cb(conf, &KafkaSink::on_error);
             }));
  s->rk_ = std::move(rk);
  s->thread_ = std::thread([p = s.get()] { run_guarded("kafka producer", [p] { p->run(); }); });
  return s;
}

KafkaSink::~KafkaSink() { stop(); }

void KafkaSink::run() {
  pthread_setname_np(pthread_self(), "sluice-kafka-p");
  while (!stopping_.load(std::memory_order_relaxed)) rd_kafka_poll(rk_.get(), 100);
}

void KafkaSink::on_delivery(rd_kafka_t*, const rd_kafka_message_t* msg, void*) {
  std::unique_ptr<PublishCallback> done(static_cast<PublishCallback*>(msg->_private));
  if (!done || !*done) return;
  const std::string topic = rd_kafka_topic_name(msg->rkt);
  if (msg->err) {
    (*done)(kafka_error("kafka: publish to '" + topic + "'", msg->err));
    return;
  }
  (*done)(PublishAck{topic, msg->partition, msg->offset});
}

void KafkaSink::on_error(rd_kafka_t* rk, int err, const char* reason, void* opaque) {
  auto* self = static_cast<KafkaSink*>(opaque);
  self->probe_->count(KafkaError::client);
  const auto e = static_cast<rd_kafka_resp_err_t>(err);
  if (e == RD_KAFKA_RESP_ERR__FATAL) {
    char buf[512];
    rd_kafka_fatal_error(rk, buf, sizeof buf);
    spdlog::error("kafka broker {}: producer fatal error: {}", self->name_, buf);
    return;
  }
  if (auto quiet = self->log_limit_.allow())
    spdlog::warn("kafka broker {}: producer: {} ({}){}", self->name_, reason,
                 rd_kafka_err2name(e), suppressed_note(*quiet));
}

void KafkaSink::publish(std::string_view topic, Event ev, PublishCallback done) {
  std::shared_lock lock(mu_);
  if (stopped_) {
    lock.unlock();
    if (done) done(Error{Errc::closed, "kafka broker " + name_ + ": the sink is stopped"});
    return;
  }
  const std::string t(topic);
  rd_kafka_headers_t* hdrs = event_headers(ev);
  auto* cb = new PublishCallback(std::move(done));
  rd_kafka_resp_err_t err = rd_kafka_producev(
      rk_.get(), RD_KAFKA_V_TOPIC(t.c_str()),
      RD_KAFKA_V_KEY(ev.key.empty() ? nullptr : ev.key.data(), ev.key.size()),
      RD_KAFKA_V_VALUE(ev.data.data(), ev.data.size()), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
      RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(cb), RD_KAFKA_V_END);
  if (err) {
    rd_kafka_headers_destroy(hdrs);  // not taken over on failure
    lock.unlock();
    std::unique_ptr<PublishCallback> owned(cb);
    if (*owned) (*owned)(kafka_error("kafka: publish to '" + t + "'", err));
  }
}

Result<void> KafkaSink::flush(std::chrono::milliseconds timeout) {
  std::shared_lock lock(mu_);
  if (stopped_) return ok();
  rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count()));
  if (err)
    return kafka_error("kafka broker " + name_ + ": flush (" +
                           std::to_string(rd_kafka_outq_len(rk_.get())) + " still queued)",
                       err);
  return ok();
}

void KafkaSink::stop(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (stopped_) return;
  stopped_ = true;
  if (rk_) {
    if (rd_kafka_resp_err_t err = rd_kafka_flush(rk_.get(), static_cast<int>(timeout.count())))
      spdlog::warn("kafka broker {}: {} events not delivered at stop ({}); failing them", name_,
                   rd_kafka_outq_len(rk_.get()), rd_kafka_err2str(err));
    // Whatever is left gets a delivery report with a purge error: every callback fires.
    rd_kafka_purge(rk_.get(), RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    rd_kafka_flush(rk_.get(), 1000);
  }
  stopping_ = true;
  if (thread_.joinable()) thread_.join();
  rk_.reset();
}

}  // namespace sluice::kafka
