// Faults a real broker cannot give on demand, on librdkafka's mock cluster
// (rdkafka_mock.h): failing offset commits, a cluster that goes down and comes back
// while records flow, failing produce requests. What must hold: no event is lost,
// commits resume by themselves, every publish callback says what happened.
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include <atomic>
#include <map>
#include <set>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_source.h"
#include "broker-adapters/kafka/tests/kafka_env.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice::kafka::testing {
namespace {

// Kafka protocol request types (ApiKey) the tests inject errors into.
constexpr int16_t kProduce = 0;
constexpr int16_t kOffsetCommit = 8;

// An in-process mock cluster with listeners on loopback; destroyed with the object.
class MockCluster {
 public:
  explicit MockCluster(int brokers = 1) {
    char err[256];
    rd_kafka_conf_t* conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof err);
    // The cluster needs a client instance for its book-keeping only.
    host_ = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    mc_ = rd_kafka_mock_cluster_new(host_, brokers);
  }
  ~MockCluster() {
    rd_kafka_mock_cluster_destroy(mc_);
    rd_kafka_destroy(host_);
  }
  rd_kafka_mock_cluster_t* get() { return mc_; }
  void create_topic(const std::string& topic, int partitions) {
    ASSERT_EQ(rd_kafka_mock_topic_create(mc_, topic.c_str(), partitions, 1),
              RD_KAFKA_RESP_ERR_NO_ERROR);
  }
  BrokerConfig config(std::map<std::string, std::string> options = {}) {
    BrokerConfig c;
    c.name = "kafka";
    c.settings = KafkaBrokerConfig{};
    c.kafka().bootstrap = rd_kafka_mock_cluster_bootstraps(mc_);
    c.kafka().group = unique("mock-group");
    // The mock's group coordinator lets a new member in only after the session
    // timeout of the previous generation (librdkafka's default: 45 s).
    options.emplace("session.timeout.ms", "6000");
    options.emplace("heartbeat.interval.ms", "500");
    options.emplace("reconnect.backoff.max.ms", "500");  // back soon after an outage
    c.kafka().options = std::move(options);
    return c;
  }

 private:
  rd_kafka_t* host_ = nullptr;
  rd_kafka_mock_cluster_t* mc_ = nullptr;
};

std::unique_ptr<KafkaSource> open_source(
    const BrokerConfig& cfg, const std::string& topic, Collector& c,
    std::shared_ptr<KafkaProbe> probe = std::make_shared<KafkaProbe>(kKafkaErrors)) {
  auto s = KafkaSource::open(cfg, topic, cfg.kafka().group, std::move(probe));
  if (!s) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  auto started = s.value()->start(c);
  EXPECT_TRUE(started) << (started ? "" : started.error().message);
  return std::move(s).value();
}

// Publishes `n` events "<prefix><i>" keyed k<i % 7>; true when every one succeeded.
bool publish_n(Sink& sink, const std::string& topic, const std::string& prefix, int n) {
  for (int i = 0; i < n; ++i) {
    auto r = publish_sync(sink, topic, event(prefix + std::to_string(i), "k" + std::to_string(i % 7)));
    if (!r) {
      ADD_FAILURE() << r.error().message;
      return false;
    }
  }
  return true;
}

// Next offset after the last record delivered, per partition.
std::map<int32_t, int64_t> ends(const std::vector<DeliveryTag>& tags) {
  std::map<int32_t, int64_t> out;
  for (const auto& t : tags) out[t.partition] = std::max(out[t.partition], t.offset + 1);
  return out;
}

// The group's committed offset equals `want` on every partition of `want`.
bool committed_is(Source& s, const std::map<int32_t, int64_t>& want) {
  auto lag = s.lag();
  if (!lag) return false;
  for (const auto& l : lag.value()) {
    auto it = want.find(l.partition);
    if (it != want.end() && l.committed != it->second) return false;
  }
  return true;
}

std::multiset<std::string> datas(const std::vector<Event>& es) {
  std::multiset<std::string> out;
  for (const auto& e : es) out.insert(e.data);
  return out;
}

TEST(KafkaMock, CommitErrorsAreRiddenOutAndNothingIsLost) {
  MockCluster mc;
  const std::string topic = "commits";
  mc.create_topic(topic, 3);
  const BrokerConfig cfg = mc.config();
  auto b = open_broker(cfg);
  ASSERT_TRUE(b);
  ASSERT_TRUE(publish_n(b->sink(), topic, "e", 30));

  Collector c1;
  auto s1 = open_source(cfg, topic, c1);
  ASSERT_TRUE(s1);
  ASSERT_TRUE(c1.wait_count(30));
  // The next offset commits fail: coordinator moved, loading, unavailable, slow.
  rd_kafka_mock_push_request_errors(mc.get(), kOffsetCommit, 5,
                                    RD_KAFKA_RESP_ERR_NOT_COORDINATOR,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS,
                                    RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  // The first two records of each partition are finished, the rest are not.
  std::map<int32_t, int64_t> done;
  for (const auto& [p, end] : ends(c1.tags())) done[p] = 2;
  ASSERT_EQ(done.size(), 3u);
  for (const auto& [p, next] : done) s1->commit(p, next);
  // librdkafka's auto-commit sends the stored offsets again until one commit holds.
  // Under load the errors above can keep the coordinator unknown for longer than the
  // session timeout (6 s): then the assignment is lost, its stored offsets with it,
  // and the partitions come back from the last commit (at-least-once). The finished
  // prefix is stored again on each look, as the dispatcher would after finishing the
  // redelivered records.
  ASSERT_TRUE(eventually([&] {
    if (committed_is(*s1, done)) return true;
    for (const auto& [p, next] : done) s1->commit(p, next);
    return false;
  }));
  ASSERT_TRUE(s1->flush_commits());
  s1.reset();

  // A new member of the group gets exactly what was not finished.
  Collector c2;
  auto s2 = open_source(cfg, topic, c2);
  ASSERT_TRUE(s2);
  ASSERT_TRUE(c2.wait_count(30 - 6)) << c2.events().size();
  for (const auto& t : c2.tags()) EXPECT_GE(t.offset, 2) << "partition " << t.partition;
  std::multiset<std::string> all = datas(c2.events());
  for (const auto& e : c1.events()) all.insert(e.data);
  EXPECT_EQ(c2.events().size(), 24u);
  for (int i = 0; i < 30; ++i) EXPECT_GE(all.count("e" + std::to_string(i)), 1u) << i;
}

TEST(KafkaMock, ClusterDownMidStreamThenBackLosesNothingAndCommitsResume) {
  MockCluster mc(3);
  const std::string topic = "outage";
  mc.create_topic(topic, 3);
  const BrokerConfig cfg = mc.config();
  auto b = open_broker(cfg);
  ASSERT_TRUE(b);
  ASSERT_TRUE(publish_n(b->sink(), topic, "a", 20));
  Collector c;
  auto probe = std::make_shared<KafkaProbe>(kKafkaErrors);
  metrics::Metrics metrics;
  metrics.add_probe("kafka", probe);
  auto s = open_source(cfg, topic, c, probe);
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.wait_count(20));
  const auto first = ends(c.tags());
  for (const auto& [p, next] : first) s->commit(p, next);
  ASSERT_TRUE(eventually([&] { return committed_is(*s, first); }));

  // Every broker goes away; publishes made meanwhile wait in the producer.
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mc.get(), -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  std::atomic<int> acked{0}, failed{0};
  for (int i = 0; i < 20; ++i)
    b->sink().publish(topic, event("b" + std::to_string(i), "k" + std::to_string(i % 7)),
                      [&](Result<PublishAck> r) { ++(r ? acked : failed); });
  // The source sees the outage (reported, not fatal, counted in the metric) ...
  ASSERT_TRUE(eventually([&] {
    return testsupport::sample(metrics.text(),
                               R"(sluice_broker_errors_total{broker="kafka",kind="consume"})")
               .value_or(0) > 0;
  }));
  EXPECT_GT(s->probe().get(KafkaError::consume), 0u);
  EXPECT_EQ(acked.load() + failed.load(), 0);

  // ... and rides it out.
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mc.get(), -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  ASSERT_TRUE(eventually([&] { return acked.load() == 20; })) << failed.load() << " failed";
  EXPECT_EQ(failed.load(), 0);
  ASSERT_TRUE(c.wait_count(40));
  std::multiset<std::string> got = datas(c.events());
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(got.count("a" + std::to_string(i)), 1u) << "a" << i;
    EXPECT_EQ(got.count("b" + std::to_string(i)), 1u) << "b" << i;
  }
  const auto second = ends(c.tags());
  for (const auto& [p, next] : second) s->commit(p, next);
  ASSERT_TRUE(eventually([&] { return committed_is(*s, second); }));
  EXPECT_TRUE(s->flush_commits());
}

TEST(KafkaMock, RetriableProduceErrorsAreRetriedWithoutDuplicates) {
  MockCluster mc;
  const std::string topic = "produce-retry";
  mc.create_topic(topic, 3);
  const BrokerConfig cfg = mc.config();
  auto b = open_broker(cfg);
  ASSERT_TRUE(b);
  rd_kafka_mock_push_request_errors(mc.get(), kProduce, 4,
                                    RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
                                    RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
                                    RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
                                    RD_KAFKA_RESP_ERR__TRANSPORT);
  std::atomic<int> acked{0}, failed{0};
  for (int i = 0; i < 50; ++i)
    b->sink().publish(topic, event("r" + std::to_string(i), "k" + std::to_string(i % 7)),
                      [&](Result<PublishAck> r) { ++(r ? acked : failed); });
  ASSERT_TRUE(b->sink().flush(std::chrono::seconds(30)));
  EXPECT_EQ(acked.load(), 50);
  EXPECT_EQ(failed.load(), 0);

  // Each record is in the topic once, and in publish order per key.
  Collector c;
  auto s = open_source(cfg, topic, c);
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.wait_count(50));
  EXPECT_EQ(c.events().size(), 50u);
  std::map<std::string, int> last;
  for (const auto& e : c.events()) {
    const int n = std::stoi(e.data.substr(1));
    auto [it, fresh] = last.emplace(e.key, n);
    if (!fresh) EXPECT_GT(n, it->second) << e.key;
    it->second = n;
  }
  std::multiset<std::string> got = datas(c.events());
  for (int i = 0; i < 50; ++i) EXPECT_EQ(got.count("r" + std::to_string(i)), 1u) << i;
}

TEST(KafkaMock, ProduceFailuresReachThePublishCallback) {
  MockCluster mc;
  const std::string topic = "produce-fail";
  mc.create_topic(topic, 1);
  auto b = open_broker(mc.config({{"message.timeout.ms", "1500"}}));
  ASSERT_TRUE(b);
  ASSERT_TRUE(publish_sync(b->sink(), topic, event("warm-up")));

  // A permanent error: reported once, not retriable, and the sink goes on working.
  rd_kafka_mock_push_request_errors(mc.get(), kProduce, 1,
                                    RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
  auto denied = publish_sync(b->sink(), topic, event("denied"));
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, Errc::unavailable) << denied.error().message;
  EXPECT_FALSE(denied.error().retriable) << denied.error().message;
  EXPECT_NE(denied.error().message.find(topic), std::string::npos) << denied.error().message;
  // librdkafka keeps the topic's error until its next metadata refresh (about 1 s);
  // then publishing works again, with nothing done by the adapter.
  EXPECT_TRUE(eventually([&] { return bool(publish_sync(b->sink(), topic, event("after"))); }));

  // No broker for longer than message.timeout.ms: a retriable timeout.
  ASSERT_EQ(rd_kafka_mock_broker_set_down(mc.get(), -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  auto lost = publish_sync(b->sink(), topic, event("timed-out"));
  ASSERT_FALSE(lost);
  EXPECT_EQ(lost.error().code, Errc::timeout) << lost.error().message;
  EXPECT_TRUE(lost.error().retriable);
  ASSERT_EQ(rd_kafka_mock_broker_set_up(mc.get(), -1), RD_KAFKA_RESP_ERR_NO_ERROR);
  // Once it is back (and reconnected: librdkafka's backoff), publishing works again.
  EXPECT_TRUE(eventually([&] { return bool(publish_sync(b->sink(), topic, event("back"))); }));
}

}  // namespace
}  // namespace sluice::kafka::testing
