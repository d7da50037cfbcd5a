// The Source contract (core/broker.h) that every broker adapter meets, one suite run
// against each: the local queue, Kafka (one real KRaft broker per test process, the
// Kafka tests' environment: broker-adapters/kafka/tests/kafka_env.h; skipped with a
// message without java/mvn/kcat) and NATS JetStream (a nats-server -js per test).
// Broker configs come from each adapter's test helpers.
//
//  - every event is delivered, in offset order per partition, with tags that match
//    the event's coordinates;
//  - a restart (same group) resumes after what was settled — committed prefix
//    (offset brokers) or acked messages (per-message brokers) — and what was not
//    settled comes again; settling after stop() still counts;
//  - pause holds a partition back and resume releases it (exactly for offset
//    brokers; JetStream's pause stops new pull requests, so only "nothing is lost"
//    is checked there);
//  - after stop() no callback runs, and stop() is idempotent.
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/tests/kafka_env.h"
#include "broker-adapters/local/local_broker.h"
#include "broker-adapters/local/tests/test_util.h"
#include "broker-adapters/nats/tests/nats_server.h"
#include "tests/support/collector.h"
#include "tests/support/support.h"

namespace sluice::brokers::testing {
namespace {

using namespace std::chrono_literals;
using testsupport::Collector;

using kafka::testing::unique;

// One broker under test, fresh per test.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual std::string skip_reason() { return ""; }
  virtual std::unique_ptr<Broker> open() = 0;
  virtual std::string topic() = 0;  // one no other test uses
  virtual bool exact_pause() const { return true; }
};

class LocalAdapter final : public Adapter {
 public:
  std::unique_ptr<Broker> open() override {
    auto b = local::LocalBroker::open(local::testing::options(dir_.file("q.db")), "g");
    EXPECT_TRUE(b) << (b ? "" : b.error().message);
    return b ? std::move(b).value() : nullptr;
  }
  std::string topic() override { return unique("t"); }

 private:
  local::testing::TempDir dir_;
};

class KafkaAdapter final : public Adapter {
 public:
  std::string skip_reason() override { return kafka::testing::skip_reason(); }
  std::unique_ptr<Broker> open() override { return kafka::testing::open_broker(kafka::testing::config()); }
  std::string topic() override { return unique("t"); }
};

class NatsAdapter final : public Adapter {
 public:
  std::string skip_reason() override {
    return server_.start() ? "" : "nats-server did not start";
  }
  std::unique_ptr<Broker> open() override { return nats::testing::open_broker(nats::testing::js_config(server_)); }
  std::string topic() override { return "events." + unique("t"); }
  bool exact_pause() const override { return false; }

 private:
  nats::testing::NatsServer server_;
};

struct Kind {
  const char* name;
  std::function<std::unique_ptr<Adapter>()> make;
};

// Publishes (data, key) pairs through the broker's sink and waits for every answer.
void publish(Broker& b, const std::string& topic,
             const std::vector<std::pair<std::string, std::string>>& events) {
  std::atomic<size_t> done{0}, failed{0};
  for (const auto& [data, key] : events) {
    Event e;
    e.id = new_event_id();
    e.source = "/contract";
    e.type = "contract.event";
    e.data = data;
    e.key = key;
    b.sink().publish(topic, std::move(e), [&](Result<PublishAck> r) {
      if (!r) ++failed;
      ++done;
    });
  }
  ASSERT_TRUE(testsupport::eventually([&] { return done.load() == events.size(); }));
  ASSERT_EQ(failed.load(), 0u);
}

// n events "<prefix><i>" keyed k<i % keys>.
std::vector<std::pair<std::string, std::string>> numbered(const std::string& prefix, int n,
                                                          int keys = 5) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = 0; i < n; ++i)
    out.emplace_back(prefix + std::to_string(i), "k" + std::to_string(i % keys));
  return out;
}

std::set<std::string> datas(const std::vector<Event>& es) {
  std::set<std::string> out;
  for (const auto& e : es) out.insert(e.data);
  return out;
}

class SourceContract : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    adapter_ = GetParam().make();
    if (auto why = adapter_->skip_reason(); !why.empty()) GTEST_SKIP() << why;
    broker_ = adapter_->open();
    ASSERT_TRUE(broker_);
    topic_ = adapter_->topic();
    group_ = unique("g");
  }
  void TearDown() override {
    if (broker_) broker_->stop();
  }

  std::unique_ptr<Source> start(Collector& c) {
    auto s = broker_->make_source(topic_, group_);
    if (!s) {
      ADD_FAILURE() << s.error().message;
      return nullptr;
    }
    auto started = s.value()->start(c);
    EXPECT_TRUE(started) << (started ? "" : started.error().message);
    return std::move(s).value();
  }

  // Settles the deliveries of `c` whose data is in `which` (all when null): commits
  // the contiguous prefix per partition (offset brokers; `which` must be a prefix
  // per partition) or acks each one (per-message brokers).
  void settle(Source& s, Collector& c, const std::set<std::string>* which = nullptr) {
    std::map<int32_t, int64_t> next;
    for (auto& d : c.take()) {
      if (which && !which->count(d.event.data)) continue;
      if (s.traits().per_message_ack) d.ack();
      if (s.traits().commits_offsets) {
        int64_t& n = next[d.tag().partition];
        n = std::max(n, d.tag().offset + 1);
      }
    }
    for (const auto& [p, n] : next) s.commit(p, n);
    ASSERT_TRUE(s.flush_commits());
  }

  std::unique_ptr<Adapter> adapter_;
  std::unique_ptr<Broker> broker_;
  std::string topic_, group_;
};

TEST_P(SourceContract, DeliversEveryEventInOrderPerPartition) {
  publish(*broker_, topic_, numbered("e", 40));
  Collector c;
  auto s = start(c);
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.wait_count(40));
  const auto events = c.events();
  const auto tags = c.tags();
  ASSERT_EQ(tags.size(), events.size());
  EXPECT_EQ(datas(events).size(), 40u);
  std::map<int32_t, int64_t> last_offset;
  std::map<std::string, int> last_index;  // per key: events of one key keep their order
  for (size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    EXPECT_EQ(e.topic, topic_);
    EXPECT_EQ(tags[i].partition, e.partition);
    EXPECT_EQ(tags[i].offset, e.offset);
    auto [it, first] = last_offset.emplace(e.partition, e.offset);
    if (!first) {
      EXPECT_GT(e.offset, it->second) << "partition " << e.partition;
      it->second = e.offset;
    }
    const int index = std::stoi(e.data.substr(1));
    auto [k, fresh] = last_index.emplace(e.key, index);
    if (!fresh) {
      EXPECT_GT(index, k->second) << "key " << e.key;
      k->second = index;
    }
  }
  settle(*s, c);
}

TEST_P(SourceContract, RestartResumesAfterTheSettledPrefix) {
  publish(*broker_, topic_, numbered("r", 20));
  std::set<std::string> settled, unsettled;
  {
    Collector c1;
    auto s1 = start(c1);
    ASSERT_TRUE(s1);
    ASSERT_TRUE(c1.wait_count(20));
    // The first half of each partition (in offset order) is finished, the rest not.
    std::map<int32_t, std::vector<const Event*>> by_partition;
    const auto events = c1.events();
    for (const auto& e : events) by_partition[e.partition].push_back(&e);
    for (const auto& [p, es] : by_partition)
      for (size_t i = 0; i < es.size(); ++i)
        (i < (es.size() + 1) / 2 ? settled : unsettled).insert(es[i]->data);
    // The engine's order: intake stops, then what finished is settled.
    s1->stop();
    settle(*s1, c1, &settled);
  }  // destroyed: the group's member leaves; JetStream naks what is still held
  ASSERT_FALSE(unsettled.empty());

  Collector c2;
  auto s2 = start(c2);
  ASSERT_TRUE(s2);
  ASSERT_TRUE(c2.wait([&](const std::vector<Event>& es) {
    std::set<std::string> got = datas(es);
    for (const auto& d : unsettled)
      if (!got.count(d)) return false;
    return true;
  })) << c2.events().size() << " of " << unsettled.size();
  // In offset order a settled event would have come before the unsettled ones of
  // its partition; acked JetStream messages never come back.
  for (const auto& e : c2.events()) EXPECT_EQ(settled.count(e.data), 0u) << e.data;
  settle(*s2, c2);
}

TEST_P(SourceContract, NothingSettledMeansEverythingComesAgain) {
  publish(*broker_, topic_, numbered("n", 10));
  {
    Collector c1;
    auto s1 = start(c1);
    ASSERT_TRUE(s1);
    ASSERT_TRUE(c1.wait_count(10));
    s1->stop();
    ASSERT_TRUE(s1->flush_commits());  // nothing committed: commits nothing
  }
  // At least once: every one comes again (a redelivery may come twice).
  std::set<std::string> all;
  for (const auto& [d, k] : numbered("n", 10)) all.insert(d);
  Collector c2;
  auto s2 = start(c2);
  ASSERT_TRUE(s2);
  ASSERT_TRUE(c2.wait([&](const std::vector<Event>& es) { return datas(es) == all; }))
      << c2.events().size() << " events";
  settle(*s2, c2);
}

TEST_P(SourceContract, PauseHoldsBackAPartitionAndResumeReleasesIt) {
  // Learn where keys go: 16 keys, one event each.
  publish(*broker_, topic_, numbered("w", 16, 16));
  Collector c;
  auto s = start(c);
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.wait_count(16));
  std::map<int32_t, std::string> key_of;
  for (const auto& e : c.events()) key_of.emplace(e.partition, e.key);
  settle(*s, c);
  const auto [paused, paused_key] = *key_of.begin();

  s->pause(paused);
  if (adapter_->exact_pause() && key_of.size() > 1) {
    const std::string other_key = std::next(key_of.begin())->second;
    // Once a record of another partition published after pause() arrives, the pause
    // is in force.
    publish(*broker_, topic_, {{"m1", other_key}});
    ASSERT_TRUE(c.wait_data("m1"));
    publish(*broker_, topic_, {{"held", paused_key}, {"m2", other_key}});
    ASSERT_TRUE(c.wait_data("m2"));
    EXPECT_EQ(datas(c.events()).count("held"), 0u) << "a paused partition delivered";
  } else {
    publish(*broker_, topic_, {{"held", paused_key}});
    if (adapter_->exact_pause())
      EXPECT_FALSE(c.wait_data("held", 300ms)) << "a paused partition delivered";
  }
  s->resume(paused);
  ASSERT_TRUE(c.wait_data("held"));
  settle(*s, c);
}

TEST_P(SourceContract, NoCallbackAfterStop) {
  publish(*broker_, topic_, numbered("a", 5));
  Collector c;
  auto s = start(c);
  ASSERT_TRUE(s);
  ASSERT_TRUE(c.wait_count(5));
  settle(*s, c);
  s->stop();
  const size_t before = c.events().size();
  publish(*broker_, topic_, numbered("b", 5));
  EXPECT_FALSE(c.wait_count(before + 1, 300ms)) << "delivered after stop()";
  s->stop();  // idempotent
  EXPECT_TRUE(s->flush_commits());
}

INSTANTIATE_TEST_SUITE_P(
    Adapters, SourceContract,
    ::testing::Values(Kind{"local", [] { return std::make_unique<LocalAdapter>(); }},
                      Kind{"kafka", [] { return std::make_unique<KafkaAdapter>(); }},
                      Kind{"nats", [] { return std::make_unique<NatsAdapter>(); }}),
    [](const ::testing::TestParamInfo<Kind>& i) { return std::string(i.param.name); });

}  // namespace
}  // namespace sluice::brokers::testing
