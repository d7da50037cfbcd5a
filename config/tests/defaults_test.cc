// Defaults, the PRODUCT.md sample, path resolution and the Config helpers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using testing::load;

TEST(ConfigDefaults, EmptyMapGivesTheDefaultLocalBroker) {
  // An empty file is an error (vars_test.cc: EmptyFileIsAnError); `{}` says "defaults".
  for (const char* text : {"{}\n", "# nothing\n{}\n"}) {
    auto r = load(text);
    ASSERT_TRUE(r.config) << testing::dump(r);
    const Config& c = *r.config;
    EXPECT_EQ(c.base_dir, "/srv/app");
    ASSERT_EQ(c.brokers.size(), 1u);
    EXPECT_EQ(c.brokers[0].name, "local");
    EXPECT_EQ(c.brokers[0].kind(), BrokerKind::local);
    EXPECT_EQ(c.brokers[0].local().path, "/srv/app/data/sluice.db");
    EXPECT_EQ(c.brokers[0].local().partitions, 4);
    EXPECT_EQ(c.brokers[0].local().group, "sluice");
    EXPECT_FALSE(c.http.enabled);
    EXPECT_FALSE(c.metrics.enabled);
    EXPECT_EQ(c.engine.drain_timeout, Millis(30000));
    EXPECT_EQ(c.engine.control_key_file, "/srv/app/data/control.key");
    EXPECT_TRUE(c.functions.empty());
  }
}

TEST(ConfigDefaults, ControlKeyFileIsResolvedAgainstTheConfigDir) {
  auto r = load("engine: { control_key_file: secrets/control.key }\n");
  ASSERT_TRUE(r.config) << testing::dump(r);
  EXPECT_EQ(r.config->engine.control_key_file, "/srv/app/secrets/control.key");
  EXPECT_FALSE(load("engine: { control_key_file: \"\" }\n").config);
}

TEST(ConfigDefaults, EveryFunctionDefault) {
  auto r = load("functions:\n  - { name: f, command: [./run.sh] }\n");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const FunctionConfig& f = r.config->functions.at(0);
  EXPECT_EQ(f.line, 2);
  EXPECT_EQ(f.runtime, RuntimeKind::exec);
  EXPECT_EQ(f.command, std::vector<std::string>{"./run.sh"});  // exec: cwd is base_dir
  EXPECT_TRUE(f.env.empty());
  EXPECT_EQ(f.timeout, Millis(30000));
  EXPECT_EQ(f.concurrency, 4u);
  EXPECT_EQ(f.max_inflight_bytes, 64ull << 20);
  EXPECT_EQ(f.workers.min, 0u);
  EXPECT_EQ(f.workers.max, 0u);
  EXPECT_EQ(f.workers.target_lag, 500u);
  EXPECT_EQ(f.workers.idle_after, Millis(60000));
  EXPECT_TRUE(f.subscribe.empty());
  EXPECT_EQ(f.retry.max_attempts, 3u);
  EXPECT_EQ(f.retry.backoff, BackoffKind::exponential);
  EXPECT_EQ(f.retry.initial, Millis(200));
  EXPECT_EQ(f.retry.max, Millis(30000));
  EXPECT_EQ(f.retry.jitter, Jitter::full);
  EXPECT_EQ(f.retry.mode, RetryMode::inline_mode);
  EXPECT_EQ(f.dead_letter.broker, "local");
  EXPECT_EQ(f.dead_letter.topic, "f.dlq");
  EXPECT_FALSE(f.output);
}

TEST(ConfigDefaults, BrokerReferencesDefaultToTheBrokerTheFunctionReads) {
  auto r = load(R"(brokers:
  first: { kind: local }
  k: { kind: kafka, bootstrap: "h:9092" }
functions:
  - name: f
    command: [x]
    subscribe: [{ topic: a }]
    output: { topic: o }
  - name: g
    command: [x]
    subscribe: [{ broker: k, topic: a }]
    dead_letter: { topic: g.failed }
    output: { topic: o }
)");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const FunctionConfig& f = *r.config->function("f");
  EXPECT_EQ(f.subscribe.at(0).broker, "first");
  EXPECT_EQ(f.subscribe.at(0).ordering, Ordering::partition);
  EXPECT_EQ(f.dead_letter.broker, "first");
  EXPECT_EQ(f.output->broker, "first");
  const FunctionConfig& g = *r.config->function("g");
  EXPECT_EQ(g.dead_letter.broker, "k");
  EXPECT_EQ(g.dead_letter.topic, "g.failed");
  EXPECT_EQ(g.output->broker, "k");
  EXPECT_EQ(g.output->topic, "o");
}

TEST(ConfigDefaults, OutputContentTypeDefaultsToOctetStream) {
  auto r = load(R"(functions:
  - { name: f, command: [x], output: { topic: o } }
  - { name: g, command: [x], output: { topic: o, content_type: "application/json; charset=utf-8" } }
)");
  ASSERT_TRUE(r.config) << testing::dump(r);
  EXPECT_EQ(r.config->function("f")->output_content_type, "application/octet-stream");
  EXPECT_EQ(r.config->function("g")->output_content_type, "application/json; charset=utf-8");
}

TEST(ConfigDefaults, BrokerAndSectionDefaults) {
  auto r = load(R"(brokers:
  k: { kind: kafka, bootstrap: "h:9092", options: { "fetch.min.bytes": 1, "idempotence": true } }
  n: { kind: nats, jetstream: { stream: S, subjects: ["a.>"] } }
  n2: { kind: nats, url: tls://x:4222 }
http:
metrics: {}
engine: { drain_timeout: 1m30s }
)");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const Config& c = *r.config;
  const KafkaBrokerConfig& k = c.broker("k")->kafka();
  EXPECT_EQ(k.group, "sluice");
  EXPECT_EQ(k.options.at("fetch.min.bytes"), "1");
  EXPECT_EQ(k.options.at("idempotence"), "true");
  const NatsBrokerConfig& n = c.broker("n")->nats();
  EXPECT_EQ(n.urls, std::vector<std::string>{"nats://127.0.0.1:4222"});
  ASSERT_TRUE(n.jetstream);
  EXPECT_FALSE(n.jetstream->create);
  EXPECT_EQ(c.broker("n2")->nats().urls, std::vector<std::string>{"tls://x:4222"});
  EXPECT_FALSE(c.broker("n2")->nats().jetstream);
  EXPECT_EQ(c.broker("local"), nullptr);
  EXPECT_TRUE(c.http.enabled);
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.http.bearer_tokens_file, "");
  EXPECT_EQ(c.http.max_body, 1u << 20);
  EXPECT_EQ(c.http.max_connections, 0u);  // derived from the fd limit at start
  EXPECT_EQ(c.http.idle_timeout, Millis(60000));
  EXPECT_TRUE(c.metrics.enabled);
  EXPECT_EQ(c.metrics.listen, "127.0.0.1:9464");
  EXPECT_EQ(c.metrics.bearer_tokens_file, "");
  EXPECT_EQ(c.engine.drain_timeout, Millis(90000));
}

// PRODUCT.md section 3, verbatim.
constexpr const char* kSample = R"(brokers:
  local: { kind: local, path: ./data/sluice.db }          # embedded default, needs no server
  kafka: { kind: kafka, bootstrap: 127.0.0.1:9092, group: sluice, options: { "fetch.min.bytes": "1" } }
  nats:  { kind: nats, url: nats://127.0.0.1:4222, jetstream: { stream: EVENTS, subjects: ["events.>"] } }
http:    { listen: 127.0.0.1:8080, auth: { bearer_tokens_file: ./tokens }, max_body: 1MiB }
metrics: { listen: 127.0.0.1:9464 }                     # serves /metrics
functions:
  - name: thumbnail
    runtime: stdio            # exec | stdio | http | inproc
    command: [python3, examples/thumbnail.py]
    env: { LOG_LEVEL: info }
    timeout: 5s
    concurrency: 8            # max events in flight for this function
    workers: { min: 0, max: 8, target_lag: 500, idle_after: 60s }   # lag-based scaling; min 0 = scale to zero
    subscribe:
      - { broker: kafka, topic: images, ordering: key }   # partition | key | none
    retry: { max_attempts: 5, backoff: exponential, initial: 200ms, max: 30s, jitter: full, mode: inline }  # mode: inline | topic
    dead_letter: { broker: kafka, topic: images.dlq }
    output: { broker: kafka, topic: thumbnails }           # optional: results are published here (pipelines)
)";

TEST(ConfigSample, ProductSampleLoadsFromAFile) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice_config_test_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sluice.yaml").string();
  std::ofstream(path) << kSample;
  auto r = load_config_file(path);
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(r.config) << testing::dump(r);
  const Config& c = *r.config;
  EXPECT_EQ(c.file, path);
  EXPECT_EQ(c.base_dir, dir.string());
  ASSERT_EQ(c.brokers.size(), 3u);
  EXPECT_EQ(c.brokers[0].local().path, (dir / "data/sluice.db").string());
  EXPECT_EQ(c.broker("kafka")->kafka().bootstrap, "127.0.0.1:9092");
  EXPECT_EQ(c.broker("kafka")->kafka().options.at("fetch.min.bytes"), "1");
  EXPECT_EQ(c.broker("nats")->nats().jetstream->subjects, std::vector<std::string>{"events.>"});
  EXPECT_EQ(c.http.bearer_tokens_file, (dir / "tokens").string());
  EXPECT_EQ(c.http.max_body, 1u << 20);
  const FunctionConfig& f = *c.function("thumbnail");
  EXPECT_EQ(f.line, 8);
  EXPECT_EQ(f.runtime, RuntimeKind::stdio);
  EXPECT_EQ(f.command, (std::vector<std::string>{"python3", "examples/thumbnail.py"}));
  EXPECT_EQ(f.env.at("LOG_LEVEL"), "info");
  EXPECT_EQ(f.timeout, Millis(5000));
  EXPECT_EQ(f.concurrency, 8u);
  EXPECT_EQ(f.workers.max, 8u);
  EXPECT_EQ(f.subscribe.at(0).ordering, Ordering::key);
  EXPECT_EQ(f.retry.max_attempts, 5u);
  EXPECT_EQ(f.dead_letter.topic, "images.dlq");
  EXPECT_EQ(f.output->topic, "thumbnails");
  EXPECT_EQ(c.function("nope"), nullptr);
}

TEST(ConfigSample, FileErrorsCarryTheFileName) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("sluice_config_err_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "sluice.yaml").string();
  std::ofstream(path) << "functions:\n  - name: f\n    command: [x]\n    timeout: five\n";
  auto r = load_config_file(path);
  auto missing = load_config_file((dir / "absent.yaml").string());
  std::filesystem::remove_all(dir);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            path + ":4: functions[0].timeout: expected a duration like 5s, got \"five\"");
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_NE(missing.errors[0].to_string().find("absent.yaml: cannot open"), std::string::npos);
}

TEST(ConfigPaths, RelativePathsResolveAgainstTheConfigDirectory) {
  auto r = load_config_string(R"(brokers:
  a: { kind: local, path: ../state/a.db }
  b: { kind: local, path: /var/lib/b.db }
http: { auth: { bearer_tokens_file: secrets/tokens } }
metrics: { auth: { bearer_tokens_file: ./scrape-tokens } }
functions:
  - { name: lib, runtime: inproc, command: [./libs/libf.so] }
  - { name: sys, runtime: inproc, command: [libsystem.so] }
)", "/srv/app/conf/");
  ASSERT_TRUE(r.config) << testing::dump(r);
  EXPECT_EQ(r.config->base_dir, "/srv/app/conf");
  EXPECT_EQ(r.config->broker("a")->local().path, "/srv/app/state/a.db");
  EXPECT_EQ(r.config->broker("b")->local().path, "/var/lib/b.db");
  EXPECT_EQ(r.config->http.bearer_tokens_file, "/srv/app/conf/secrets/tokens");
  EXPECT_EQ(r.config->metrics.bearer_tokens_file, "/srv/app/conf/scrape-tokens");
  EXPECT_EQ(r.config->function("lib")->command.at(0), "/srv/app/conf/libs/libf.so");
  EXPECT_EQ(r.config->function("sys")->command.at(0), "libsystem.so");  // found by dlopen's search
}

TEST(ConfigPaths, InprocCommandIsOneLibrary) {
  auto r = load("functions:\n  - { name: f, runtime: inproc, command: [a.so, b.so] }\n");
  EXPECT_CONFIG_ERROR(r, "functions[0].command", 2, "[path/to/lib.so]");
}

TEST(ConfigEnums, ToStringNamesMatchTheConfigSpelling) {
  EXPECT_STREQ(to_string(BrokerKind::kafka), "kafka");
  EXPECT_STREQ(to_string(RuntimeKind::inproc), "inproc");
  EXPECT_STREQ(to_string(Ordering::none), "none");
  auto r = load(R"(functions:
  - name: f
    command: [x]
    runtime: http
    retry: { mode: topic, jitter: equal, backoff: fixed }
)");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const RetryPolicy& p = r.config->functions[0].retry;
  EXPECT_EQ(r.config->functions[0].runtime, RuntimeKind::http);
  EXPECT_EQ(p.mode, RetryMode::topic);
  EXPECT_EQ(p.jitter, Jitter::equal);
  EXPECT_EQ(p.backoff, BackoffKind::fixed);
}

}  // namespace
}  // namespace sluice::config::testing
