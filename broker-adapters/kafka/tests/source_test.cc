// KafkaSource: consume, commit, redelivery of what was not committed, pause/resume,
// revoke on rebalance.
#include <set>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_source.h"
#include "broker-adapters/kafka/tests/kafka_env.h"

namespace sluice::kafka::testing {
namespace {

std::unique_ptr<Source> start_source(Broker& b, const std::string& topic,
                                     const std::string& group, Collector& c) {
  auto s = b.make_source(topic, group);
  if (!s) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  auto started = s.value()->start(c);
  EXPECT_TRUE(started) << (started ? "" : started.error().message);
  return std::move(s).value();
}

std::set<std::string> datas(const std::vector<Event>& es) {
  std::set<std::string> out;
  for (const auto& e : es) out.insert(e.data);
  return out;
}

// One record per partition after everything else: once all six arrived, every
// earlier record of every partition has been delivered (order per partition).
void produce_sentinels(RawProducer& p, const std::string& topic, const std::string& tag) {
  for (int32_t part = 0; part < 6; ++part) p.produce(topic, part, tag + std::to_string(part));
}
bool wait_sentinels(Collector& c, const std::string& tag) {
  return c.wait([&](const std::vector<Event>& es) {
    int n = 0;
    for (const auto& e : es) n += e.data.rfind(tag, 0) == 0;
    return n >= 6;
  });
}

TEST(KafkaSource, CommittedPrefixIsWhereTheGroupResumes) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("resume"), group = unique("g");
  RawProducer p;
  for (int i = 0; i < 12; ++i) p.produce(topic, i % 6, "r" + std::to_string(i));

  Collector c1;
  auto s1 = start_source(*b, topic, group, c1);
  ASSERT_TRUE(s1);
  ASSERT_TRUE(c1.wait_count(12));
  EXPECT_EQ(s1->traits().commits_offsets, true);
  EXPECT_EQ(s1->traits().per_message_ack, false);
  for (const auto& t : c1.tags()) EXPECT_GE(t.offset, 0);
  for (const auto& e : c1.events()) {
    EXPECT_EQ(e.topic, topic);
    EXPECT_EQ(e.broker, "kafka");
  }
  // The first record of each partition (offset 0) is finished, the second is not.
  s1->stop();
  for (int32_t part = 0; part < 6; ++part) s1->commit(part, 1);  // after stop(): still works
  ASSERT_TRUE(s1->flush_commits());
  s1.reset();

  Collector c2;
  auto s2 = start_source(*b, topic, group, c2);
  ASSERT_TRUE(s2);
  produce_sentinels(p, topic, "s");
  ASSERT_TRUE(wait_sentinels(c2, "s"));
  std::set<std::string> got = datas(c2.events());
  // r6..r11 (offset 1 of each partition) again, r0..r5 never.
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(got.count("r" + std::to_string(i)), i >= 6 ? 1u : 0u) << "r" << i;
  EXPECT_EQ(c2.events().size(), 12u);
}

TEST(KafkaSource, NothingCommittedMeansEverythingComesAgain) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("redeliver"), group = unique("g");
  RawProducer p;
  for (int i = 0; i < 6; ++i) p.produce(topic, i, "r" + std::to_string(i));
  {
    Collector c1;
    auto s1 = start_source(*b, topic, group, c1);
    ASSERT_TRUE(c1.wait_count(6));
    ASSERT_TRUE(s1->flush_commits());  // nothing stored: commits nothing
  }  // closed: the revoke commits what is stored, i.e. nothing
  Collector c2;
  auto s2 = start_source(*b, topic, group, c2);
  ASSERT_TRUE(c2.wait_count(6));
  EXPECT_EQ(datas(c2.events()), (std::set<std::string>{"r0", "r1", "r2", "r3", "r4", "r5"}));
}

TEST(KafkaSource, PauseStopsAPartitionAndResumeRestartsIt) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("pause"), group = unique("g");
  RawProducer p;
  p.produce(topic, 0, "a0");
  p.produce(topic, 1, "a1");
  Collector c;
  auto s = start_source(*b, topic, group, c);
  ASSERT_TRUE(c.wait_count(2));

  s->pause(0);
  p.produce(topic, 1, "b1");  // once it arrives, the poll thread has applied the pause
  ASSERT_TRUE(c.wait_data("b1"));
  p.produce(topic, 0, "c0");
  p.produce(topic, 1, "c1");
  p.produce(topic, 1, "d1");
  ASSERT_TRUE(c.wait_data("d1"));
  EXPECT_EQ(datas(c.events()).count("c0"), 0u) << "a paused partition delivered";

  s->resume(0);
  ASSERT_TRUE(c.wait_data("c0"));
  EXPECT_EQ(c.events().size(), 6u);
}

// A throttle holds the whole source back without pausing (the prefetch stays); one
// that lasts pauses every partition and polls again. Released, everything comes out
// once and in order: nothing prefetched, paused or refetched is lost or repeated.
TEST(KafkaSource, LongThrottlePausesAllAndReleaseDeliversEachRecordOnceInOrder) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("throttle"), group = unique("g");
  RawProducer p;
  p.produce(topic, 0, "a0");
  Collector c;
  auto s = start_source(*b, topic, group, c);
  ASSERT_TRUE(s);
  EXPECT_TRUE(s->traits().throttles);
  ASSERT_TRUE(c.wait_count(1));
  auto* ks = dynamic_cast<KafkaSource*>(s.get());
  ASSERT_NE(ks, nullptr);

  s->throttle(true);
  for (int i = 0; i < 5; ++i) p.produce(topic, 0, "b" + std::to_string(i));
  ASSERT_TRUE(eventually([&] { return ks->throttle_paused(); }));
  for (int i = 0; i < 5; ++i) p.produce(topic, 0, "c" + std::to_string(i));
  s->throttle(false);
  EXPECT_FALSE(ks->throttle_paused());
  ASSERT_TRUE(c.wait_data("c4"));
  const auto tags = c.tags();
  ASSERT_EQ(tags.size(), 11u);
  for (size_t i = 0; i < tags.size(); ++i) EXPECT_EQ(tags[i].offset, static_cast<int64_t>(i));
}

TEST(KafkaSource, RevokeTellsTheListenerAndCommitsWhatWasStored) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("revoke"), group = unique("g");
  RawProducer p;
  for (int i = 0; i < 6; ++i) p.produce(topic, i, "r" + std::to_string(i));
  Collector c1;
  auto s1 = start_source(*b, topic, group, c1);
  ASSERT_TRUE(c1.wait_count(6));
  // Finished, stored, not explicitly flushed.
  for (const auto& t : c1.tags()) s1->commit(t.partition, t.offset + 1);

  Collector c2;
  auto s2 = start_source(*b, topic, group, c2);
  auto* k1 = static_cast<KafkaSource*>(s1.get());
  auto* k2 = static_cast<KafkaSource*>(s2.get());
  ASSERT_TRUE(eventually([&] {
    return !c1.revoked().empty() && !k2->assignment().empty() &&
           k1->assignment().size() + k2->assignment().size() == 6;
  })) << "no rebalance: s1 has " << k1->assignment().size() << ", s2 "
      << k2->assignment().size();
  for (int32_t part : c1.revoked())
    for (int32_t mine : k1->assignment()) EXPECT_NE(part, mine);

  produce_sentinels(p, topic, "s");
  // All six sentinels, between the two members.
  ASSERT_TRUE(eventually([&] {
    int n = 0;
    for (const auto& e : c2.events()) n += e.data[0] == 's';
    for (const auto& e : c1.events()) n += e.data[0] == 's';
    return n >= 6;
  }));
  // s2 took partitions over after the committed offsets: no r* comes again.
  for (const auto& e : c2.events()) EXPECT_EQ(e.data[0], 's') << e.data;
}

}  // namespace
}  // namespace sluice::kafka::testing
