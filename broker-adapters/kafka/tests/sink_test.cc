// KafkaSink and make_kafka_broker: option checking and delivery reports.
#include <atomic>
#include <filesystem>
#include <sstream>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_client.h"
#include "broker-adapters/kafka/tests/kafka_env.h"
#include "broker-adapters/local/murmur2.h"
#include "tests/kafka/test_broker.h"

namespace sluice::kafka::testing {
namespace {

TEST(KafkaBrokerOpen, UnknownOptionIsAClearError) {
  // No broker needed: options are checked before anything connects.
  BrokerConfig c;
  c.name = "kafka";
  c.settings = KafkaBrokerConfig{};
  c.kafka().bootstrap = "127.0.0.1:9";
  c.kafka().options = {{"no.such.option", "1"}};
  auto b = make_kafka_broker(c);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::invalid_argument);
  EXPECT_NE(b.error().message.find("broker 'kafka': option 'no.such.option'"), std::string::npos)
      << b.error().message;
}

TEST(KafkaBrokerOpen, InvalidValueAndManagedKeysAreRefused) {
  BrokerConfig c;
  c.name = "k";
  c.settings = KafkaBrokerConfig{};
  c.kafka().bootstrap = "127.0.0.1:9";
  c.kafka().options = {{"linger.ms", "soon"}};
  auto b = make_kafka_broker(c);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("'linger.ms'"), std::string::npos) << b.error().message;

  c.kafka().options = {{"enable.auto.offset.store", "true"}};
  b = make_kafka_broker(c);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("managed by sluice"), std::string::npos) << b.error().message;

  c.kafka().options = {{"auto.offset.reset", "sideways"}};  // a consumer (topic-level) property
  b = make_kafka_broker(c);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("auto.offset.reset"), std::string::npos) << b.error().message;

  c.kafka().options = {};
  c.kafka().bootstrap.clear();
  EXPECT_FALSE(make_kafka_broker(c));
}

TEST(KafkaBrokerOpen, ClusterThatDoesNotAnswerIsAClearError) {
  BrokerConfig c;
  c.name = "kafka";
  c.settings = KafkaBrokerConfig{};
  c.kafka().bootstrap = "127.0.0.1:1";  // nothing listens there
  const auto start = std::chrono::steady_clock::now();
  auto b = make_kafka_broker(c);
  ASSERT_FALSE(b);
  EXPECT_LT(std::chrono::steady_clock::now() - start, kConnectTimeout + std::chrono::seconds(5));
  EXPECT_EQ(b.error().code, Errc::invalid_argument);  // a config problem: exit code 2
  EXPECT_NE(b.error().message.find("broker 'kafka': no Kafka broker answered at 127.0.0.1:1"),
            std::string::npos)
      << b.error().message;
  EXPECT_NE(b.error().message.find("Connection refused"), std::string::npos)
      << b.error().message;  // librdkafka's reason
}

TEST(KafkaSink, DeliveryReportGivesPartitionAndOffset) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config({{"acks", "all"}}));
  ASSERT_TRUE(b);
  const std::string topic = unique("sink");
  int32_t partition = -1;
  int64_t last = -1;
  for (int i = 0; i < 3; ++i) {
    auto ack = publish_sync(b->sink(), topic, event("v" + std::to_string(i), "same-key"));
    ASSERT_TRUE(ack) << ack.error().message;
    EXPECT_EQ(ack.value().topic, topic);
    ASSERT_GE(ack.value().partition, 0);
    if (partition >= 0) EXPECT_EQ(ack.value().partition, partition);  // one key, one partition
    partition = ack.value().partition;
    EXPECT_GT(ack.value().offset, last);
    last = ack.value().offset;
  }
  EXPECT_EQ(last, 2);
  EXPECT_TRUE(b->sink().flush(std::chrono::seconds(5)));

  // Stopped: publishes are answered at once with Errc::closed.
  b->stop();
  auto late = publish_sync(b->sink(), topic, event("late"));
  ASSERT_FALSE(late);
  EXPECT_EQ(late.error().code, Errc::closed);
}

TEST(KafkaSink, ManyPublishesAllAnsweredAndFlushed) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("sink-many");
  std::atomic<int> acked{0}, failed{0};
  for (int i = 0; i < 1000; ++i)
    b->sink().publish(topic, event(std::to_string(i), "k" + std::to_string(i % 50)),
                         [&](Result<PublishAck> r) { (r ? acked : failed)++; });
  ASSERT_TRUE(b->sink().flush(std::chrono::seconds(30)));
  EXPECT_EQ(acked.load(), 1000);
  EXPECT_EQ(failed.load(), 0);
}

// The partition the Java producer picks for each key (tests/kafka/KeyPartition.java on
// the Kafka client jars); empty (and a test failure) when it could not be asked.
std::map<std::string, int32_t> java_partitions(int32_t partitions,
                                               const std::vector<std::string>& keys) {
  using sluice::testsupport::KafkaTestBroker;
  const std::filesystem::path dir = std::filesystem::path(SLUICE_KAFKA_SH).parent_path();
  int st = 0;
  std::string cp = KafkaTestBroker::run(std::string(SLUICE_KAFKA_SH) + " classpath", &st);
  EXPECT_EQ(st, 0) << "kafka.sh classpath failed";
  while (!cp.empty() && (cp.back() == '\n' || cp.back() == '\r')) cp.pop_back();
  std::string cmd = "java -cp '" + cp + "' " + (dir / "KeyPartition.java").string() + " " +
                    std::to_string(partitions);
  for (const auto& k : keys) cmd += " " + k;  // plain [a-z0-9-] keys: no quoting needed
  std::istringstream out(KafkaTestBroker::run(cmd + " 2>&1", &st));
  EXPECT_EQ(st, 0) << out.str();
  std::map<std::string, int32_t> got;
  std::string key;
  int32_t p = 0;
  while (out >> key >> p) got[key] = p;
  EXPECT_EQ(got.size(), keys.size()) << out.str();
  return got;
}

// The partition count of `topic` (which exists); -1 and a test failure otherwise.
int32_t partitions_of(const BrokerConfig& cfg, const std::string& topic) {
  auto client = make_client(cfg, Role::producer, {}, {});
  EXPECT_TRUE(client) << client.error().message;
  if (!client) return -1;
  auto n = partition_count(client.value().get(), topic, std::chrono::seconds(10));
  EXPECT_TRUE(n) << n.error().message;
  return n ? n.value() : -1;
}

// A key lands on the partition the Java client and the local queue choose for it
// (murmur2), not on librdkafka's default CRC32 one.
TEST(KafkaSink, KeyLandsWhereJavaClientAndLocalQueuePutIt) {
  SLUICE_NEED_KAFKA();
  if (!sluice::testsupport::KafkaTestBroker::have("java")) GTEST_SKIP() << "java is not installed";
  const BrokerConfig cfg = config();
  auto b = open_broker(cfg);
  ASSERT_TRUE(b);
  const std::string topic = unique("partitioner");
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) keys.push_back("order-" + std::to_string(i * 7919));
  std::map<std::string, int32_t> sluice_parts;
  for (const auto& k : keys) {
    auto ack = publish_sync(b->sink(), topic, event("v", k));
    ASSERT_TRUE(ack) << ack.error().message;
    sluice_parts[k] = ack.value().partition;
  }
  const int32_t partitions = partitions_of(cfg, topic);
  ASSERT_GT(partitions, 1);  // one partition would prove nothing

  const auto java = java_partitions(partitions, keys);
  ASSERT_EQ(java.size(), keys.size());
  for (const auto& k : keys) {
    EXPECT_EQ(sluice_parts[k], java.at(k)) << "key " << k;
    EXPECT_EQ(local::partition_for_key(k, partitions), java.at(k)) << "key " << k;
  }
}

TEST(KafkaSink, UserPartitionerOptionWins) {
  SLUICE_NEED_KAFKA();
  // consistent: CRC32 of the key, mod the partition count; "random" ignores keys,
  // so "consistent" is the one whose choice the test can predict.
  const BrokerConfig cfg = config({{"partitioner", "consistent"}});
  auto b = open_broker(cfg);
  ASSERT_TRUE(b);
  const std::string topic = unique("partitioner-user");
  std::vector<std::string> keys;
  for (int i = 0; i < 24; ++i) keys.push_back("order-" + std::to_string(i * 7919));
  int differ = 0;
  int32_t n = 0;
  for (const auto& k : keys) {
    auto ack = publish_sync(b->sink(), topic, event("v", k));
    ASSERT_TRUE(ack) << ack.error().message;
    if (n == 0) n = partitions_of(cfg, topic);
    ASSERT_GT(n, 1);
    if (ack.value().partition != local::partition_for_key(k, n)) ++differ;
  }
  EXPECT_GT(differ, 0) << "the user's partitioner was not used";
}

}  // namespace
}  // namespace sluice::kafka::testing
