// The one place broker kinds are registered (STYLE.md: a compile-time list).
#pragma once

#include <memory>

#include "config/config.h"
#include "core/broker.h"

namespace sluice {

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

}  // namespace sluice
