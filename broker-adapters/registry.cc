#include "broker-adapters/registry.h"

#include "broker-adapters/local/local_broker.h"
#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_client.h"
#include "broker-adapters/nats/nats_broker.h"
#include "broker-adapters/nats/nats_conn.h"
#include "broker-adapters/nats/nats_subject.h"

namespace sluice::brokers {

Result<std::unique_ptr<Broker>> make_broker(const BrokerConfig& cfg) {
  switch (cfg.kind()) {
    case BrokerKind::local:
      return local::make_local_broker(cfg);
    case BrokerKind::nats:
      return nats::make_nats_broker(cfg);
    case BrokerKind::kafka:
      return kafka::make_kafka_broker(cfg);
  }
  return Error{Errc::invalid_argument, std::string("broker '") + cfg.name + "': unknown kind '" +
                                           to_string(cfg.kind()) + "'"};
}

std::vector<BrokerConfigProblem> check_broker_config(const BrokerConfig& cfg) {
  std::vector<BrokerConfigProblem> out;
  auto add = [&](std::string key, Result<void> r) {
    if (!r) out.push_back({std::move(key), r.error()});
  };
  switch (cfg.kind()) {
    case BrokerKind::local: break;
    case BrokerKind::kafka: add("options", kafka::check_options(cfg)); break;
    case BrokerKind::nats:
      if (auto s = nats::parse_settings(cfg); !s) add("options", s.error());
      add("jetstream.stream", nats::check_jetstream(cfg));
      break;
  }
  return out;
}

Result<void> check_broker_topic(const BrokerConfig& cfg, const std::string& topic,
                                bool subscription) {
  if (cfg.kind() != BrokerKind::nats || !cfg.nats().jetstream || topic.empty()) return ok();
  const JetStreamConfig& js = *cfg.nats().jetstream;
  for (const auto& p : js.subjects)
    if (subscription ? nats::subject_covers(p, topic) : nats::subject_matches(p, topic))
      return ok();
  std::string subs;
  for (const auto& p : js.subjects) subs += (subs.empty() ? "" : ", ") + p;
  return Error{Errc::invalid_argument,
               "subject \"" + topic + "\" is not stored by stream \"" + js.stream +
                   "\" of broker \"" + cfg.name + "\" (subjects: " + subs +
                   "); add it to jetstream.subjects or choose a subject it stores"};
}

std::string consumer_group(const BrokerConfig& broker, const std::string& function) {
  if (broker.kind() == BrokerKind::local) return broker.local().group;
  if (broker.kind() == BrokerKind::kafka) return broker.kafka().group;
  std::string f = function;
  for (char& c : f)
    if (c == '.' || c == '*' || c == '>') c = '_';
  return broker.nats().group + "_" + f;
}

BrokerCapabilities broker_capabilities(const BrokerConfig& cfg) {
  BrokerCapabilities c;
  switch (cfg.kind()) {
    case BrokerKind::local:
      c.own_database = true;
      c.retry_topics = true;
      c.refuses_unknown_topics = true;
      c.lists_topics_cheaply = true;
      break;
    case BrokerKind::kafka:
      c.remote = true;
      c.retry_topics = true;
      break;
    case BrokerKind::nats:
      c.remote = true;
      c.wildcard_topics = true;
      c.redelivers_later = cfg.nats().jetstream.has_value();
      c.no_retry_because = "needs JetStream (core NATS cannot redeliver)";
      break;
  }
  return c;
}

}  // namespace sluice::brokers
