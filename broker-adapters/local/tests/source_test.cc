// The source: delivery, pause/resume, corrupt bodies, commits, lag, retention.
#include <algorithm>
#include <set>

#include "broker-adapters/local/local_source.h"
#include "broker-adapters/local/murmur2.h"
#include "broker-adapters/local/sqlite_db.h"
#include "broker-adapters/local/tests/test_util.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice::local::testing {
namespace {

size_t count_partition(const std::vector<Event>& ev, int32_t p) {
  return static_cast<size_t>(
      std::count_if(ev.begin(), ev.end(), [p](const Event& e) { return e.partition == p; }));
}

TEST(LocalSource, DeliversInOrderAndWakesOnAppend) {
  TempDir dir;
  auto opt = options(dir.file("q.db"), 2);
  opt.poll_interval = std::chrono::hours(1);  // only the in-process wake-up can deliver
  auto broker = LocalBroker::open(opt);
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  publish_n(b.sink(), "t", 10, "before");
  auto src = b.make_source("t", "g");
  ASSERT_TRUE(src) << src.error().message;
  EXPECT_EQ(src.value()->group(), "g");
  EXPECT_EQ(src.value()->broker(), "local");
  EXPECT_TRUE(src.value()->traits().commits_offsets);
  EXPECT_FALSE(src.value()->traits().per_message_ack);
  Collector c;
  ASSERT_TRUE(src.value()->start(c));
  EXPECT_FALSE(src.value()->start(c));  // once
  ASSERT_TRUE(c.wait_count(10));
  publish_n(b.sink(), "t", 10, "after");
  ASSERT_TRUE(c.wait_count(20));
  auto ev = c.events();
  std::map<int32_t, int64_t> next;
  for (const Event& e : ev) EXPECT_EQ(e.offset, next[e.partition]++);
  src.value()->stop();
  src.value()->stop();
}

TEST(LocalSource, CorruptBodyIsDeliveredRawWithHeader) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 1));
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  publish_n(b.sink(), "t", 1);
  {
    // Another writer stores bytes that are not a sluice.v1.Event (a varint too long).
    auto db = Db::open(dir.file("q.db"), {});
    ASSERT_TRUE(db) << db.error().message;
    ASSERT_TRUE(db.value()->exec(
        "INSERT INTO messages(topic, \"partition\", \"offset\", ts_ms, key, body) "
        "VALUES('t', 0, 1, 1000, x'6b', "
        "x'08ffffffffffffffffffffff01')"));
  }
  auto src = b.make_source("t", "g");
  ASSERT_TRUE(src);
  Collector c;
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(2));
  auto ev = c.events();
  EXPECT_EQ(ev[0].id, "e0");
  EXPECT_EQ(ev[0].header("sluice-decode-error"), nullptr);
  const Event& raw = ev[1];
  EXPECT_EQ(raw.id, "t/0/1");
  EXPECT_EQ(raw.offset, 1);
  EXPECT_EQ(raw.key, "k");
  EXPECT_EQ(raw.data, std::string("\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 13));
  ASSERT_NE(raw.header("sluice-decode-error"), nullptr);
  EXPECT_FALSE(raw.header("sluice-decode-error")->empty());
  // Counted in the broker's probe and exported.
  metrics::Metrics metrics;
  metrics.add_probe("local", b.probe());
  EXPECT_EQ(testsupport::sample(metrics.text(),
                                R"(sluice_broker_errors_total{broker="local",kind="decode"})"),
            1.0)
      << metrics.text();
  // The writer continues after the foreign row, and the browser shows it raw too.
  auto acks = publish_n(b.sink(), "t", 1, "next");
  EXPECT_EQ(acks.at(0).offset, 2);
  ASSERT_TRUE(c.wait_count(3));
  auto got = b.browser()->get("t", 0, 1);
  ASSERT_TRUE(got);
  EXPECT_NE(got.value().header("sluice-decode-error"), nullptr);
}

TEST(LocalSource, PauseStopsAPartitionAndResumeRestartsIt) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 2));
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  auto src = b.make_source("t", "g");
  ASSERT_TRUE(src);
  Source& s = *src.value();
  s.pause(0);
  Collector c;
  ASSERT_TRUE(s.start(c));
  publish_n(b.sink(), "t", 10);  // round robin: 5 on each partition
  ASSERT_TRUE(c.wait([](auto& ev) { return count_partition(ev, 1) >= 5; }));
  // Later events on partition 1 arrive in a read round that also reads every
  // unpaused partition; had partition 0 not been paused, its older events would be in.
  const std::string key1 = [] {
    for (int i = 0;; ++i)
      if (partition_for_key("k" + std::to_string(i), 2) == 1) return "k" + std::to_string(i);
  }();
  publish_n(b.sink(), "t", 3, "late", key1);
  ASSERT_TRUE(c.wait([](auto& ev) { return count_partition(ev, 1) >= 8; }));
  EXPECT_EQ(count_partition(c.events(), 0), 0u);
  s.resume(0);
  ASSERT_TRUE(c.wait([](auto& ev) { return count_partition(ev, 0) >= 5; }));
  auto ev = c.events();
  EXPECT_EQ(ev.size(), 13u);
}

TEST(LocalSource, CommitFlushAndLag) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 1));
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  publish_n(b.sink(), "t", 10);
  auto src = b.make_source("t", "g");
  ASSERT_TRUE(src);
  Source& s = *src.value();
  Collector c;
  ASSERT_TRUE(s.start(c));
  ASSERT_TRUE(c.wait_count(10));

  s.commit(0, 4);
  s.commit(0, 2);  // lower: ignored
  ASSERT_TRUE(s.flush_commits());
  auto lag = s.lag();
  ASSERT_TRUE(lag) << lag.error().message;
  ASSERT_EQ(lag.value().size(), 1u);
  const PartitionLag& l = lag.value()[0];
  EXPECT_EQ(l.broker, "local");
  EXPECT_EQ(l.topic, "t");
  EXPECT_EQ(l.group, "g");
  EXPECT_EQ(l.committed, 4);
  EXPECT_EQ(l.end, 10);
  EXPECT_EQ(l.lag, 6);
  ASSERT_TRUE(l.lag_seconds.has_value());
  EXPECT_GE(*l.lag_seconds, 0.0);
  auto blag = b.browser()->lag("t", "g");  // from disk, same numbers
  ASSERT_TRUE(blag);
  EXPECT_EQ(blag.value()[0].committed, 4);
  EXPECT_EQ(blag.value()[0].lag, 6);

  auto other = b.browser()->lag("t", "nobody");
  ASSERT_TRUE(other);
  EXPECT_EQ(other.value()[0].committed, -1);
  EXPECT_EQ(other.value()[0].lag, 10);

  s.commit(0, 7);
  auto mem = s.lag();  // in-memory commits count before they are written
  ASSERT_TRUE(mem);
  EXPECT_EQ(mem.value()[0].committed, 7);
  EXPECT_EQ(mem.value()[0].lag, 3);

  // Commits keep working after stop() (broker.h): flush_commits writes them.
  s.stop();
  EXPECT_EQ(b.browser()->lag("t", "g").value()[0].committed, 7);  // stop() flushed
  s.commit(0, 10);
  ASSERT_TRUE(s.flush_commits());
  auto done = b.browser()->lag("t", "g");
  ASSERT_TRUE(done);
  EXPECT_EQ(done.value()[0].committed, 10);
  EXPECT_EQ(done.value()[0].lag, 0);
  EXPECT_EQ(done.value()[0].lag_seconds, 0.0);
  auto none = b.browser()->lag("no-such-topic", "g");
  ASSERT_TRUE(none);
  EXPECT_TRUE(none.value().empty());
}

TEST(LocalSource, RetentionTrimsBelowTheLowestCommitOnly) {
  TempDir dir;
  auto broker = LocalBroker::open(options(dir.file("q.db"), 1));
  ASSERT_TRUE(broker);
  auto& b = *broker.value();
  LocalQueue& q = b.queue();
  publish_n(b.sink(), "t", 10);
  publish_n(b.sink(), "t.dlq", 10);  // no group consumes it

  auto g1 = b.make_source("t", "g1");
  auto g2 = b.make_source("t", "g2");
  ASSERT_TRUE(g1 && g2);
  Collector c1, c2;
  ASSERT_TRUE(g1.value()->start(c1));
  ASSERT_TRUE(g2.value()->start(c2));  // registered, nothing committed: holds everything
  g1.value()->commit(0, 6);
  ASSERT_TRUE(g1.value()->flush_commits());
  auto deleted = q.trim_now();
  ASSERT_TRUE(deleted) << deleted.error().message;
  EXPECT_EQ(deleted.value(), 0);

  g2.value()->commit(0, 3);
  ASSERT_TRUE(g2.value()->flush_commits());
  EXPECT_EQ(q.trim_now().value(), 3);  // below min(6, 3)
  g2.value()->commit(0, 8);
  ASSERT_TRUE(g2.value()->flush_commits());
  EXPECT_EQ(q.trim_now().value(), 3);  // now below min(6, 8)

  auto t = b.browser()->read("t", 0, 0, 100);
  ASSERT_TRUE(t);
  ASSERT_EQ(t.value().size(), 4u);
  EXPECT_EQ(t.value().front().offset, 6);
  auto dlq = b.browser()->read("t.dlq", -1, 0, 100);
  ASSERT_TRUE(dlq);
  EXPECT_EQ(dlq.value().size(), 10u);

  // Lag counts from the first stored offset for a group without commits.
  auto fresh = b.browser()->lag("t", "g3");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh.value()[0].lag, 4);
  // Offsets continue after trimming.
  EXPECT_EQ(publish_n(b.sink(), "t", 1).at(0).offset, 10);
  g1.value()->stop();
  g2.value()->stop();
}

}  // namespace
}  // namespace sluice::local::testing
