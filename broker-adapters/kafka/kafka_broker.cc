#include "broker-adapters/kafka/kafka_broker.h"

#include <mutex>

#include "broker-adapters/kafka/kafka_source.h"

namespace sluice::kafka {

namespace {

// The probe's librdkafka log lines are not printed (a down cluster repeats them for
// the whole wait); the last one says why it failed and goes into the error.
struct ProbeLog {
  std::mutex mu;
  std::string last;  // under mu
};

void probe_log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  auto* log = static_cast<ProbeLog*>(rd_kafka_opaque(rk));
  if (level > 4 || !log) return;
  std::lock_guard g(log->mu);
  log->last = buf;
}

// Waits up to kConnectTimeout for the cluster to answer a metadata request. A
// cluster that does not answer at start-up is a configuration problem (a wrong
// `bootstrap`, a closed port, TLS/SASL settings that do not match): say so now
// rather than retry in the background for ever. The probe is a consumer, so the
// consumer's options are checked here too, not at the first make_source.
Result<void> probe_cluster(const BrokerConfig& cfg) {
  ProbeLog log;
  SLUICE_TRY(probe, make_client(cfg, Role::consumer, cfg.kafka().group, [&](rd_kafka_conf_t* conf) {
               rd_kafka_conf_set_opaque(conf, &log);
               rd_kafka_conf_set_log_cb(conf, probe_log_cb);
             }));
  const rd_kafka_metadata_t* md = nullptr;
  const rd_kafka_resp_err_t err =
      rd_kafka_metadata(probe.get(), 0, nullptr, &md, static_cast<int>(kConnectTimeout.count()));
  if (md) rd_kafka_metadata_destroy(md);
  rd_kafka_consumer_close(probe.get());
  probe.reset();  // no log line arrives after this
  if (!err) return ok();
  std::string why = rd_kafka_err2str(err);
  if (!log.last.empty()) why += "; last: " + log.last;
  return Error{Errc::invalid_argument,
               "broker '" + cfg.name + "': no Kafka broker answered at " + cfg.kafka().bootstrap +
                   " within " + std::to_string(kConnectTimeout.count() / 1000) + " s (" + why +
                   "); check bootstrap and options"};
}

}  // namespace

Result<std::unique_ptr<KafkaBroker>> KafkaBroker::open(const BrokerConfig& cfg) {
  SLUICE_TRY(probe_cluster(cfg));
  auto probe = std::make_shared<KafkaProbe>(kKafkaErrors);
  SLUICE_TRY(sink, KafkaSink::open(cfg, probe));
  return std::unique_ptr<KafkaBroker>(new KafkaBroker(cfg, std::move(probe), std::move(sink)));
}

KafkaBroker::~KafkaBroker() { stop(); }

Result<std::unique_ptr<Source>> KafkaBroker::make_source(const std::string& topic,
                                                         const std::string& group, const SourceOptions& opts) {
  SLUICE_TRY(src, KafkaSource::open(cfg_, topic, group.empty() ? cfg_.kafka().group : group, probe_));
  return std::unique_ptr<Source>(std::move(src));
}

void KafkaBroker::stop() { sink_->stop(); }

Result<std::unique_ptr<Broker>> make_kafka_broker(const BrokerConfig& cfg) {
  if (cfg.kind() != BrokerKind::kafka)
    return Error{Errc::invalid_argument, "broker '" + cfg.name + "' is not of kind kafka"};
  SLUICE_TRY(b, kafka::KafkaBroker::open(cfg));
  return std::unique_ptr<Broker>(std::move(b));
}

}  // namespace sluice::kafka
