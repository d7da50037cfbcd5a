#include "broker-adapters/kafka/kafka_client.h"

#include <spdlog/spdlog.h>

#include <map>

namespace sluice::kafka {
namespace {

struct Mapped {
  Errc code;
  bool retriable;
};

Mapped classify(rd_kafka_resp_err_t err) {
  switch (err) {
    case RD_KAFKA_RESP_ERR__QUEUE_FULL:
      return {Errc::overloaded, true};
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__MSG_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE:
      return {Errc::timeout, true};
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
      return {Errc::not_found, false};
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR__INVALID_TYPE:
      return {Errc::invalid_argument, false};
    case RD_KAFKA_RESP_ERR__PURGE_QUEUE:
    case RD_KAFKA_RESP_ERR__PURGE_INFLIGHT:
    case RD_KAFKA_RESP_ERR__DESTROY:
      return {Errc::closed, false};
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR__AUTHENTICATION:
    case RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED:
      return {Errc::unavailable, false};
    default:
      // Transport, coordinator and leader changes: the broker may come back.
      return {Errc::unavailable, true};
  }
}

// librdkafka's log lines (from its own threads) into spdlog. Connection failures
// come at level 3 and repeat while a broker is down, so nothing is an error here:
// the adapter reports failures that matter through Result values and listeners.
// CONFWARN: `options` go to producer and consumer alike, so a producer-only
// property is reported as ignored by the consumer; that is expected.
void log_cb(const rd_kafka_t* rk, int level, const char* fac, const char* buf) {
  const bool quiet = std::string_view(fac) == "CONFWARN";
  const auto lvl = level <= 4 && !quiet ? spdlog::level::warn : spdlog::level::debug;
  spdlog::log(lvl, "librdkafka {} {}: {}", rd_kafka_name(rk), fac, buf);
}

Result<void> set(rd_kafka_conf_t* conf, const BrokerConfig& cfg, const std::string& key,
                 const std::string& value) {
  char errstr[512];
  if (rd_kafka_conf_set(conf, key.c_str(), value.c_str(), errstr, sizeof errstr) !=
      RD_KAFKA_CONF_OK)
    return Error{Errc::invalid_argument,
                 "broker '" + cfg.name + "': option '" + key + "': " + errstr};
  return ok();
}

std::map<std::string, std::string> defaults(const BrokerConfig& cfg, Role role,
                                            const std::string& group) {
  std::map<std::string, std::string> d{{"bootstrap.servers", cfg.kafka().bootstrap},
                                       {"client.id", "sluice"}};
  switch (role) {
    case Role::producer:
      d["enable.idempotence"] = "true";  // acks=all, ordered, no duplicates on retry
      d["linger.ms"] = "2";
      // Java's partitioner (murmur2 of the key; random for a record without one),
      // which the local queue uses too: a key lands on the same partition whoever
      // produced it. librdkafka's own default hashes with CRC32.
      d["partitioner"] = "murmur2_random";
      break;
    case Role::consumer:
      d["partition.assignment.strategy"] = "cooperative-sticky";
      // Offsets are stored by commit() only (the dispatcher's finished prefix) and
      // committed by librdkafka's auto-commit every 100 ms; see README.md.
      d["enable.auto.commit"] = "true";
      d["auto.commit.interval.ms"] = "100";
      d["auto.offset.reset"] = "earliest";
      d["allow.auto.create.topics"] = "true";
      // Prefetch bounded by bytes only (librdkafka 2.0 checks queued.min.messages
      // against the whole consumer queue), and 16 MB instead of 64: KafkaSource
      // wakes the fetcher when the queue runs dry (nudge_fetcher), so a small queue
      // costs no rate and keeps RSS low (README.md, bench/kafka).
      d["queued.max.messages.kbytes"] = "16384";
      d["queued.min.messages"] = "1000000";
      break;
    case Role::browser:
      d["enable.auto.commit"] = "false";
      d["auto.offset.reset"] = "earliest";
      d["enable.partition.eof"] = "true";  // read() stops at the end, not at a timeout
      break;
  }
  return d;
}

}  // namespace

Error kafka_error(std::string_view context, rd_kafka_resp_err_t err) {
  const Mapped m = classify(err);
  return Error{m.code, std::string(context) + ": " + rd_kafka_err2str(err), m.retriable};
}

Error kafka_error(std::string_view context, const rd_kafka_error_t* err) {
  Error e = kafka_error(context, rd_kafka_error_code(err));
  e.message = std::string(context) + ": " + rd_kafka_error_string(err);
  if (rd_kafka_error_is_fatal(err)) e.retriable = false;
  return e;
}

namespace {

// Every property a client of `role` gets, set on `conf`.
Result<void> fill_conf(rd_kafka_conf_t* conf, const BrokerConfig& cfg, Role role,
                       const std::string& group) {
  for (const char* managed : {"group.id", "enable.auto.offset.store"})
    if (cfg.kafka().options.count(managed))
      return Error{Errc::invalid_argument,
                   "broker '" + cfg.name + "': option '" + managed +
                       "' is managed by sluice (use the broker's `group` field)"};
  if (cfg.kafka().bootstrap.empty())
    return Error{Errc::invalid_argument, "broker '" + cfg.name + "': bootstrap is empty"};
  // Defaults first, then the user's options (which may change any default), then
  // the keys sluice owns.
  for (const auto& [k, v] : defaults(cfg, role, group)) {
    SLUICE_TRY(set(conf, cfg, k, v));
  }
  for (const auto& [k, v] : cfg.kafka().options) {
    SLUICE_TRY(set(conf, cfg, k, v));
  }
  if (role != Role::producer) {
    SLUICE_TRY(set(conf, cfg, "group.id", group));
    SLUICE_TRY(set(conf, cfg, "enable.auto.offset.store", "false"));
  }
  return ok();
}

}  // namespace

Result<void> check_options(const BrokerConfig& cfg) {
  for (Role role : {Role::producer, Role::consumer, Role::browser}) {
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    auto r = fill_conf(conf, cfg, role, cfg.kafka().group);
    rd_kafka_conf_destroy(conf);
    if (!r) return r;
  }
  return ok();
}

Result<Handle> make_client(const BrokerConfig& cfg, Role role, const std::string& group,
                           const std::function<void(rd_kafka_conf_t*)>& hooks) {
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  auto fail = [&](Error e) -> Result<Handle> {
    rd_kafka_conf_destroy(conf);
    return e;
  };
  if (auto r = fill_conf(conf, cfg, role, group); !r) return fail(r.error());
  rd_kafka_conf_set_log_cb(conf, log_cb);
  if (hooks) hooks(conf);

  char errstr[512];
  rd_kafka_t* rk = rd_kafka_new(role == Role::producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER,
                                conf, errstr, sizeof errstr);
  if (!rk) return fail(Error{Errc::invalid_argument, "broker '" + cfg.name + "': " + errstr});
  // rd_kafka_new owns `conf` from here on.
  return Handle(rk);
}

Reader::~Reader() {
  if (rk) rd_kafka_consumer_close(rk.get());
}

Result<Reader> make_reader(const BrokerConfig& cfg, const std::string& group,
                           const std::function<void(rd_kafka_conf_t*)>& hooks) {
  SLUICE_TRY(rk, make_client(cfg, Role::browser, group, hooks));
  Reader r(std::move(rk));
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(r.rk.get()))
    return kafka_error("kafka broker " + cfg.name + ": reader", err);
  return r;
}

PartList make_list(std::string_view topic, const std::vector<int32_t>& parts) {
  PartList l(rd_kafka_topic_partition_list_new(static_cast<int>(parts.size())));
  const std::string t(topic);
  for (int32_t p : parts) rd_kafka_topic_partition_list_add(l.get(), t.c_str(), p);
  return l;
}

Result<int32_t> partition_count(rd_kafka_t* rk, std::string_view topic,
                                std::chrono::milliseconds timeout) {
  const std::string t(topic);
  rd_kafka_topic_t* rkt = rd_kafka_topic_new(rk, t.c_str(), nullptr);
  if (!rkt) return kafka_error("kafka: topic '" + t + "'", rd_kafka_last_error());
  const rd_kafka_metadata_t* md = nullptr;
  rd_kafka_resp_err_t err =
      rd_kafka_metadata(rk, 0, rkt, &md, static_cast<int>(timeout.count()));
  rd_kafka_topic_destroy(rkt);
  if (err) return kafka_error("kafka: metadata of topic '" + t + "'", err);
  Result<int32_t> out = Error{Errc::not_found, "kafka: topic '" + t + "' does not exist"};
  for (int i = 0; i < md->topic_cnt; ++i) {
    if (t != md->topics[i].topic) continue;
    if (md->topics[i].err)
      out = kafka_error("kafka: topic '" + t + "'", md->topics[i].err);
    else if (md->topics[i].partition_cnt > 0)
      out = md->topics[i].partition_cnt;
  }
  rd_kafka_metadata_destroy(md);
  return out;
}

}  // namespace sluice::kafka
