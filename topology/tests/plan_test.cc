// topology::plan without brokers: who shares a source, where retries and dead letters
// go, and which configs cannot run.
#include "topology/plan.h"

#include <gtest/gtest.h>

namespace sluice::topology::testing {
namespace {

Config load(const std::string& yaml) {
  LoadResult r = load_config_string(yaml, "/srv/app");
  std::string why;
  for (const ConfigError& e : r.errors) why += e.to_string() + "\n";
  EXPECT_TRUE(r.config.has_value()) << why;
  return r.config ? *r.config : Config{};
}

Plan plan_of(const std::string& yaml) {
  const Config c = load(yaml);
  PlanResult r = plan(c);
  std::string why;
  for (const ConfigError& e : r.errors) why += e.to_string() + "\n";
  EXPECT_TRUE(r.plan.has_value()) << why;
  return r.plan ? *r.plan : Plan{};
}

std::vector<const RoutePlan*> routes_of(const Plan& p, const std::string& fn) {
  std::vector<const RoutePlan*> out;
  for (const RoutePlan& r : p.routes)
    if (r.function == fn) out.push_back(&r);
  return out;
}

const ConfigError* error_at(const PlanResult& r, const std::string& path) {
  for (const ConfigError& e : r.errors)
    if (e.path == path) return &e;
  return nullptr;
}

TEST(Plan, FunctionsOfOneTopicShareOneSourcePerBrokerGroup) {
  const Plan p = plan_of(R"(brokers:
  q: { kind: local, path: ./q.db }
  k: { kind: kafka, bootstrap: 127.0.0.1:1, group: g }
functions:
  - { name: a, command: [x], concurrency: 2, timeout: 5s, subscribe: [{ topic: t }] }
  - { name: b, command: [x], concurrency: 7, timeout: 1s, subscribe: [{ topic: t, ordering: key }, { topic: u }] }
  - { name: c, command: [x], subscribe: [{ broker: k, topic: t }] }
)");
  ASSERT_EQ(p.sources.size(), 3u);
  EXPECT_EQ(p.sources[0].broker, "q");
  EXPECT_EQ(p.sources[0].topic, "t");
  EXPECT_EQ(p.sources[0].group, "sluice");
  EXPECT_EQ(p.sources[0].role, RouteRole::subscription);
  // Sized for the largest of the functions it feeds.
  EXPECT_EQ(p.sources[0].options.max_in_flight, held_budget(7));
  EXPECT_EQ(p.sources[0].options.max_run_time, std::chrono::seconds(5));
  EXPECT_EQ(p.sources[1].topic, "u");
  EXPECT_EQ(p.sources[2].broker, "k");
  EXPECT_EQ(p.sources[2].group, "g");
  ASSERT_EQ(p.routes.size(), 4u);
  EXPECT_EQ(p.routes[0].source, 0u);
  EXPECT_EQ(p.routes[0].function, "a");
  EXPECT_EQ(p.routes[1].source, 0u);  // b shares a's source of t
  EXPECT_EQ(p.routes[1].function, "b");
  EXPECT_EQ(p.routes[1].ordering, Ordering::key);
  EXPECT_EQ(p.routes[2].source, 1u);
  EXPECT_EQ(p.routes[3].source, 2u);
  for (const RoutePlan& r : p.routes) EXPECT_EQ(r.retry, RetryPath::lane);  // retry.mode inline
}

// Each subscription's compiled filter rides on its route (shared, not recompiled); a
// shared source's routes keep their own filters; retry routes have none.
TEST(Plan, RoutesCarryTheirSubscriptionsFilter) {
  const Plan p = plan_of(R"(functions:
  - name: a
    command: [x]
    retry: { mode: topic }
    subscribe: [{ topic: t, filter: { prefix: { type: "com." } } }]
  - name: b
    command: [x]
    subscribe: [{ topic: t }]
)");
  const auto a = routes_of(p, "a");
  const auto b = routes_of(p, "b");
  ASSERT_EQ(a.size(), 2u);  // the subscription and the retry topic
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(a[0]->source, b[0]->source);
  ASSERT_TRUE(a[0]->filter);
  EXPECT_EQ(a[0]->filter.dialect(), filter::Dialect::prefix);
  EXPECT_FALSE(a[1]->filter);  // retry topic: already filtered on the way in
  EXPECT_FALSE(b[0]->filter);
  Event e;
  e.type = "com.x";
  EXPECT_TRUE(a[0]->filter.matches(filter::EventView(e)));
  e.type = "org.x";
  EXPECT_FALSE(a[0]->filter.matches(filter::EventView(e)));
}

TEST(Plan, JetStreamGivesEachFunctionADurableOfItsOwn) {
  const Plan p = plan_of(R"(brokers:
  n: { kind: nats, jetstream: { stream: S, subjects: [">"] } }
functions:
  - { name: a.x, command: [x], subscribe: [{ topic: t }] }
  - { name: b, command: [x], subscribe: [{ topic: t }] }
)");
  ASSERT_EQ(p.sources.size(), 2u);
  EXPECT_EQ(p.sources[0].group, "sluice_a_x");
  EXPECT_EQ(p.sources[1].group, "sluice_b");
}

TEST(Plan, RetryTopicModeGivesTheFunctionARetryTopicOfItsOwn) {
  const Plan p = plan_of(R"(brokers:
  q: { kind: local, path: ./q.db }
functions:
  - { name: a, command: [x], concurrency: 3, subscribe: [{ topic: t }], retry: { mode: topic } }
  - { name: b, command: [x], subscribe: [{ topic: t }] }
  - { name: c, command: [x], subscribe: [{ topic: t }], retry: { mode: topic } }
)");
  ASSERT_EQ(p.functions.size(), 3u);
  ASSERT_TRUE(p.functions[0].retry);
  EXPECT_EQ(p.functions[0].retry->broker, "q");
  EXPECT_EQ(p.functions[0].retry->topic, "a.retry");
  EXPECT_FALSE(p.functions[1].retry);
  ASSERT_TRUE(p.functions[2].retry);
  EXPECT_EQ(p.functions[2].retry->topic, "c.retry");
  // t (shared), then one retry source per topic-mode function, feeding it alone.
  ASSERT_EQ(p.sources.size(), 3u);
  EXPECT_EQ(p.sources[1].topic, "a.retry");
  EXPECT_EQ(p.sources[1].role, RouteRole::retry);
  EXPECT_EQ(p.sources[1].options.max_in_flight, held_budget(3));
  EXPECT_EQ(p.sources[2].topic, "c.retry");
  const auto a = routes_of(p, "a");
  ASSERT_EQ(a.size(), 2u);
  EXPECT_EQ(a[0]->retry, RetryPath::topic);
  EXPECT_EQ(a[1]->source, 1u);
  EXPECT_EQ(a[1]->role, RouteRole::retry);
  EXPECT_EQ(a[1]->ordering, Ordering::none);
  EXPECT_EQ(a[1]->retry, RetryPath::topic);
  EXPECT_EQ(routes_of(p, "b")[0]->retry, RetryPath::lane);
}

TEST(Plan, RetryTopicModeOnJetStreamIsRedeliveryWithoutARetryTopic) {
  const Plan p = plan_of(R"(brokers:
  n: { kind: nats, jetstream: { stream: S, subjects: [">"] } }
  q: { kind: local, path: ./q.db }
functions:
  - name: js_first
    command: [x]
    subscribe: [{ topic: t }, { broker: q, topic: u }]
    retry: { mode: topic }
  - name: local_first
    command: [x]
    subscribe: [{ broker: q, topic: u }, { broker: n, topic: t }]
    retry: { mode: topic }
)");
  EXPECT_FALSE(p.functions[0].retry);  // its home broker redelivers
  auto r = routes_of(p, "js_first");
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0]->retry, RetryPath::redeliver);
  EXPECT_EQ(r[1]->retry, RetryPath::lane);  // no retry topic to send it to
  ASSERT_TRUE(p.functions[1].retry);
  EXPECT_EQ(p.functions[1].retry->broker, "q");
  r = routes_of(p, "local_first");
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r[0]->retry, RetryPath::topic);
  EXPECT_EQ(r[1]->retry, RetryPath::redeliver);
  EXPECT_EQ(r[2]->role, RouteRole::retry);
  for (const SourcePlan& s : p.sources) EXPECT_NE(s.topic, "js_first.retry");
}

TEST(Plan, DeadLettersAndOutputsGoWhereTheConfigSays) {
  const Config c = load(R"(brokers:
  q: { kind: local, path: ./q.db }
  r: { kind: local, path: ./r.db }
functions:
  - { name: a, command: [x], subscribe: [{ broker: r, topic: t }], output: { topic: o } }
  - { name: b, command: [x], subscribe: [{ topic: t }], dead_letter: { broker: r, topic: bad } }
)");
  const PlanResult r = plan(c);
  ASSERT_TRUE(r.plan);
  const Plan& p = *r.plan;
  EXPECT_EQ(p.functions[0].dead_letter.broker, "r");  // the first subscription's broker
  EXPECT_EQ(p.functions[0].dead_letter.topic, "a.dlq");
  ASSERT_TRUE(p.functions[0].output);
  EXPECT_EQ(p.functions[0].output->broker, "r");
  EXPECT_EQ(p.functions[0].output->topic, "o");
  EXPECT_EQ(p.functions[1].dead_letter.broker, "r");
  EXPECT_EQ(p.functions[1].dead_letter.topic, "bad");
  EXPECT_FALSE(p.functions[1].output);
  EXPECT_EQ(internal_topics(c), (std::set<std::string>{"a.dlq", "a.retry", "b.retry", "bad"}));
}

TEST(KnownTopics, SubscriptionsOutputsInternalAndDeclaredTopicsPerBroker) {
  Config c = load(R"(brokers:
  l: { kind: local, topics: [audit] }
  any: { kind: local, accept_any_topic: true }
  n: { kind: nats }
functions:
  - name: a
    command: [cat]
    subscribe: [{ broker: l, topic: greetings }, { broker: n, topic: "events.>" }]
    output: { broker: l, topic: shouted }
)");
  const KnownTopics l = known_topics(c, "l");
  EXPECT_TRUE(l.refuses());
  for (const char* t : {"greetings", "shouted", "audit", "a.dlq", "a.retry"})
    EXPECT_TRUE(l.knows(t)) << t;
  EXPECT_FALSE(l.knows("events.x"));  // another broker's subscription
  ASSERT_TRUE(l.unknown("greetngs"));
  EXPECT_EQ(*l.unknown("greetngs"),
            "no function subscribes to topic 'greetngs' on broker 'l' (did you mean "
            "'greetings'?)");
  EXPECT_EQ(*l.unknown("zzzzzzzz"), "no function subscribes to topic 'zzzzzzzz' on broker 'l'");

  const KnownTopics any = known_topics(c, "any");
  EXPECT_FALSE(any.refuses());
  EXPECT_TRUE(any.knows("whatever"));

  const KnownTopics n = known_topics(c, "n");
  EXPECT_FALSE(n.refuses());  // NATS and Kafka only warn
  EXPECT_TRUE(n.knows("events.x"));  // the wildcard subscription matches
  EXPECT_TRUE(n.unknown("other.x"));

  // `sluice lag`: only subscriptions count as a subscriber.
  const KnownTopics subs = subscribed_topics(c, "l");
  EXPECT_TRUE(subs.knows("greetings"));
  for (const char* t : {"shouted", "audit", "a.dlq"}) EXPECT_FALSE(subs.knows(t)) << t;
  const KnownTopics nsubs = subscribed_topics(c, "n");
  EXPECT_TRUE(nsubs.knows("events.x"));
  EXPECT_FALSE(nsubs.knows("a.retry"));
}

// `run` used to refuse this at start while `validate` passed it.
TEST(PlanRefuses, TopicRetryModeOnCoreNats) {
  Config c = load(R"(brokers:
  n: { kind: nats }
functions:
  - name: f
    command: [x]
    subscribe: [{ topic: t }]
    retry: { mode: topic }
)");
  c.file = "sluice.yaml";
  const PlanResult r = plan(c);
  EXPECT_FALSE(r.plan);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].path, "functions[0].retry.mode");
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_EQ(r.errors[0].to_string(),
            "sluice.yaml:4: functions[0].retry.mode: retry.mode topic on nats broker \"n\" needs "
            "JetStream (core NATS cannot redeliver); use mode: inline");
  // The same function on JetStream is planned.
  EXPECT_TRUE(plan(load(R"(brokers:
  n: { kind: nats, jetstream: { stream: S, subjects: [t, f.dlq] } }
functions:
  - { name: f, command: [x], subscribe: [{ topic: t }], retry: { mode: topic } }
)")).plan);
}

// A stream name JetStream refuses: `run` refused it once connected, `validate` passed it.
TEST(PlanRefuses, BrokerSettingsTheBrokerWouldRefuse) {
  const PlanResult r = plan(load(R"(brokers:
  n: { kind: nats, jetstream: { stream: "A.B", subjects: ["t", "f.dlq"] } }
  k: { kind: kafka, bootstrap: 127.0.0.1:1, options: { no.such.property: 1 } }
functions:
  - { name: f, command: [x], subscribe: [{ topic: t }] }
)"));
  EXPECT_FALSE(r.plan);
  const ConfigError* e = error_at(r, "brokers.n.jetstream.stream");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->line, 2);
  EXPECT_NE(e->message.find("not a valid stream name"), std::string::npos) << e->message;
  e = error_at(r, "brokers.k.options");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->line, 3);
  EXPECT_NE(e->message.find("no.such.property"), std::string::npos) << e->message;
}

TEST(PlanRefuses, JetStreamSubjectsMustCoverWhatAFunctionReadsAndWrites) {
  const Config c = load(R"(brokers:
  nats: { kind: nats, url: "nats://127.0.0.1:4222", jetstream: { stream: EVENTS, subjects: ["events.>"] } }
functions:
  - name: f
    command: [cat]
    subscribe: [{ broker: nats, topic: "orders.*" }]
    output: { broker: nats, topic: events.out }
)");
  const PlanResult r = plan(c);
  // The subscription is outside the stream, and so is the default dead letter f.dlq.
  const ConfigError* sub = error_at(r, "functions[0].subscribe[0].topic");
  ASSERT_NE(sub, nullptr);
  EXPECT_EQ(sub->line, 4);
  EXPECT_NE(sub->message.find("not stored by stream \"EVENTS\""), std::string::npos) << sub->message;
  const ConfigError* dlq = error_at(r, "functions[0].dead_letter.topic");
  ASSERT_NE(dlq, nullptr);
  EXPECT_NE(dlq->message.find("\"f.dlq\""), std::string::npos) << dlq->message;
  EXPECT_EQ(error_at(r, "functions[0].output.topic"), nullptr);  // events.out is stored

  plan_of(R"(brokers:
  nats: { kind: nats, url: "nats://127.0.0.1:4222", jetstream: { stream: EVENTS, subjects: ["events.>", "f.dlq"] } }
functions:
  - name: f
    command: [cat]
    subscribe: [{ broker: nats, topic: "events.*" }]
)");
}

TEST(PlanRefuses, ASubscriptionToABrokerThatIsNotThere) {
  Config c = load("functions:\n  - { name: f, command: [x], subscribe: [{ topic: t }] }\n");
  c.functions[0].subscribe[0].broker = "gone";
  const PlanResult r = plan(c);
  EXPECT_FALSE(r.plan);
  ASSERT_NE(error_at(r, "functions[0]"), nullptr);
}

}  // namespace
}  // namespace sluice::topology::testing
