// The topology plan: from a loaded Config, which Sources to open (broker, topic,
// consumer group), which function each one feeds (ordering, role, where a failed
// event's retry waits), and where each function's dead letters, outputs and retries
// are published — or, when the config cannot run, every reason why, with its file,
// field path and line.
//
// `sluice run` (Engine::start) builds from it and `sluice validate` (through
// preflight) runs the same plan, so the two accept and refuse the same configs. It is
// the one place that decides the retry layout (retry.mode) and who shares a Source.
// It opens nothing: what it knows of brokers and runtimes is what their registries
// describe from the config (broker_capabilities, consumer_group, check_broker_config).
//
// Threads: pure functions of the Config; any thread. A Plan is a plain value.
#pragma once

#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/route.h"

namespace sluice::topology {

// One Source to open: a topic read in one consumer group on one broker. Offset
// brokers read a topic once per broker group and fan it out to every function
// subscribed (consumer_group in broker-adapters/registry.h decides the group).
struct SourcePlan {
  std::string broker;
  std::string topic;
  std::string group;
  RouteRole role = RouteRole::subscription;
  // The largest concurrency and timeout among the functions it feeds.
  SourceOptions options;
};

// One route: a source feeding a function.
struct RoutePlan {
  size_t source = 0;  // index into Plan::sources
  std::string function;
  Ordering ordering = Ordering::partition;
  RouteRole role = RouteRole::subscription;
  RetryPath retry = RetryPath::lane;
  // The subscription's filter, compiled at config load (shared, immutable); empty on
  // retry routes and where the subscription has none.
  filter::SubscriptionFilter filter;
};

// Where one function publishes: dead letters, outputs and (retry.mode topic on a
// broker that holds retry topics) retries.
struct FunctionPlan {
  std::string name;
  Target dead_letter;
  std::optional<Target> output;
  std::optional<Target> retry;  // the target of its RetryPath::topic routes
};

struct Plan {
  // Subscriptions in order of first use (function by function), then retry topics.
  std::vector<SourcePlan> sources;
  // Function by function: its subscriptions in config order, then its retry topic.
  std::vector<RoutePlan> routes;
  std::vector<FunctionPlan> functions;  // config order
};

struct PlanResult {
  std::optional<Plan> plan;          // set when there are no errors
  std::vector<ConfigError> errors;   // with the config's file, field path and line
};

PlanResult plan(const Config& cfg);

// The topic a function's retries go to on retry.mode topic (`<function>.retry`).
std::string retry_topic(std::string_view function);

// The topics a publish to one broker may go to without a mistake being likely: those a
// function subscribes to (NATS: a subject its subscription pattern matches), outputs
// (a result topic nobody reads yet is still where results belong), every function's
// retry and dead-letter topic (internal_topics), and a local broker's `topics`.
struct KnownTopics {
  std::string broker;
  bool refusing = false;          // the broker refuses unknown topics (capabilities)
  bool wildcards = false;         // its topics may be subject patterns (NATS)
  bool any = false;               // a local broker with accept_any_topic: true
  std::set<std::string> topics;   // with wildcards, subscription patterns among them
  // True when `topic` is one of them (or `any`).
  bool knows(std::string_view topic) const;
  // Nullopt when known; else "no function subscribes to topic 't' on broker 'b' (did you
  // mean 'u'?)" — the reason only; the caller adds what to do about it.
  std::optional<std::string> unknown(std::string_view topic) const;
  // A local broker refuses unknown topics; Kafka and NATS only warn (the broker may have
  // other consumers than sluice).
  bool refuses() const { return refusing && !any; }
};
// The known topics of the broker named `broker` (which must exist in cfg).
KnownTopics known_topics(const Config& cfg, std::string_view broker);
// Only the topics functions subscribe to on `broker` (patterns on a wildcard broker):
// knows() says whether a topic has a subscriber (`sluice lag`).
KnownTopics subscribed_topics(const Config& cfg, std::string_view broker);
// How to make an unknown topic of a local broker known.
std::string declare_topic_hint(std::string_view broker);

// The topics only sluice writes to: every function's retry topic and dead-letter
// topic (HTTP ingress refuses them; `sluice publish` needs --internal).
std::set<std::string> internal_topics(const Config& cfg);

}  // namespace sluice::topology
