// Lag (Source::lag and TopicBrowser::lag) and the browser's read/get/remove.
#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/tests/kafka_env.h"

namespace sluice::kafka::testing {
namespace {

const PartitionLag* find(const std::vector<PartitionLag>& ls, int32_t p) {
  for (const auto& l : ls)
    if (l.partition == p) return &l;
  return nullptr;
}

void expect_lag(const std::vector<PartitionLag>& ls, int32_t p, int64_t committed, int64_t end,
                int64_t lag) {
  const PartitionLag* l = find(ls, p);
  ASSERT_NE(l, nullptr) << "partition " << p;
  EXPECT_EQ(l->committed, committed) << "partition " << p;
  EXPECT_EQ(l->end, end) << "partition " << p;
  EXPECT_EQ(l->lag, lag) << "partition " << p;
}

TEST(KafkaLag, CommittedAgainstHighWatermark) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("lag"), group = unique("g");
  RawProducer p;
  for (int i = 0; i < 5; ++i) p.produce(topic, 0, "p0-" + std::to_string(i));
  for (int i = 0; i < 3; ++i) p.produce(topic, 1, "p1-" + std::to_string(i));
  for (int i = 0; i < 5; ++i) p.produce(topic, 2, "p2-" + std::to_string(i));
  delete_records_before(topic, 2, 3);  // p2 holds offsets 3 and 4 only

  auto before = b->browser()->lag(topic, group);
  ASSERT_TRUE(before) << before.error().message;
  ASSERT_EQ(before.value().size(), 6u);
  expect_lag(before.value(), 0, -1, 5, 5);
  expect_lag(before.value(), 1, -1, 3, 3);
  expect_lag(before.value(), 2, -1, 5, 2);  // what is really there, not 5
  expect_lag(before.value(), 3, -1, 0, 0);
  EXPECT_EQ(before.value()[0].group, group);
  EXPECT_EQ(before.value()[0].topic, topic);
  EXPECT_EQ(before.value()[0].broker, "kafka");

  Collector c;
  auto src = b->make_source(topic, group);
  ASSERT_TRUE(src);
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(10));
  src.value()->commit(0, 2);
  src.value()->commit(1, 3);
  ASSERT_TRUE(src.value()->flush_commits());

  auto after = b->browser()->lag(topic, group);
  ASSERT_TRUE(after) << after.error().message;
  expect_lag(after.value(), 0, 2, 5, 3);
  expect_lag(after.value(), 1, 3, 3, 0);
  expect_lag(after.value(), 2, -1, 5, 2);
  auto own = src.value()->lag();
  ASSERT_TRUE(own) << own.error().message;
  expect_lag(own.value(), 0, 2, 5, 3);
  expect_lag(own.value(), 2, -1, 5, 2);
}

TEST(KafkaLag, FailedQueryIsAnErrorNeverZero) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  auto missing = b->browser()->lag(unique("no-such-topic"), "g");
  ASSERT_FALSE(missing);

  BrokerConfig down = config();
  down.bootstrap = "127.0.0.1:1";  // nothing listens there
  auto d = open_broker(down);
  ASSERT_TRUE(d);
  auto l = d->browser()->lag("t", "g");
  ASSERT_FALSE(l);
  EXPECT_TRUE(l.error().retriable) << l.error().message;
}

TEST(KafkaBrowser, ReadGetRemove) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("browse");
  RawProducer p;
  for (int i = 0; i < 4; ++i) p.produce(topic, 1, "a" + std::to_string(i), "k");
  for (int i = 0; i < 2; ++i) p.produce(topic, 3, "b" + std::to_string(i));
  TopicBrowser& br = *b->browser();

  auto all = br.read(topic, -1, 0, 100);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all.value().size(), 6u);
  EXPECT_EQ(all.value()[0].data, "a0");
  EXPECT_EQ(all.value()[3].data, "a3");
  EXPECT_EQ(all.value()[4].data, "b0");
  EXPECT_EQ(all.value()[4].partition, 3);

  auto some = br.read(topic, 1, 2, 1);
  ASSERT_TRUE(some);
  ASSERT_EQ(some.value().size(), 1u);
  EXPECT_EQ(some.value()[0].offset, 2);
  EXPECT_EQ(some.value()[0].key, "k");

  auto one = br.get(topic, 3, 1);
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one.value().data, "b1");
  auto none = br.get(topic, 3, 7);
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, Errc::not_found);

  auto rm = br.remove(topic, 1, 0);
  ASSERT_FALSE(rm);
  EXPECT_EQ(rm.error().code, Errc::invalid_argument);
  EXPECT_EQ(rm.error().message, "Kafka cannot delete records");
}

}  // namespace
}  // namespace sluice::kafka::testing
