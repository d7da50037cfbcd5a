// The store: partitioning, ordering, group commit, bad paths.
#include <fstream>
#include <map>
#include <set>
#include <thread>

#include "broker-adapters/local/murmur2.h"
#include "broker-adapters/local/tests/test_util.h"

namespace sluice::local::testing {
namespace {

TEST(Murmur2, MatchesKafkaUtilsTestVectors) {
  // org.apache.kafka.common.utils.UtilsTest#testMurmur2.
  EXPECT_EQ(murmur2("21"), -973932308);
  EXPECT_EQ(murmur2("foobar"), -790332482);
  EXPECT_EQ(murmur2("a-little-bit-long-string"), -985981536);
  EXPECT_EQ(murmur2("a-little-bit-longer-string"), -1486304829);
  EXPECT_EQ(murmur2("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
  EXPECT_EQ(murmur2("abc"), 479470107);
  // Derived from the same algorithm (seed ^ 0, no tail, final mix).
  EXPECT_EQ(murmur2(""), 275646681);
  // Positive via & 0x7fffffff, then modulo the partition count.
  EXPECT_EQ(partition_for_key("21", 4), (-973932308 & 0x7fffffff) % 4);
  EXPECT_EQ(partition_for_key("foobar", 7), (-790332482 & 0x7fffffff) % 7);
  EXPECT_EQ(partition_for_key(std::string_view("\0\xff", 2), 1), 0);
}

TEST(LocalQueue, PublishThenReadBackInOrderPerPartition) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 4));
  ASSERT_TRUE(broker) << broker.error().message;
  auto& b = *broker.value();

  // Keyed: every key on its Kafka partition; interleaved so order matters.
  const std::vector<std::string> keys = {"user-1", "user-2", "k0", "k1", "k2"};
  Acks acks;
  const size_t n = 500;
  for (size_t i = 0; i < n; ++i)
    b.sink().publish("keyed", make_event("e" + std::to_string(i), "d", keys[i % keys.size()]),
                     acks.callback(i));
  ASSERT_TRUE(acks.wait(n));
  auto results = acks.results();

  auto events = b.browser()->read("keyed", -1, 0, 10000);
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events.value().size(), n);
  std::map<int32_t, int64_t> next;
  std::map<std::string, int32_t> key_partition;
  std::map<std::string, const Event*> by_id;
  for (const Event& e : events.value()) {
    EXPECT_EQ(e.offset, next[e.partition]++) << "offsets contiguous from 0";
    EXPECT_EQ(e.partition, partition_for_key(e.key, 4));
    auto [it, fresh] = key_partition.emplace(e.key, e.partition);
    EXPECT_EQ(it->second, e.partition) << "same key, same partition";
    EXPECT_EQ(e.topic, "keyed");
    EXPECT_EQ(e.broker, "local");
    EXPECT_GT(e.broker_timestamp_ms, 0);
    by_id[e.id] = &e;
  }
  // Publish order is kept within a partition, and each ack names the stored place.
  std::map<int32_t, int64_t> last;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(results[i] && *results[i]);
    const PublishAck& a = results[i]->value();
    const Event* e = by_id.at("e" + std::to_string(i));
    EXPECT_EQ(a.topic, "keyed");
    EXPECT_EQ(a.partition, e->partition);
    EXPECT_EQ(a.offset, e->offset);
    if (last.count(a.partition)) {
      EXPECT_GT(a.offset, last[a.partition]);
    }
    last[a.partition] = a.offset;
  }

  // Keyless: round robin, so 400 events land 100 per partition.
  publish_n(b.sink(), "keyless", 400);
  std::map<int32_t, int> per_partition;
  auto all = b.browser()->read("keyless", -1, 0, 10000);
  ASSERT_TRUE(all);
  for (const Event& e : all.value()) per_partition[e.partition]++;
  EXPECT_EQ(per_partition, (std::map<int32_t, int>{{0, 100}, {1, 100}, {2, 100}, {3, 100}}));

  // A topic keeps the partition count it was created with.
  b.stop();
  broker.value().reset();
  auto again = LocalBroker::open(options(dir.file("q.db"), 8));
  ASSERT_TRUE(again);
  auto acks2 = publish_n(again.value()->sink(), "keyless", 40);
  for (const auto& a : acks2) EXPECT_LT(a.partition, 4);
}

TEST(LocalQueue, GroupCommitBatchesConcurrentPublishers) {
  TempDir dir;
  auto q = LocalQueue::open(options(dir.file("q.db"), 4));
  ASSERT_TRUE(q) << q.error().message;
  LocalQueue& queue = *q.value();

  const size_t threads = 8, per_thread = 2500, total = threads * per_thread;
  Acks acks;
  const auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> pubs;
  for (size_t t = 0; t < threads; ++t) {
    pubs.emplace_back([&, t] {
      for (size_t i = 0; i < per_thread; ++i) {
        const size_t slot = t * per_thread + i;
        queue.publish("load", make_event("e" + std::to_string(slot), std::string(100, 'x')),
                      acks.callback(slot));
      }
    });
  }
  for (auto& th : pubs) th.join();
  ASSERT_TRUE(acks.wait(total));
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  size_t ok_count = 0;
  for (auto& r : acks.results()) ok_count += (r && *r) ? 1 : 0;
  EXPECT_EQ(ok_count, total);
  EXPECT_EQ(queue.appended(), total);
  EXPECT_LT(queue.transactions() * 10, total) << "far fewer transactions than events";
  std::printf("group commit: %zu events in %llu transactions, %.0f events/s\n", total,
              static_cast<unsigned long long>(queue.transactions()), total / secs);
  ASSERT_TRUE(queue.flush(std::chrono::seconds(5)));
}

TEST(LocalQueue, OffsetsNeverReusedAfterTheNewestRowIsRemoved) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 1));
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  publish_n(b.sink(), "t.dlq", 3);
  ASSERT_TRUE(b.browser()->remove("t.dlq", 0, 2));
  auto gone = b.browser()->remove("t.dlq", 0, 2);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::not_found);
  auto acks = publish_n(b.sink(), "t.dlq", 1);
  ASSERT_EQ(acks.size(), 1u);
  EXPECT_EQ(acks[0].offset, 3);
  auto got = b.browser()->get("t.dlq", 0, 3);
  ASSERT_TRUE(got);
  EXPECT_EQ(got.value().id, "e0");
  auto missing = b.browser()->get("t.dlq", 0, 2);
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::not_found);
}

// `sluice lag`'s topics without a subscriber: the events each holds, the named ones or
// all, and a limit that is said when it cut the list.
TEST(LocalQueue, HoldingsCountEventsPerTopicAndSayWhenTheLimitCutsTheList) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 3));
  ASSERT_TRUE(broker) << broker.error().message;
  auto& b = *broker.value();
  Acks acks;
  size_t n = 0;
  for (const auto& [topic, count] : std::map<std::string, int>{{"a", 5}, {"b", 1}, {"c", 2}})
    for (int i = 0; i < count; ++i, ++n)
      b.sink().publish(topic, make_event(topic + std::to_string(i), "d", std::to_string(i)),
                       acks.callback(n));
  ASSERT_TRUE(acks.wait(n));
  TopicBrowser& br = *b.browser();
  auto named = br.holdings({"c", "a", "missing"}, std::chrono::seconds(5));
  ASSERT_TRUE(named) << named.error().message;
  ASSERT_EQ(named.value().topics.size(), 2u);
  EXPECT_EQ(named.value().topics[0].topic, "a");
  EXPECT_EQ(named.value().topics[0].events, 5);
  EXPECT_EQ(named.value().topics[1].topic, "c");
  EXPECT_EQ(named.value().topics[1].events, 2);
  EXPECT_EQ(named.value().incomplete, "");
  auto all = br.all_holdings(10, std::chrono::seconds(5));
  ASSERT_TRUE(all) << all.error().message;
  EXPECT_EQ(all.value().topics.size(), 3u);
  EXPECT_EQ(all.value().incomplete, "");
  auto cut = br.all_holdings(2, std::chrono::seconds(5));
  ASSERT_TRUE(cut) << cut.error().message;
  ASSERT_EQ(cut.value().topics.size(), 2u);
  EXPECT_EQ(cut.value().topics[1].topic, "b");
  EXPECT_NE(cut.value().incomplete.find("the first 2 topics"), std::string::npos)
      << cut.value().incomplete;
}

TEST(LocalQueue, BadPathIsAClearError) {
  TempDir dir;
  {
    std::ofstream f(dir.file("a-file"));
    f << "x";
  }
  // The parent "directory" is a regular file: it cannot be created.
  const std::string path = dir.file("a-file") + "/sub/q.db";
  auto q = LocalQueue::open(options(path));
  ASSERT_FALSE(q);
  EXPECT_EQ(q.error().code, Errc::io);
  EXPECT_NE(q.error().message.find(path), std::string::npos) << q.error().message;

  // The path is a directory.
  auto d = LocalQueue::open(options(dir.path().string()));
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().message.find(dir.path().string()), std::string::npos);

  // Not a database.
  {
    std::ofstream f(dir.file("junk.db"));
    f << std::string(8192, 'j');
  }
  auto junk = LocalQueue::open(options(dir.file("junk.db")));
  ASSERT_FALSE(junk);
  EXPECT_NE(junk.error().message.find("junk.db"), std::string::npos) << junk.error().message;

  auto zero = LocalQueue::open(options(dir.file("z.db"), 0));
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().code, Errc::invalid_argument);

  BrokerConfig cfg;
  cfg.name = "k";
  cfg.settings = KafkaBrokerConfig{};
  EXPECT_FALSE(make_local_broker(cfg));
}

TEST(LocalQueue, PublishAfterStopAnswersClosedAndFlushWorks) {
  TempDir dir;
  BrokerConfig cfg;
  cfg.name = "main";
  cfg.local().path = dir.file("data/nested/q.db");  // parent directories are created
  cfg.local().partitions = 2;
  auto broker = make_local_broker(cfg);
  ASSERT_TRUE(broker) << broker.error().message;
  Broker& b = *broker.value();
  EXPECT_EQ(b.name(), "main");
  EXPECT_EQ(b.sink().broker(), "main");
  Acks acks;
  b.sink().publish("t", make_event("a"), acks.callback(0));
  b.sink().publish("", make_event("b"), acks.callback(1));
  ASSERT_TRUE(b.sink().flush(std::chrono::seconds(10)));
  b.stop();
  b.sink().publish("t", make_event("c"), acks.callback(2));
  ASSERT_TRUE(acks.wait(3));
  auto r = acks.results();
  EXPECT_TRUE(r[0] && *r[0]);
  ASSERT_TRUE(r[1] && !*r[1]);
  EXPECT_EQ(r[1]->error().code, Errc::invalid_argument);
  ASSERT_TRUE(r[2] && !*r[2]);
  EXPECT_EQ(r[2]->error().code, Errc::closed);
  b.stop();  // idempotent
}

}  // namespace
}  // namespace sluice::local::testing
