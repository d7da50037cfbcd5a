// One test per kind of bad input: each checks the field path, the line and the message.
#include <gtest/gtest.h>

#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using testing::load;

TEST(ConfigErrors, UnknownKeyIsAnErrorAtEveryLevel) {
  auto r = load(R"(colour: red
http: { listen: 127.0.0.1:1, port: 2 }
brokers:
  k: { kind: kafka, bootstrap: b, extra: 1 }
functions:
  - name: f
    command: [x]
    retry: { wibble: 1 }
)");
  EXPECT_CONFIG_ERROR(r, "colour", 1, "unknown key \"colour\"");
  EXPECT_CONFIG_ERROR(r, "http.port", 2, "unknown key \"port\"");
  EXPECT_CONFIG_ERROR(r, "brokers.k.extra", 4, "unknown key \"extra\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.wibble", 8, "expected one of: max_attempts,");
  EXPECT_EQ(r.errors.size(), 4u) << testing::dump(r);
}

TEST(ConfigErrors, KeyOfAnotherBrokerKindNamesTheKindsThatTakeIt) {
  auto r = load("brokers:\n  l: { kind: local, options: { a: b } }\n");
  EXPECT_CONFIG_ERROR(r, "brokers.l.options", 2,
                      "not allowed on a local broker (only on kafka and nats)");
}

TEST(ConfigErrors, TypoGetsADidYouMeanHint) {
  auto r = load(R"(functions:
  - name: f
    command: [x]
    timout: 5s
    subscribe: [{ topic: t, ordering: kye }]
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].timout", 4, "did you mean \"timeout\"?");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[0].ordering", 5, "did you mean \"key\"?");
}

TEST(ConfigErrors, WrongTypeNamesWhatWasExpectedAndFound) {
  auto r = load(R"(functions:
  - name: f
    command: python3 app.py
    env: [A, B]
    subscribe:
      topic: t
    workers: 3
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].command", 3,
                      "write it as a list: [python3, app.py]");
  EXPECT_CONFIG_ERROR(r, "functions[0].env", 4, "expected a map, got a list");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe", 5,
                      "expected a list of subscriptions, got a map");
  EXPECT_CONFIG_ERROR(r, "functions[0].workers", 7, "expected a map, got \"3\"");
  auto top = load("- a\n- b\n");
  EXPECT_CONFIG_ERROR(top, "", 1, "expected a map, got a list");
}

TEST(ConfigErrors, BadDuration) {
  auto r = load(R"(engine: { drain_timeout: 10 }
functions:
  - name: f
    command: [x]
    timeout: five
    retry: { initial: -1s }
)");
  EXPECT_CONFIG_ERROR(r, "engine.drain_timeout", 1, "missing unit");
  EXPECT_CONFIG_ERROR(r, "functions[0].timeout", 5, "expected a duration like 5s, got \"five\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.initial", 6, "must not be negative");
}

TEST(ConfigErrors, ZeroTimeoutIsRejected) {
  auto r = load("functions:\n  - { name: f, command: [x], timeout: 0s }\n");
  EXPECT_CONFIG_ERROR(r, "functions[0].timeout", 2, "must be at least 1ms, got \"0s\"");
}

TEST(ConfigErrors, BadSize) {
  auto r = load(R"(http: { max_body: 1.5MiB }
functions:
  - { name: f, command: [x], max_inflight_bytes: 10XB }
  - { name: g, command: [x], max_inflight_bytes: 0 }
)");
  EXPECT_CONFIG_ERROR(r, "http.max_body", 1, "expected a size like 1MiB, got \"1.5MiB\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].max_inflight_bytes", 3, "unknown unit \"XB\"");
  EXPECT_CONFIG_ERROR(r, "functions[1].max_inflight_bytes", 4, "must be at least 1B, got \"0\"");
}

// Durations and sizes beyond their documented maximum are refused by the loader (and
// so by `validate`), naming the field and line; the largest allowed value passes.
TEST(ConfigBounds, ValuesBeyondTheMaximumAreRefused) {
  auto r = load(R"(http: { max_body: 18446744073709551615 }
engine: { drain_timeout: 25h }
functions:
  - name: f
    command: [x]
    timeout: 2562047h47m16s
    max_inflight_bytes: 65GiB
    start_timeout: 61m
    workers: { idle_after: 169h }
    retry: { initial: 25h, max: 25h }
    limits: { memory: 65TiB }
)");
  EXPECT_CONFIG_ERROR(r, "http.max_body", 1, "must be at most 1GiB, got \"18446744073709551615\"");
  EXPECT_CONFIG_ERROR(r, "engine.drain_timeout", 2, "must be at most 24h");
  EXPECT_CONFIG_ERROR(r, "functions[0].timeout", 6, "must be at most 24h, got \"2562047h47m16s\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].max_inflight_bytes", 7, "must be at most 64GiB");
  EXPECT_CONFIG_ERROR(r, "functions[0].start_timeout", 8, "must be at most 1h");
  EXPECT_CONFIG_ERROR(r, "functions[0].workers.idle_after", 9, "must be at most 168h");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.initial", 10, "must be at most 24h");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.max", 10, "must be at most 24h");
  EXPECT_CONFIG_ERROR(r, "functions[0].limits.memory", 11, "must be at most 64TiB");

  auto at_max = load(R"(http: { max_body: 1GiB }
engine: { drain_timeout: 24h }
functions:
  - name: f
    command: [x]
    timeout: 24h
    max_inflight_bytes: 64GiB
    start_timeout: 1h
    workers: { idle_after: 168h }
    retry: { initial: 24h, max: 24h }
    limits: { memory: 64TiB }
)");
  EXPECT_TRUE(at_max.config.has_value()) << testing::dump(at_max);
}

// A huge bad scalar is echoed cut to a readable length, with its size.
TEST(ConfigErrors, AHugeBadValueIsEchoedCut) {
  const std::string huge(1u << 20, 'x');
  auto r = load("functions:\n  - { name: f, command: [x], timeout: " + huge + " }\n");
  const ConfigError* e = testing::find_error(r, "functions[0].timeout");
  ASSERT_NE(e, nullptr) << testing::dump(r).substr(0, 500);
  EXPECT_LT(e->to_string().size(), 400u);
  EXPECT_NE(e->message.find("\"" + std::string(64, 'x') + "\u2026\" (1048576 bytes)"),
            std::string::npos)
      << e->message;
  // Also as a key, an enum value and a function name.
  const std::string big(100000, 'y');
  auto k = load(big + ": 1\n");
  ASSERT_EQ(k.errors.size(), 1u);
  EXPECT_LT(k.errors[0].to_string().size(), 2200u);
  auto n = load("functions:\n  - { name: " + big + ", command: [x], runtime: " + big + " }\n");
  ASSERT_FALSE(n.errors.empty());
  for (const ConfigError& x : n.errors) EXPECT_LT(x.to_string().size(), 2200u) << x.path;
}

TEST(ConfigErrors, BadEnumListsTheChoices) {
  auto r = load(R"(brokers:
  q: { kind: rabbit }
functions:
  - { name: f, command: [x], runtime: lambda, retry: { backoff: linear, jitter: half, mode: q } }
)");
  EXPECT_CONFIG_ERROR(r, "brokers.q.kind", 2,
                      "expected one of local | kafka | nats, got \"rabbit\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].runtime", 4, "expected one of exec | stdio | http | inproc");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.backoff", 4, "exponential | fixed");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.jitter", 4, "full | equal | none");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.mode", 4, "inline | topic");
}

TEST(ConfigErrors, MissingOrEmptyRequiredValue) {
  auto r = load(R"(brokers:
  k: { kind: kafka }
  n: { kind: nats, jetstream: { stream: S } }
  x: { path: /tmp/x }
functions:
  - name: f
  - { name: "", command: [x] }
  - { name: h, command: [], subscribe: [{ broker: k }] }
)");
  EXPECT_CONFIG_ERROR(r, "brokers.k.bootstrap", 2, "missing required key \"bootstrap\"");
  EXPECT_CONFIG_ERROR(r, "brokers.n.jetstream.subjects", 3, "missing required key");
  EXPECT_CONFIG_ERROR(r, "brokers.x.kind", 4, "missing required key \"kind\"");
  EXPECT_CONFIG_ERROR(r, "functions[0].command", 6, "missing required key \"command\"");
  EXPECT_CONFIG_ERROR(r, "functions[1].name", 7, "must not be empty");
  EXPECT_CONFIG_ERROR(r, "functions[2].command", 8, "must not be empty");
  EXPECT_CONFIG_ERROR(r, "functions[2].subscribe[0].topic", 8, "missing required key \"topic\"");
}

TEST(ConfigErrors, InvalidFunctionName) {
  auto r = load("functions:\n  - { name: Thumb Nail, command: [x] }\n");
  EXPECT_CONFIG_ERROR(r, "functions[0].name", 2, "not a valid function name");
}

TEST(ConfigErrors, DuplicateNames) {
  auto r = load(R"(brokers:
  a: { kind: local }
  a: { kind: kafka, bootstrap: b }
functions:
  - { name: f, command: [x] }
  - name: f
    command: [y]
)");
  EXPECT_CONFIG_ERROR(r, "brokers.a", 3, "duplicate broker name \"a\" (first on line 2)");
  EXPECT_CONFIG_ERROR(r, "functions[1].name", 6, "duplicate function name \"f\" (first on line 5)");
}

TEST(ConfigErrors, DuplicateKeyInAMap) {
  auto r = load("functions:\n  - name: f\n    command: [x]\n    name: g\n");
  EXPECT_CONFIG_ERROR(r, "functions[0].name", 4, "duplicate key \"name\" (first on line 2)");
}

TEST(ConfigErrors, UnknownBrokerReference) {
  auto r = load(R"(brokers:
  kafka: { kind: kafka, bootstrap: b }
functions:
  - name: f
    command: [x]
    subscribe: [{ broker: kafak, topic: t }]
    dead_letter: { broker: elsewhere, topic: d }
    output: { broker: local, topic: o }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[0].broker", 6,
                      "unknown broker \"kafak\" (did you mean \"kafka\"?)");
  EXPECT_CONFIG_ERROR(r, "functions[0].dead_letter.broker", 7, "(configured: kafka)");
  // With explicit brokers there is no implicit `local` one.
  EXPECT_CONFIG_ERROR(r, "functions[0].output.broker", 8, "unknown broker \"local\"");
}

TEST(ConfigErrors, OutOfRangeNumbers) {
  auto r = load(R"(brokers:
  l: { kind: local, partitions: 2000 }
functions:
  - name: f
    command: [x]
    concurrency: 0
    retry: { max_attempts: -1 }
    workers: { target_lag: 0 }
  - { name: g, command: [x], concurrency: many }
)");
  EXPECT_CONFIG_ERROR(r, "brokers.l.partitions", 2, "must be in 1..1024, got 2000");
  EXPECT_CONFIG_ERROR(r, "functions[0].concurrency", 6, "must be in 1..100000, got 0");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.max_attempts", 7, "must be in 1..1000, got -1");
  EXPECT_CONFIG_ERROR(r, "functions[0].workers.target_lag", 8, "must be in 1..");
  EXPECT_CONFIG_ERROR(r, "functions[1].concurrency", 9, "expected an integer in 1..100000");
}

TEST(ConfigErrors, ConnectionLimitsAndIdleTimeout) {
  auto r = load(R"(http: { max_connections: 0, idle_timeout: 0s }
functions: []
)");
  EXPECT_CONFIG_ERROR(r, "http.max_connections", 1, "must be in 1..10000000, got 0");
  EXPECT_CONFIG_ERROR(r, "http.idle_timeout", 1, "must be at least 1ms");
  auto long_idle = load("http: { idle_timeout: 25h }\n");
  EXPECT_CONFIG_ERROR(long_idle, "http.idle_timeout", 1, "at most 24h");
  auto ok = load("http: { max_connections: 10000, idle_timeout: 5m }\n");
  ASSERT_TRUE(ok.config) << testing::dump(ok);
  EXPECT_EQ(ok.config->http.max_connections, 10000u);
  EXPECT_EQ(ok.config->http.idle_timeout, Millis(300000));
}

TEST(ConfigErrors, InconsistentLimits) {
  auto r = load(R"(functions:
  - name: f
    command: [x]
    concurrency: 2
    workers: { min: 3 }
    retry: { initial: 5s, max: 1s }
  - { name: g, command: [x], workers: { min: 5, max: 4 } }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].workers.min", 5,
                      "must be <= concurrency (2) when workers.max is 0");
  EXPECT_CONFIG_ERROR(r, "functions[0].retry.max", 6, "must be >= retry.initial");
  EXPECT_CONFIG_ERROR(r, "functions[1].workers.min", 7, "must be <= workers.max (4)");
}

TEST(ConfigErrors, InlineIsABoolAndOnlyForInproc) {
  auto r = load(R"(functions:
  - { name: f, command: [x], inline: true }
  - { name: g, runtime: inproc, command: [/x.so], inline: sometimes }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].inline", 2,
                      "only the inproc runtime can run inline (on the dispatcher thread)");
  EXPECT_CONFIG_ERROR(r, "functions[1].inline", 3, "expected true or false");
  auto good = load("functions:\n  - { name: h, runtime: inproc, command: [/x.so], inline: true }\n");
  ASSERT_TRUE(good.config) << (good.errors.empty() ? "" : good.errors[0].to_string());
  EXPECT_TRUE(good.config->functions[0].inline_calls);
}

TEST(ConfigErrors, BadListenAddress) {
  auto r = load(R"(http: { listen: localhost }
metrics: { listen: "::1:9464" }
functions: []
)");
  EXPECT_CONFIG_ERROR(r, "http.listen", 1,
                      "expected host:port like 127.0.0.1:8080, got \"localhost\"");
  EXPECT_CONFIG_ERROR(r, "metrics.listen", 2, "in brackets");
  auto port = load("metrics: { listen: \"127.0.0.1:65536\" }\n");
  EXPECT_CONFIG_ERROR(port, "metrics.listen", 1, "port must be 0..65535");
  auto host = load("metrics: { listen: \":80\" }\n");
  EXPECT_CONFIG_ERROR(host, "metrics.listen", 1, "empty host");
}

TEST(ConfigErrors, DotsSlashesAndControlCharactersAreNotTopicNames) {
  auto r = load(R"(functions:
  - name: f
    command: [x]
    subscribe: [{ topic: "." }, { topic: ".." }, { topic: "a/b" }, { topic: "a\tb" }, { topic: "" }]
    dead_letter: { topic: ".." }
    output: { topic: "../x" }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[0].topic", 4, "'.' and '..' are not topic names");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[1].topic", 4, "'.' and '..' are not topic names");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[2].topic", 4, "cannot contain '/'");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[3].topic", 4, "control characters");
  EXPECT_CONFIG_ERROR(r, "functions[0].subscribe[4].topic", 4, "cannot be empty");
  EXPECT_CONFIG_ERROR(r, "functions[0].dead_letter.topic", 5, "'.' and '..' are not topic names");
  EXPECT_CONFIG_ERROR(r, "functions[0].output.topic", 6, "cannot contain '/'");
  EXPECT_TRUE(load("functions:\n  - { name: f, command: [x], subscribe: [{ topic: a.b-c_1 }] }\n")
                  .config.has_value());
}

TEST(ConfigErrors, OutputContentTypeMustBeAMediaType) {
  auto r = load(R"(functions:
  - { name: f, command: [x], output: { topic: o, content_type: json } }
  - { name: g, command: [x], output: { topic: o, content_type: "text/ plain" } }
  - { name: h, command: [x], dead_letter: { topic: d, content_type: text/plain } }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].output.content_type", 2,
                      "\"json\" is not a media type (write it as type/subtype");
  EXPECT_CONFIG_ERROR(r, "functions[1].output.content_type", 3, "is not a media type");
  EXPECT_CONFIG_ERROR(r, "functions[2].dead_letter.content_type", 4, "content_type");
}

TEST(ConfigErrors, BadNatsUrl) {
  auto r = load(R"(brokers:
  n: { kind: nats, url: [nats://a:4222, "http://b:4222"] }
)");
  EXPECT_CONFIG_ERROR(r, "brokers.n.url[1]", 2, "expected a nats:// or tls:// URL");
}

TEST(ConfigErrors, OutputEqualToOwnSubscriptionIsALoop) {
  auto r = load(R"(functions:
  - name: f
    command: [x]
    subscribe: [{ topic: a }, { topic: b }]
    output: { topic: b }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].output", 5,
                      "output topic \"b\" on broker \"local\" is also a subscription");
}

TEST(ConfigErrors, SyntaxErrorIsOneErrorWithItsLine) {
  auto r = load("functions:\n  - name: f\n    command: [x, y\n    timeout: 5s\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::dump(r);
  EXPECT_EQ(r.errors[0].path, "");
  EXPECT_EQ(r.errors[0].line, 4);
  EXPECT_NE(r.errors[0].message.find("YAML syntax error"), std::string::npos);
  EXPECT_FALSE(r.config);
}

TEST(ConfigErrors, EveryErrorIsReportedInLineOrder) {
  auto r = load(R"(brokers:
  local: { kind: local, partitions: 0 }
http: { listen: nope }
functions:
  - name: f
    command: [x]
    timeout: soon
    concurrency: 0
  - name: f
    command: [y]
    subscribe: [{ broker: nowhere, topic: t }]
)");
  ASSERT_EQ(r.errors.size(), 6u) << testing::dump(r);
  const int lines[] = {2, 3, 7, 8, 9, 11};
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(r.errors[i].line, lines[i]) << testing::dump(r);
  EXPECT_FALSE(r.config);
}

TEST(ConfigErrors, ToStringIsFileLinePathMessage) {
  ConfigError e{"functions[0].timeout", 12, "expected a duration like 5s, got \"five\"",
                "sluice.yaml"};
  EXPECT_EQ(e.to_string(),
            "sluice.yaml:12: functions[0].timeout: expected a duration like 5s, got \"five\"");
  EXPECT_EQ((ConfigError{"", 3, "YAML syntax error: x", ""}).to_string(),
            "<config>:3: YAML syntax error: x");
  EXPECT_EQ((ConfigError{"a.b", 0, "m", "c.yaml"}).to_string(), "c.yaml: a.b: m");
}

}  // namespace
}  // namespace sluice::config::testing
