// CoreSource (no jetstream): queue-group subscriptions, at-most-once.
#include "broker-adapters/nats/tests/nats_server.h"

namespace sluice::nats::testing {
namespace {

class CoreSourceTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    BrokerConfig c = js_config(server_);
    c.nats().jetstream.reset();
    broker_ = open_broker(c);
    ASSERT_TRUE(broker_);
  }
  void TearDown() override {
    broker_.reset();
    NatsTest::TearDown();
  }
  std::unique_ptr<NatsBroker> broker_;
};

TEST_F(CoreSourceTest, WildcardSubscriptionDeliversPlainAndCloudEvents) {
  auto src = broker_->make_source("jobs.*", "fn");
  ASSERT_TRUE(src) << src.error().message;
  EXPECT_FALSE(src.value()->traits().commits_offsets);
  EXPECT_FALSE(src.value()->traits().per_message_ack);
  Collector got;
  ASSERT_TRUE(src.value()->start(got));
  ASSERT_TRUE(publish_sync(broker_->sink(), "jobs.a", make_event("ce-1", "x", "k")));
  // A plain core NATS message from another client.
  const char* body = "plain";
  ASSERT_EQ(natsConnection_Publish(broker_->conn().nc(), "jobs.b", body, 5), NATS_OK);
  ASSERT_TRUE(got.wait_held(2));
  auto ds = got.take();
  EXPECT_EQ(ds[0].event.id, "ce-1");
  EXPECT_EQ(ds[0].event.key, "k");
  EXPECT_EQ(ds[0].event.offset, -1);
  EXPECT_EQ(ds[1].event.type, "io.sluice.nats.message");
  EXPECT_EQ(ds[1].event.data, "plain");
  EXPECT_EQ(ds[1].event.key, "b");
  EXPECT_FALSE(ds[1].event.id.empty());
  ds[0].ack();  // a no-op for core NATS
  EXPECT_FALSE(src.value()->lag());
  src.value()->stop();
}

TEST_F(CoreSourceTest, QueueGroupSplitsTheMessages) {
  auto a = broker_->make_source("work.>", "grp");
  auto b = broker_->make_source("work.>", "grp");
  ASSERT_TRUE(a && b);
  Collector ga, gb;
  ASSERT_TRUE(a.value()->start(ga));
  ASSERT_TRUE(b.value()->start(gb));
  const int n = 200;
  for (int i = 0; i < n; ++i)
    ASSERT_TRUE(publish_sync(broker_->sink(), "work.x", make_event(std::to_string(i))));
  ASSERT_TRUE(eventually([&] { return ga.held() + gb.held() == static_cast<size_t>(n); }));
  EXPECT_GT(ga.held(), 0u);
  EXPECT_GT(gb.held(), 0u);
}

TEST_F(CoreSourceTest, PauseHoldsDeliveriesUntilResume) {
  auto src = broker_->make_source("p.>", "fn");
  ASSERT_TRUE(src);
  Collector got;
  ASSERT_TRUE(src.value()->start(got));
  src.value()->pause(0);
  ASSERT_TRUE(publish_sync(broker_->sink(), "p.1", make_event("1")));
  ASSERT_EQ(natsConnection_FlushTimeout(broker_->conn().nc(), 5000), NATS_OK);
  EXPECT_EQ(got.held(), 0u);
  src.value()->resume(0);
  ASSERT_TRUE(got.wait_held(1));
}

}  // namespace
}  // namespace sluice::nats::testing
