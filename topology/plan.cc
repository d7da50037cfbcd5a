#include "topology/plan.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "broker-adapters/registry.h"
#include "config/values.h"
#include "broker-adapters/nats/nats_subject.h"
#include "core/topic.h"

namespace sluice::topology {

namespace {

// The working state of one plan() call, on the calling thread.
class Planner {
 public:
  explicit Planner(const Config& cfg) : cfg_(cfg) {}

  PlanResult run() {
    for (const BrokerConfig& b : cfg_.brokers)
      for (const auto& p : brokers::check_broker_config(b))
        error("brokers." + b.name + "." + p.key, b.line, p.error.message);
    for (size_t i = 0; i < cfg_.functions.size(); ++i) check_topics(i);
    for (size_t i = 0; i < cfg_.functions.size(); ++i) plan_function(i);
    for (size_t i = 0; i < cfg_.functions.size(); ++i) plan_subscriptions(i);
    for (size_t i = 0; i < cfg_.functions.size(); ++i) plan_retry_topic(i);
    choose_retry_paths();
    PlanResult r;
    if (errors_.empty()) r.plan = std::move(plan_);
    r.errors = std::move(errors_);
    return r;
  }

 private:
  void error(std::string path, int line, std::string message) {
    errors_.push_back(ConfigError{std::move(path), line, std::move(message), cfg_.file});
  }
  static std::string at(size_t i) { return "functions[" + std::to_string(i) + "]"; }

  // Every topic a function reads or writes is one its broker keeps (JetStream: the
  // stream stores the subject).
  void check_topics(size_t i) {
    const FunctionConfig& fn = cfg_.functions[i];
    auto check = [&](const std::string& broker, const std::string& topic,
                     const std::string& where, bool subscription) {
      const BrokerConfig* b = cfg_.broker(broker);
      if (!b) return;  // reported where the plan uses it
      if (auto r = brokers::check_broker_topic(*b, topic, subscription); !r)
        error(at(i) + "." + where, fn.line, r.error().message);
    };
    for (size_t j = 0; j < fn.subscribe.size(); ++j)
      check(fn.subscribe[j].broker, fn.subscribe[j].topic,
            "subscribe[" + std::to_string(j) + "].topic", true);
    check(fn.dead_letter.broker, fn.dead_letter.topic, "dead_letter.topic", false);
    if (fn.output) check(fn.output->broker, fn.output->topic, "output.topic", false);
  }

  // Dead letters, outputs and the retry topic. retry.mode topic takes its layout from
  // the broker of the first subscription: a retry topic there, or the broker's own
  // delayed redelivery, or — where it has neither — no way at all.
  void plan_function(size_t i) {
    const FunctionConfig& fn = cfg_.functions[i];
    FunctionPlan fp{fn.name, fn.dead_letter, fn.output, std::nullopt};
    if (fn.retry.mode == RetryMode::topic && !fn.subscribe.empty()) {
      if (const BrokerConfig* home = broker(fn.subscribe.front().broker, i)) {
        const brokers::BrokerCapabilities caps = brokers::broker_capabilities(*home);
        if (caps.retry_topics) {
          fp.retry = Target{home->name, retry_topic(fn.name)};
        } else if (!caps.redelivers_later) {
          error(at(i) + ".retry.mode", fn.line,
                "retry.mode topic on " + std::string(to_string(home->kind())) + " broker \"" +
                    home->name + "\" " + caps.no_retry_because + "; use mode: inline");
        }
      }
    }
    plan_.functions.push_back(std::move(fp));
  }

  // One source per (broker, topic, consumer group), shared by every function that
  // reads it in that group (fan-out); sized for the largest of them.
  void plan_subscriptions(size_t i) {
    const FunctionConfig& fn = cfg_.functions[i];
    for (const Subscription& sub : fn.subscribe) {
      const BrokerConfig* b = broker(sub.broker, i);
      if (!b) continue;
      const std::string group = brokers::consumer_group(*b, fn.name);
      auto [it, fresh] = shared_.try_emplace(std::tuple{sub.broker, sub.topic, group},
                                             plan_.sources.size());
      if (fresh) plan_.sources.push_back(SourcePlan{sub.broker, sub.topic, group, RouteRole::subscription, {}});
      widen(plan_.sources[it->second].options, fn);
      plan_.routes.push_back(
          RoutePlan{it->second, fn.name, sub.ordering, RouteRole::subscription, RetryPath::lane, sub.filter});
      route_function_.push_back(i);
    }
  }

  // A retry topic is read by its function alone, unordered: its events wait for their
  // due time, not for each other.
  void plan_retry_topic(size_t i) {
    const FunctionConfig& fn = cfg_.functions[i];
    const FunctionPlan& fp = plan_.functions[i];
    if (!fp.retry) return;
    const BrokerConfig* b = broker(fp.retry->broker, i);
    if (!b) return;
    SourcePlan s{b->name, fp.retry->topic, brokers::consumer_group(*b, fn.name), RouteRole::retry, {}};
    widen(s.options, fn);
    plan_.sources.push_back(std::move(s));
    plan_.routes.push_back(RoutePlan{plan_.sources.size() - 1, fn.name, Ordering::none,
                                     RouteRole::retry, RetryPath::topic, {}});
    route_function_.push_back(i);
  }

  // Where a failed event of each subscription waits (retry.mode topic): redelivered by
  // a broker that can (a nack settles the delivery for every function of the source,
  // so only where the route is the source's only one), else the function's retry
  // topic, else its lane.
  void choose_retry_paths() {
    std::vector<size_t> fed(plan_.sources.size(), 0);
    for (const RoutePlan& r : plan_.routes) ++fed[r.source];
    for (size_t k = 0; k < plan_.routes.size(); ++k) {
      RoutePlan& r = plan_.routes[k];
      const size_t i = route_function_[k];
      if (r.role != RouteRole::subscription || cfg_.functions[i].retry.mode != RetryMode::topic)
        continue;
      const BrokerConfig& b = *cfg_.broker(plan_.sources[r.source].broker);
      if (brokers::broker_capabilities(b).redelivers_later && fed[r.source] == 1)
        r.retry = RetryPath::redeliver;
      else if (plan_.functions[i].retry)
        r.retry = RetryPath::topic;
    }
  }

  static void widen(SourceOptions& o, const FunctionConfig& fn) {
    o.max_in_flight = std::max<uint32_t>(o.max_in_flight, held_budget(fn.concurrency));
    o.max_run_time =
        std::max(o.max_run_time, std::chrono::duration_cast<std::chrono::milliseconds>(fn.timeout));
  }

  // The loader refuses unknown broker names; a Config made by hand may still hold one.
  const BrokerConfig* broker(const std::string& name, size_t i) {
    const BrokerConfig* b = cfg_.broker(name);
    if (!b) error(at(i), cfg_.functions[i].line, "no broker named \"" + name + "\"");
    return b;
  }

  const Config& cfg_;
  Plan plan_;
  std::vector<ConfigError> errors_;
  std::map<std::tuple<std::string, std::string, std::string>, size_t> shared_;
  std::vector<size_t> route_function_;  // the function (config index) of each route
};

}  // namespace

PlanResult plan(const Config& cfg) { return Planner(cfg).run(); }

std::string retry_topic(std::string_view function) { return std::string(function) + ".retry"; }

std::set<std::string> internal_topics(const Config& cfg) {
  std::set<std::string> out;
  for (const auto& fn : cfg.functions) {
    out.insert(topology::retry_topic(fn.name));
    out.insert(fn.dead_letter.topic);
  }
  return out;
}

bool KnownTopics::knows(std::string_view topic) const {
  if (any || topics.count(std::string(topic))) return true;
  if (!wildcards) return false;
  for (const std::string& p : topics)
    if (nats::subject_matches(p, topic)) return true;
  return false;
}

std::optional<std::string> KnownTopics::unknown(std::string_view topic) const {
  if (knows(topic)) return std::nullopt;
  std::vector<std::string_view> candidates(topics.begin(), topics.end());
  const std::string_view hint = config::closest(topic, candidates);
  std::string out = "no function subscribes to topic '" + printable_topic(topic) +
                    "' on broker '" + broker + "'";
  if (!hint.empty()) out += " (did you mean '" + std::string(hint) + "'?)";
  return out;
}

KnownTopics subscribed_topics(const Config& cfg, std::string_view broker) {
  KnownTopics k;
  k.broker = std::string(broker);
  if (const BrokerConfig* b = cfg.broker(broker)) {
    const brokers::BrokerCapabilities caps = brokers::broker_capabilities(*b);
    k.refusing = caps.refuses_unknown_topics;
    k.wildcards = caps.wildcard_topics;
  }
  for (const FunctionConfig& fn : cfg.functions)
    for (const auto& s : fn.subscribe)
      if (s.broker == broker) k.topics.insert(s.topic);
  return k;
}

KnownTopics known_topics(const Config& cfg, std::string_view broker) {
  KnownTopics k = subscribed_topics(cfg, broker);
  if (const BrokerConfig* b = cfg.broker(broker); b && k.refusing) {
    // the local queue: its `topics` and `accept_any_topic`
    k.any = b->local().accept_any_topic;
    k.topics.insert(b->local().topics.begin(), b->local().topics.end());
  }
  for (const FunctionConfig& fn : cfg.functions)
    if (fn.output && fn.output->broker == broker) k.topics.insert(fn.output->topic);
  const std::set<std::string> internal = internal_topics(cfg);
  k.topics.insert(internal.begin(), internal.end());
  return k;
}

std::string declare_topic_hint(std::string_view broker) {
  const std::string b(broker);
  return "declare it in brokers." + b + ".topics or set brokers." + b +
         ".accept_any_topic: true";
}

}  // namespace sluice::topology
