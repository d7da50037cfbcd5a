// The one place broker kinds are registered (STYLE.md: a compile-time list).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/broker.h"

namespace sluice::brokers {

// Opens the broker a `brokers:` entry describes (every kind is built in; a kind
// value outside the enum is an Errc::invalid_argument naming the broker).
Result<std::unique_ptr<Broker>> make_broker(const BrokerConfig& cfg);

// What make_broker would refuse in the entry's options, without connecting (Kafka:
// each property set on a throw-away librdkafka conf; NATS: the option table).
Result<void> check_broker_options(const BrokerConfig& cfg);

// The consumer group a function's subscription reads with. Offset brokers (local,
// Kafka): the broker's group, shared by every function of a topic (fan-out). NATS
// JetStream: one durable consumer per function, `<group>_<function>` ('.', '*', '>'
// replaced by '_'), so a slow function never holds back another one's acks.
std::string consumer_group(const BrokerConfig& broker, const std::string& function);

// What make_broker would refuse in the entry without connecting, each with the key it
// is about: "options" (Kafka: each property set on a throw-away librdkafka conf; NATS:
// the option table) and "jetstream.stream" (a name JetStream does not accept).
struct BrokerConfigProblem {
  std::string key;
  Error error;
};
std::vector<BrokerConfigProblem> check_broker_config(const BrokerConfig& cfg);

// Whether the broker keeps what a function reads (`subscription`: the topic is a
// filter) or writes (dead letters, outputs) on `topic`. NATS with JetStream: the
// stream must store the subject, or a dead letter or output would go out as core NATS
// and be lost without a trace. Other brokers keep any topic.
Result<void> check_broker_topic(const BrokerConfig& cfg, const std::string& topic,
                                bool subscription);

// What a `brokers:` entry can do, known from its config alone (no connection): what
// the topology plan (topology/plan.h), preflight and `run` decide by, so that none of
// them asks which kind a broker is.
struct BrokerCapabilities {
  // Keeps events in a database file of its own at `path` (local): preflight checks
  // the file can be written, `run` holds its engine lock.
  bool own_database = false;
  // Stores only what sluice's functions read: a publish to a topic none of them
  // subscribes to is refused (unless declared; topology::known_topics).
  bool refuses_unknown_topics = false;
  // Topics may be subject patterns (`events.>`) that match others.
  bool wildcard_topics = false;
  // Lists every topic that holds events cheaply (a query of its own file): `sluice lag`
  // counts them all. Elsewhere it counts the topics sluice knows of, or all with --all.
  bool lists_topics_cheaply = false;
  // A server sluice connects to: whether it answers is known only at run.
  bool remote = false;
  // Can hold the topics sluice publishes retries to and reads back (retry.mode topic
  // with RetryPath::topic).
  bool retry_topics = false;
  // A consumer may nack(delay) a message and the broker redelivers it when due
  // (RetryPath::redeliver): the broker is the delay queue.
  bool redelivers_later = false;
  // Why retry.mode topic is impossible when neither of the two above holds.
  const char* no_retry_because = "";
};
BrokerCapabilities broker_capabilities(const BrokerConfig& cfg);

}  // namespace sluice::brokers
