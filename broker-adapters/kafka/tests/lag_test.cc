// Lag (Source::lag and TopicBrowser::lag) and the browser's read/get/remove.
#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_lag.h"
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

// lag_seconds = now - timestamp of the record at the committed offset (or at the log
// start), whatever came after it; 0 when nothing waits.
void expect_seconds(const std::vector<PartitionLag>& ls, int32_t p, double behind) {
  const PartitionLag* l = find(ls, p);
  ASSERT_NE(l, nullptr) << "partition " << p;
  ASSERT_TRUE(l->lag_seconds.has_value()) << "partition " << p << " lag " << l->lag;
  // The records carry timestamps set in the past; the test itself takes seconds.
  EXPECT_GE(*l->lag_seconds, behind) << "partition " << p;
  EXPECT_LT(*l->lag_seconds, behind + 30) << "partition " << p;
}

TEST(KafkaLag, SecondsBehindFromTheOldestUnconsumedRecord) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("lagsec"), group = unique("g");
  const int64_t now = now_unix_ms();
  RawProducer p;
  for (int i = 0; i < 5; ++i) p.produce(topic, 0, "p0", {}, {}, now - (100 - 10 * i) * 1000);
  for (int i = 0; i < 3; ++i) p.produce(topic, 1, "p1", {}, {}, now - 50'000);
  for (int i = 0; i < 5; ++i) p.produce(topic, 2, "p2", {}, {}, now - (200 - 10 * i) * 1000);
  delete_records_before(topic, 2, 3);  // the oldest record left is offset 3: 170 s old

  auto before = b->browser()->lag(topic, group);
  ASSERT_TRUE(before) << before.error().message;
  expect_seconds(before.value(), 0, 100);
  expect_seconds(before.value(), 1, 50);
  expect_seconds(before.value(), 2, 170);
  expect_seconds(before.value(), 3, 0);  // empty: nothing waits
  EXPECT_LT(*find(before.value(), 3)->lag_seconds, 1.0);

  Collector c;
  auto src = b->make_source(topic, group);
  ASSERT_TRUE(src);
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(10));
  src.value()->commit(0, 2);  // offsets 0 and 1 done: record 2 (80 s) is the oldest
  src.value()->commit(1, 3);  // all done
  ASSERT_TRUE(src.value()->flush_commits());

  auto own = src.value()->lag();
  ASSERT_TRUE(own) << own.error().message;
  expect_seconds(own.value(), 0, 80);
  expect_seconds(own.value(), 1, 0);
  EXPECT_EQ(*find(own.value(), 1)->lag_seconds, 0.0);
  expect_seconds(own.value(), 2, 170);
  // Again through the same reader (it is kept between calls).
  auto again = src.value()->lag();
  ASSERT_TRUE(again) << again.error().message;
  expect_seconds(again.value(), 0, 80);
  auto browsed = b->browser()->lag(topic, group);
  ASSERT_TRUE(browsed) << browsed.error().message;
  expect_seconds(browsed.value(), 0, 80);
  EXPECT_EQ(*find(browsed.value(), 1)->lag_seconds, 0.0);
}

// Found by bench/kafka: with a small max.partition.fetch.bytes the peek got only the
// first partition's record batch (batches of a busy producer are ~1 MB) and left the
// others unknown.
TEST(KafkaLag, SecondsBehindWithLargeRecordBatchesOnEveryPartition) {
  SLUICE_NEED_KAFKA();
  const std::string topic = unique("lagsec-big");
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  char err[512];
  for (auto [k, v] : {std::pair{"bootstrap.servers", bootstrap().c_str()},
                      std::pair{"linger.ms", "200"}, std::pair{"batch.size", "1000000"}})
    ASSERT_EQ(rd_kafka_conf_set(conf, k, v, err, sizeof err), RD_KAFKA_CONF_OK) << err;
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  ASSERT_NE(rk, nullptr) << err;
  const std::string value(100, 'v');
  for (int i = 0; i < 6 * 20000; ++i) {
    while (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic.c_str()), RD_KAFKA_V_PARTITION(i % 6),
                             RD_KAFKA_V_VALUE(const_cast<char*>(value.data()), value.size()),
                             RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                             RD_KAFKA_V_END) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
      rd_kafka_poll(rk, 10);
  }
  ASSERT_EQ(rd_kafka_flush(rk, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
  rd_kafka_destroy(rk);

  auto b = open_broker(config());
  ASSERT_TRUE(b);
  auto lags = b->browser()->lag(topic, unique("g"));
  ASSERT_TRUE(lags) << lags.error().message;
  ASSERT_EQ(lags.value().size(), 6u);
  for (int32_t p = 0; p < 6; ++p) {
    expect_lag(lags.value(), p, -1, 20000, 20000);
    expect_seconds(lags.value(), p, 0);
  }
}

TEST(KafkaLag, SecondsBehindThatCannotBeReadStayUnknown) {
  SLUICE_NEED_KAFKA();
  const std::string topic = unique("lagsec-unknown");
  RawProducer p;
  p.produce(topic, 0, "x");
  auto r = make_reader(config(), unique("g"), peek_settings);
  ASSERT_TRUE(r) << r.error().message;
  std::vector<PartitionLag> lags(3);
  for (auto& l : lags) l.topic = topic;
  lags[0].partition = 0, lags[0].end = 1, lags[0].lag = 1;     // readable
  lags[1].partition = 99, lags[1].end = 5, lags[1].lag = 5;    // no such partition
  lags[2].partition = 1, lags[2].end = 0, lags[2].lag = 0;     // nothing waits
  lags[1].lag_seconds = 7.0;  // a stale value is not kept
  peek_lag_seconds(r.value().rk.get(), lags, now_unix_ms(), std::chrono::milliseconds(1500));
  EXPECT_TRUE(lags[0].lag_seconds.has_value());
  EXPECT_FALSE(lags[1].lag_seconds.has_value()) << *lags[1].lag_seconds;
  ASSERT_TRUE(lags[2].lag_seconds.has_value());
  EXPECT_EQ(*lags[2].lag_seconds, 0.0);
}

TEST(KafkaLag, FailedQueryIsAnErrorNeverZero) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  auto missing = b->browser()->lag(unique("no-such-topic"), "g");
  ASSERT_FALSE(missing);

  BrokerConfig down = config();
  down.kafka().bootstrap = "127.0.0.1:1";  // nothing listens there
  KafkaBrowser d(down);  // make_kafka_broker itself refuses a cluster that does not answer
  auto l = d.lag("t", "g");
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
