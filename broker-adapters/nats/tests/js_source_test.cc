// JetStreamSource against a real nats-server: ack / nak / term / AckWait
// redelivery / in-progress keep-alives / pause / server restart.
#include <set>

#include "broker-adapters/nats/tests/nats_server.h"

namespace sluice::nats::testing {
namespace {

struct ConsumerState {
  int64_t ack_pending = -1, redelivered = -1;
  uint64_t pending = 0;
};

ConsumerState consumer_state(NatsBroker& b, const std::string& group) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr{};
  ConsumerState st;
  if (js_GetConsumerInfo(&ci, b.conn().js(), b.stream().c_str(), group.c_str(), nullptr, &jerr) !=
      NATS_OK)
    return st;
  st = {ci->NumAckPending, ci->NumRedelivered, ci->NumPending};
  jsConsumerInfo_Destroy(ci);
  return st;
}

class JsSourceTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    broker_ = open_broker(js_config(server_));
    ASSERT_TRUE(broker_);
  }
  void TearDown() override {
    source_.reset();
    broker_.reset();
    NatsTest::TearDown();
  }
  void open_source(Millis ack_wait = 30s, int64_t max_ack_pending = 1000,
                   std::string topic = "events.>", std::string group = "fn") {
    auto s = broker_->make_jetstream_source(topic, group, {ack_wait, max_ack_pending, 256});
    ASSERT_TRUE(s) << s.error().message;
    source_ = std::move(s).value();
    ASSERT_TRUE(source_->start(got_));
  }
  void publish(const std::string& subject, const std::string& id) {
    auto r = publish_sync(broker_->sink(), subject, make_event(id, "data-" + id));
    ASSERT_TRUE(r) << r.error().message;
  }
  std::unique_ptr<NatsBroker> broker_;
  std::unique_ptr<JetStreamSource> source_;
  Collector got_;
};

TEST_F(JsSourceTest, PublishConsumeAckIsNotRedelivered) {
  open_source();
  EXPECT_EQ(source_->traits().commits_offsets, false);
  EXPECT_EQ(source_->traits().per_message_ack, true);
  publish("events.a", "1");
  publish("events.b", "2");
  ASSERT_TRUE(got_.wait_held(2));
  auto ds = got_.take();
  EXPECT_EQ(ds[0].event.id, "1");
  EXPECT_EQ(ds[0].event.offset, 1);
  EXPECT_EQ(ds[0].event.partition, 0);
  EXPECT_EQ(ds[0].event.topic, "events.a");
  EXPECT_EQ(ds[0].event.data, "data-1");
  EXPECT_GT(ds[0].event.broker_timestamp_ms, 0);
  EXPECT_EQ(ds[1].event.offset, 2);
  EXPECT_EQ(source_->held(), 2u);
  for (auto& d : ds) d.ack();
  EXPECT_EQ(source_->held(), 0u);
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
  EXPECT_EQ(consumer_state(*broker_, "fn").redelivered, 0);
  // A later message arrives alone: nothing acked came back before it.
  publish("events.c", "3");
  ASSERT_TRUE(got_.wait_held(1));
  EXPECT_EQ(got_.held_offsets(), std::vector<int64_t>{3});
}

// A tag settled twice, or kept after its slot went to another message, settles nothing.
TEST_F(JsSourceTest, StaleOrRepeatedSettleIsIgnored) {
  open_source();
  publish("events.a", "1");
  publish("events.b", "2");
  ASSERT_TRUE(got_.wait_held(2));
  auto ds = got_.take();
  const DeliveryTag first = ds[0].tag();
  ds[0].ack();
  EXPECT_EQ(source_->held(), 1u);
  publish("events.c", "3");  // takes the slot the first one left
  ASSERT_TRUE(got_.wait_held(1));
  auto third = got_.take();
  EXPECT_NE(third[0].tag().token, first.token);
  source_->settle(first, Settle::ack, {});    // stale: neither the second nor the third
  source_->settle(first, Settle::term, {});
  source_->settle(DeliveryTag{0, 0, 0}, Settle::ack, {});
  source_->settle(DeliveryTag{0, 0, 12345}, Settle::ack, {});
  EXPECT_EQ(source_->held(), 2u);
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 2; }));
  ds[1].ack();
  third[0].ack();
  third[0].ack();  // twice
  EXPECT_EQ(source_->held(), 0u);
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
  EXPECT_EQ(consumer_state(*broker_, "fn").redelivered, 0);
}

TEST_F(JsSourceTest, NackWithDelayIsRedeliveredAfterTheDelay) {
  open_source();
  publish("events.a", "1");
  ASSERT_TRUE(got_.wait_held(1));
  auto ds = got_.take();
  const auto t0 = std::chrono::steady_clock::now();
  ds[0].nack(300ms);
  ASSERT_TRUE(got_.wait_held(1));
  const auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_GE(waited, 250ms);
  auto again = got_.take();
  EXPECT_EQ(again[0].event.offset, 1);
  EXPECT_EQ(again[0].event.id, "1");
  ASSERT_NE(again[0].event.header("sluice-nats-delivered"), nullptr);
  EXPECT_EQ(*again[0].event.header("sluice-nats-delivered"), "2");
  EXPECT_EQ(again[0].redeliveries, 1u);  // the dispatcher counts on from there
  again[0].ack();
}

TEST_F(JsSourceTest, TermIsNotRedelivered) {
  open_source(1s);
  publish("events.a", "1");
  ASSERT_TRUE(got_.wait_held(1));
  got_.take()[0].term();
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
  EXPECT_EQ(consumer_state(*broker_, "fn").redelivered, 0);
  publish("events.b", "2");
  ASSERT_TRUE(got_.wait_held(1));
  EXPECT_EQ(got_.held_offsets(), std::vector<int64_t>{2});
}

TEST_F(JsSourceTest, UnackedIsRedeliveredAfterAckWait) {
  open_source(1s);
  source_->pause(0);
  publish("events.a", "1");
  // A second consumer process on the same durable takes the message and dies
  // without acking (no nak, no keep-alive): a raw nats.c pull subscriber.
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "EVENTS";
  so.Consumer = "fn";
  natsSubscription* raw = nullptr;
  jsErrCode jerr{};
  ASSERT_EQ(js_PullSubscribe(&raw, broker_->conn().js(), "events.>", "fn", nullptr, &so, &jerr),
            NATS_OK);
  natsMsgList list{nullptr, 0};
  ASSERT_EQ(natsSubscription_Fetch(&list, raw, 1, 5000, &jerr), NATS_OK);
  ASSERT_EQ(list.Count, 1);
  const auto t0 = std::chrono::steady_clock::now();
  natsMsgList_Destroy(&list);
  natsSubscription_Destroy(raw);

  source_->resume(0);
  ASSERT_TRUE(got_.wait_held(1, 10s)) << "not redelivered after AckWait";
  EXPECT_GE(std::chrono::steady_clock::now() - t0, 800ms);
  auto ds = got_.take();
  EXPECT_EQ(ds[0].event.offset, 1);
  ASSERT_NE(ds[0].event.header("sluice-nats-delivered"), nullptr);
  ds[0].ack();
}

TEST_F(JsSourceTest, HeldMessageWithKeepAlivesIsNotRedelivered) {
  open_source(1s);
  publish("events.slow", "1");
  ASSERT_TRUE(got_.wait_held(1));
  auto held = got_.take();
  // Three keep-alives take at least 1.5 s: well past the 1 s AckWait.
  ASSERT_TRUE(eventually([&] { return source_->keep_alives_sent() >= 3; }, 10s));
  EXPECT_EQ(got_.held(), 0u) << "redelivered while held";
  EXPECT_EQ(consumer_state(*broker_, "fn").redelivered, 0);
  held[0].ack();
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
  EXPECT_EQ(got_.held(), 0u);
}

TEST_F(JsSourceTest, FetchIsBoundedByMaxAckPendingAndPause) {
  open_source(30s, /*max_ack_pending=*/5);
  for (int i = 0; i < 12; ++i) publish("events.n", std::to_string(i));
  ASSERT_TRUE(got_.wait_held(5));
  auto first = got_.take();
  EXPECT_EQ(first.size(), 5u);
  EXPECT_EQ(source_->held(), 5u);
  EXPECT_EQ(source_->pulled(), 0);  // nothing asked for beyond the window
  EXPECT_EQ(consumer_state(*broker_, "fn").pending, 7u);
  source_->pause(0);
  for (auto& d : first) d.ack();
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
  EXPECT_EQ(got_.held(), 0u);  // paused: budget free but no fetch
  source_->resume(0);
  ASSERT_TRUE(got_.wait_held(5));
  for (auto& d : got_.take()) d.ack();
  ASSERT_TRUE(got_.wait_held(2));
  for (auto& d : got_.take()) d.ack();
}

// With the ack window full, a freed slot does not cost a fetch request of its own:
// the fetch waits for half a batch of room (here 10 of 20), or a tick (500 ms here).
TEST_F(JsSourceTest, FullWindowRefillsInWorthwhileFetchesNotOnePerAck) {
  open_source(30s, /*max_ack_pending=*/20);
  for (int i = 0; i < 60; ++i) publish("events.n", std::to_string(i));
  ASSERT_TRUE(got_.wait_held(20));
  auto first = got_.take();
  ASSERT_EQ(source_->held(), 20u);
  const uint64_t requests_before = source_->pull_requests();
  for (size_t i = 0; i < 12; ++i) first[i].ack();  // one at a time
  ASSERT_TRUE(got_.wait_held(12));
  // Counted in pull requests, not in delivered batches (the server may split one
  // fetch's messages over several reads): 10 freed slots make one request, the last
  // 2 at most one more, plus at most one re-sent after an expiry. A fetch per ack
  // would be 12.
  EXPECT_LE(source_->pull_requests() - requests_before, 3u);
  EXPECT_LE(source_->held(), 20u);
  for (size_t i = 12; i < first.size(); ++i) first[i].ack();
  for (auto& d : got_.take()) d.ack();
}

// Pull requests expire at the server (2 s here) and are sent again: an idle
// consumer neither loses its way nor floods the server, and a message published
// after several expiries arrives at once.
TEST_F(JsSourceTest, IdleLongerThanAPullRequestLivesStillDelivers) {
  open_source();  // ack_wait 30 s: requests live 2 s
  std::this_thread::sleep_for(5s);
  const uint64_t sent = source_->pull_requests();
  EXPECT_GE(sent, 2u);   // expired ones were replaced
  EXPECT_LE(sent, 40u);  // not a request per tick or faster
  EXPECT_GT(source_->pulled(), 0);
  EXPECT_LE(source_->pulled(), 4 * 256);
  publish("events.late", "1");
  ASSERT_TRUE(got_.wait_held(1, 2s));
  for (auto& d : got_.take()) d.ack();
}

// stop() withdraws the requests still outstanding (the inbox is drained): messages
// published after it are not delivered to the stopped source, where they would sit
// until AckWait (30 s here), and the next consumer on the durable gets them at once.
TEST_F(JsSourceTest, RequestsOutstandingAtStopAreWithdrawn) {
  open_source();  // ack_wait 30 s
  ASSERT_TRUE(eventually([&] { return source_->pulled() > 0; }));
  source_->stop();
  std::this_thread::sleep_for(100ms);  // the drain reaches the server
  for (int i = 0; i < 3; ++i) publish("events.s", std::to_string(i));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(got_.held(), 0u);
  EXPECT_EQ(source_->held(), 0u);
  auto st = consumer_state(*broker_, "fn");
  EXPECT_EQ(st.ack_pending, 0);
  EXPECT_EQ(st.pending, 3u);
  source_.reset();
  open_source();
  ASSERT_TRUE(got_.wait_held(3, 5s));
  for (auto& d : got_.take()) d.ack();
}

// A message on its way when stop() came is handed back (nak) at once, not left
// for AckWait: with the window full, the second source gets it right away.
TEST_F(JsSourceTest, MessagesArrivingDuringStopAreHandedBack) {
  open_source();
  for (int i = 0; i < 50; ++i) publish("events.s", std::to_string(i));
  // Stop while deliveries may still be in flight; none is settled by the test.
  source_->stop();
  const size_t handed = got_.held();
  auto held = got_.take();
  for (auto& d : held) d.nack(0ms);
  source_.reset();
  open_source();
  ASSERT_TRUE(got_.wait_held(50, 5s)) << got_.held() << " of 50 (" << handed << " before stop)";
  for (auto& d : got_.take()) d.ack();
}

TEST_F(JsSourceTest, MessagesOfOtherSubjectsAreFiltered) {
  open_source(30s, 1000, "events.orders.*", "orders");
  publish("events.users.1", "u");
  publish("events.orders.1", "o");
  ASSERT_TRUE(got_.wait_held(1));
  auto ds = got_.take();
  EXPECT_EQ(ds[0].event.id, "o");
  EXPECT_EQ(ds[0].event.offset, 2);
  EXPECT_EQ(ds[0].event.key, "1");
  ds[0].ack();
}

TEST_F(JsSourceTest, DurableWithAnotherFilterIsAClearError) {
  open_source(30s, 1000, "events.a", "shared");
  auto other = broker_->make_jetstream_source("events.b", "shared", {});
  ASSERT_FALSE(other);
  EXPECT_NE(other.error().message.find("already exists with filter 'events.a'"), std::string::npos)
      << other.error().message;
}

TEST_F(JsSourceTest, TopicOutsideTheStreamIsAClearError) {
  auto s = broker_->make_source("other.subject", "g");
  ASSERT_FALSE(s);
  EXPECT_NE(s.error().message.find("not covered by the subjects of stream 'EVENTS'"),
            std::string::npos);
}

TEST_F(JsSourceTest, LagCountsPendingAndAckPending) {
  open_source(30s, /*max_ack_pending=*/3);
  for (int i = 0; i < 10; ++i) publish("events.l", std::to_string(i));
  ASSERT_TRUE(got_.wait_held(3));
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").pending == 7; }));
  auto lag = source_->lag();
  ASSERT_TRUE(lag) << lag.error().message;
  ASSERT_EQ(lag.value().size(), 1u);
  const PartitionLag& pl = lag.value()[0];
  EXPECT_EQ(pl.partition, 0);
  EXPECT_EQ(pl.group, "fn");
  EXPECT_EQ(pl.topic, "events.>");
  EXPECT_EQ(pl.lag, 10);  // 7 pending + 3 ack-pending
  EXPECT_EQ(pl.end, 11);
  EXPECT_EQ(pl.committed, 1);
  ASSERT_TRUE(pl.lag_seconds.has_value());
  EXPECT_GE(*pl.lag_seconds, 0.0);
  EXPECT_LT(*pl.lag_seconds, 60.0);
  for (auto& d : got_.take()) d.ack();
  ASSERT_TRUE(eventually([&] {
    for (auto& d : got_.take()) d.ack();
    auto l = source_->lag();
    return l && l.value()[0].lag == 0;
  }));
  auto done = source_->lag();
  ASSERT_TRUE(done);
  EXPECT_EQ(done.value()[0].lag_seconds, 0.0);
  EXPECT_EQ(done.value()[0].committed, 11);
}

TEST_F(JsSourceTest, LagOfAMissingConsumerIsAnError) {
  auto l = broker_->browser()->lag("events.>", "nobody");
  ASSERT_FALSE(l);
  EXPECT_EQ(l.error().code, Errc::not_found);
}

TEST_F(JsSourceTest, ServerRestartIsSurvivedNothingLost) {
  open_source(2s);
  got_.on_each = [](Delivery& d) { d.ack(); };
  for (int i = 1; i <= 20; ++i) publish("events.r", std::to_string(i));
  ASSERT_TRUE(got_.wait_held(20));

  server_.kill_now();
  ASSERT_TRUE(eventually([&] { return !broker_->conn().connected(); }));
  ASSERT_TRUE(server_.start());
  ASSERT_TRUE(eventually([&] { return broker_->conn().connected(); }));
  EXPECT_GE(broker_->conn().reconnects(), 1u);
  // Publishes right after the restart may race JetStream's recovery: retry them.
  for (int i = 21; i <= 40; ++i) {
    ASSERT_TRUE(eventually([&] {
      return static_cast<bool>(publish_sync(broker_->sink(), "events.r", make_event(std::to_string(i))));
    })) << "publish " << i;
  }
  ASSERT_TRUE(eventually([&] {
    std::set<int64_t> seen;
    for (auto o : got_.held_offsets()) seen.insert(o);
    return seen.size() >= 40;
  })) << "received " << got_.held();
  std::set<int64_t> seen;
  for (auto o : got_.held_offsets()) seen.insert(o);
  EXPECT_EQ(*seen.begin(), 1);
  EXPECT_EQ(*seen.rbegin(), 40);
  ASSERT_TRUE(eventually([&] { return consumer_state(*broker_, "fn").ack_pending == 0; }));
}

}  // namespace
}  // namespace sluice::nats::testing

namespace sluice::nats::testing {
namespace {

TEST_F(NatsTest, TenThousandEventsEachDeliveredOnceWhenAcked) {
  auto broker = open_broker(js_config(server_));
  ASSERT_TRUE(broker);
  const int n = 10000;
  std::atomic<int> published{0};
  for (int i = 0; i < n; ++i)
    broker->sink().publish("events.bulk", make_event(std::to_string(i), std::string(100, 'x')),
                           [&](Result<PublishAck> r) {
                             if (r) published.fetch_add(1);
                           });
  ASSERT_TRUE(broker->sink().flush(20s));
  ASSERT_EQ(published.load(), n);
  auto src = broker->make_jetstream_source("events.bulk", "bulk", {30s, 1000, 256});
  ASSERT_TRUE(src);
  std::mutex mu;
  std::vector<char> seen(n + 1, 0);
  std::atomic<int> dup{0}, count{0};
  Collector got;
  got.on_each = [&](Delivery& d) {
    {
      std::lock_guard lk(mu);
      if (seen[static_cast<size_t>(d.event.offset)]++) dup.fetch_add(1);
    }
    count.fetch_add(1);
    d.ack();
  };
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(src.value()->start(got));
  ASSERT_TRUE(eventually([&] { return count.load() >= n; }, 60s)) << count.load();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(dup.load(), 0);
  RecordProperty("events_per_second", static_cast<int>(n / secs));
  std::printf("consumed %d events in %.3f s (%.0f/s)\n", n, secs, n / secs);
  src.value()->stop();
}

}  // namespace
}  // namespace sluice::nats::testing

namespace sluice::nats::testing {
namespace {

int64_t max_ack_pending_of(NatsBroker& b, const std::string& group) {
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr{};
  if (js_GetConsumerInfo(&ci, b.conn().js(), b.stream().c_str(), group.c_str(), nullptr, &jerr) !=
      NATS_OK)
    return -1;
  const int64_t n = ci->Config ? ci->Config->MaxAckPending : -1;
  jsConsumerInfo_Destroy(ci);
  return n;
}

TEST_F(NatsTest, MaxAckPendingFollowsTheFunctionBudgetAndAnExistingDurableIsUpdated) {
  auto broker = open_broker(js_config(server_));
  ASSERT_TRUE(broker);
  {
    auto s = broker->make_source("events.>", "fn", SourceOptions{8, 5s});
    ASSERT_TRUE(s) << s.error().message;
  }
  EXPECT_EQ(max_ack_pending_of(*broker, "fn"), 8);
  {
    // Concurrency raised in the config: the existing durable follows.
    auto s = broker->make_source("events.>", "fn", SourceOptions{32, 5s});
    ASSERT_TRUE(s) << s.error().message;
  }
  EXPECT_EQ(max_ack_pending_of(*broker, "fn"), 32);
  {
    // No budget from the engine: the broker default.
    auto s = broker->make_source("events.>", "fn", SourceOptions{});
    ASSERT_TRUE(s) << s.error().message;
  }
  EXPECT_EQ(max_ack_pending_of(*broker, "fn"), 1000);
}

TEST_F(NatsTest, MaxAckPendingPinnedInTheBrokerOptionsWins) {
  BrokerConfig c = js_config(server_);
  c.nats().options["max_ack_pending"] = "64";
  auto broker = open_broker(c);
  ASSERT_TRUE(broker);
  auto s = broker->make_source("events.>", "fn", SourceOptions{4, 5s});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(max_ack_pending_of(*broker, "fn"), 64);
}

TEST_F(NatsTest, ExistingPushConsumerIsAClearError) {
  auto broker = open_broker(js_config(server_));
  ASSERT_TRUE(broker);
  jsConsumerConfig cc;
  jsConsumerConfig_Init(&cc);
  cc.Durable = "push";
  cc.DeliverSubject = "deliver.here";
  cc.AckPolicy = js_AckExplicit;
  cc.FilterSubject = "events.>";
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr{};
  ASSERT_EQ(js_AddConsumer(&ci, broker->conn().js(), "EVENTS", &cc, nullptr, &jerr), NATS_OK);
  jsConsumerInfo_Destroy(ci);
  auto s = broker->make_source("events.>", "push", SourceOptions{4, 5s});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, Errc::invalid_argument);
  EXPECT_NE(s.error().message.find("not a pull consumer"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace sluice::nats::testing
