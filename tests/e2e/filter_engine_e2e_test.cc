// End-to-end: a subscription filter passes half of a mixed stream, on the local queue,
// Kafka and NATS JetStream. The function sees exactly the events that pass, each once;
// the others are counted in sluice_events_filtered_total and committed/acked without an
// invocation (lag 0); after a restart nothing comes again.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <set>

#include "broker-adapters/nats/tests/nats_server.h"
#include "harness.h"
#include "tests/kafka/test_broker.h"

namespace sluice::e2e {
namespace {

std::string g_bootstrap, g_kafka_skip;

class KafkaEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    ASSERT_EQ(broker_.start(), "");
    g_bootstrap = broker_.bootstrap();
    g_kafka_skip = broker_.skip_reason();
  }
  void TearDown() override { broker_.stop(); }

 private:
  sluice::testsupport::KafkaTestBroker broker_{
      (std::filesystem::path(__FILE__).parent_path().parent_path() / "kafka" / "kafka.sh")
          .string()};
};
[[maybe_unused]] auto* const g_env = ::testing::AddGlobalTestEnvironment(new KafkaEnvironment);

constexpr int kRounds = 8;    // rounds of kPerRound "keep" then kPerRound "skip" events
constexpr int kPerRound = 10;
constexpr int kPass = kRounds * kPerRound;

// One broker, one function `rec` subscribed to `topic` with `filter`.
struct Subscribed {
  std::string broker_yaml;  // the `brokers:` entries, indented by 2
  std::string broker = "q";
  std::string topic = "orders";
  std::string filter;       // passes type "keep", not "skip"
  std::string extra;        // more keys of the function, indented by 4
};

class FilterRun {
 public:
  explicit FilterRun(const Subscribed& s) : s_(s), port_(free_port()), mport_(free_port()) {
    dir_.write("sluice.yaml",
               "brokers:\n" + s.broker_yaml +
                   "http: { listen: 127.0.0.1:" + std::to_string(port_) + " }\n"
                   "metrics: { listen: 127.0.0.1:" + std::to_string(mport_) + " }\n"
                   "functions:\n"
                   "  - name: rec\n"
                   "    command: [sh, -c, 'echo \"$CE_TYPE $CE_ID\" >> processed.log']\n"
                   "    concurrency: 4\n"
                   "    subscribe:\n"
                   "      - broker: " + s.broker + "\n"
                   "        topic: " + s.topic + "\n"
                   "        filter: " + s.filter + "\n" + s.extra);
  }
  std::string config() const { return dir_.file("sluice.yaml"); }
  std::string log() const { return dir_.read("engine.log"); }

  void start() {
    engine_ = std::make_unique<Engine>(config(), dir_.file("engine.log"));
    ASSERT_TRUE(engine_->wait_ready(port_)) << log();
  }
  void stop() {
    engine_->signal(SIGTERM);
    EXPECT_EQ(engine_->wait_exit(), 0) << log();
    engine_.reset();
  }
  void publish(const std::string& type, int count) {
    auto r = run_cli({"publish", "-c", config(), "--broker", s_.broker, s_.topic, "x", "--type",
                      type, "--count", std::to_string(count)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  // Lines of processed.log: "TYPE ID".
  std::vector<std::string> processed() const { return lines(dir_.file("processed.log")); }
  // sluice_events_filtered_total{function="rec"}, -1 when not exposed.
  double filtered() const {
    HttpClient c(mport_);
    const std::string text = c.get("/metrics").body;
    const std::string needle = "sluice_events_filtered_total{function=\"rec\"} ";
    const size_t at = text.find(needle);
    return at == std::string::npos ? -1 : std::stod(text.substr(at + needle.size()));
  }
  // The lag of the function's subscription (sum over partitions), -1 when not listed.
  int64_t lag() const {
    auto r = run_cli({"lag", "-c", config(), "-o", "json"});
    auto rows = nlohmann::json::parse(r.out, nullptr, false);
    if (r.exit_code != 0 || !rows.is_array()) return -1;
    int64_t sum = 0;
    bool seen = false;
    for (const auto& row : rows) {
      if (row.value("topic", "") != s_.topic || row.value("group", "") == "(no subscriber)")
        continue;
      sum += row.value("lag", int64_t{0});
      seen = true;
    }
    return seen ? sum : -1;
  }

  void check_only_passing_ones_each_once(size_t want) const {
    const auto got = processed();
    ASSERT_EQ(got.size(), want) << log();
    std::set<std::string> ids;
    for (const std::string& l : got) {
      EXPECT_EQ(l.rfind("keep ", 0), 0u) << l;
      EXPECT_TRUE(ids.insert(l).second) << "twice: " << l;
    }
  }

 private:
  Subscribed s_;
  TempDir dir_;
  uint16_t port_, mport_;
  std::unique_ptr<Engine> engine_;
};

void run_mixed_stream(const Subscribed& s) {
  FilterRun run(s);
  auto v = run_cli({"validate", "-c", run.config()});
  ASSERT_EQ(v.exit_code, 0) << v.out << v.err;
  run.start();
  for (int i = 0; i < kRounds; ++i) {
    run.publish("keep", kPerRound);
    run.publish("skip", kPerRound);
  }
  ASSERT_TRUE(eventually([&] { return run.processed().size() >= size_t{kPass}; }, 60s))
      << run.processed().size() << "\n" << run.log();
  ASSERT_TRUE(eventually([&] { return run.filtered() == kPass; }, 30s))
      << run.filtered() << "\n" << run.log();
  // Filtered events are committed too: nothing is left behind on the subscription.
  ASSERT_TRUE(eventually([&] { return run.lag() == 0; }, 30s)) << run.lag() << "\n" << run.log();
  run.check_only_passing_ones_each_once(kPass);
  run.stop();

  // A restart delivers nothing again: a marker published now is the only new event,
  // and no event is filtered a second time.
  run.start();
  run.publish("keep", 1);
  ASSERT_TRUE(eventually([&] { return run.processed().size() >= size_t{kPass + 1}; }, 60s))
      << run.log();
  ASSERT_TRUE(eventually([&] { return run.lag() == 0; }, 30s)) << run.lag() << "\n" << run.log();
  EXPECT_EQ(run.filtered(), 0) << run.log();
  run.check_only_passing_ones_each_once(kPass + 1);
  run.stop();
}

TEST(FilterEngine, LocalQueueExactFilterPassesHalf) {
  Subscribed s;
  s.broker_yaml = "  q: { kind: local, path: ./data/q.db }\n";
  s.filter = "{ exact: { type: keep } }";
  run_mixed_stream(s);
}

TEST(FilterEngine, KafkaSqlFilterPassesHalf) {
  if (!g_kafka_skip.empty()) GTEST_SKIP() << g_kafka_skip;
  Subscribed s;
  const std::string group = "filters-" + std::to_string(getpid());
  s.broker = "kafka";
  s.topic = "filter-orders-" + std::to_string(getpid());
  s.broker_yaml = "  kafka: { kind: kafka, bootstrap: \"" + g_bootstrap + "\", group: " + group +
                  " }\n";
  s.filter = "{ sql: \"type = 'keep' OR type LIKE 'keep.%'\" }";
  run_mixed_stream(s);
}

TEST(FilterEngine, JetStreamAnyFilterPassesHalf) {
  nats::testing::NatsServer server;
  ASSERT_TRUE(server.start()) << "nats-server (Debian package nats-server) did not start";
  Subscribed s;
  s.broker = "nats";
  s.topic = "events.orders";
  s.broker_yaml = "  nats: { kind: nats, url: \"nats://127.0.0.1:" +
                  std::to_string(server.port()) +
                  "\", jetstream: { stream: EVENTS, subjects: [\"events.>\"], create: true } }\n";
  s.extra = "    dead_letter: { broker: nats, topic: events.dlq }\n";
  s.filter = "{ any: [{ prefix: { type: kee } }, { not: { suffix: { type: ip } } }] }";
  run_mixed_stream(s);
}

}  // namespace
}  // namespace sluice::e2e
