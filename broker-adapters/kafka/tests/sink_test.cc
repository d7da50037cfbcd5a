// KafkaSink and make_kafka_broker: option checking and delivery reports.
#include <atomic>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/tests/kafka_env.h"

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

}  // namespace
}  // namespace sluice::kafka::testing
