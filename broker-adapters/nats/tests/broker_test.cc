// NatsBroker start-up (connect, options, stream check/create) and NatsSink.
#include "broker-adapters/nats/tests/nats_server.h"

namespace sluice::nats::testing {
namespace {

using BrokerTest = NatsTest;

TEST_F(BrokerTest, BadUrlIsAClearError) {
  NatsServer unused;  // a free port nobody listens on
  BrokerConfig c = js_config(unused);
  auto b = NatsBroker::open(c);
  ASSERT_FALSE(b);
  EXPECT_NE(b.error().message.find("cannot connect to " + unused.url()), std::string::npos)
      << b.error().message;

  c.nats().urls = {"not a url at all://"};
  auto b2 = NatsBroker::open(c);
  ASSERT_FALSE(b2);
  EXPECT_NE(b2.error().message.find("nats broker 'nats'"), std::string::npos) << b2.error().message;
}

TEST_F(BrokerTest, UnknownOptionIsRejected) {
  BrokerConfig c = js_config(server_);
  c.nats().options["fetch.min.bytes"] = "1";
  auto b = NatsBroker::open(c);
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::invalid_argument);
  EXPECT_NE(b.error().message.find("'fetch.min.bytes': unknown option"), std::string::npos)
      << b.error().message;
  c.nats().options = {{"ack_wait", "soon"}};
  auto b2 = NatsBroker::open(c);
  ASSERT_FALSE(b2);
  EXPECT_NE(b2.error().message.find("ack_wait"), std::string::npos);
}

TEST_F(BrokerTest, SeveralUrlsFirstOneDown) {
  NatsServer down;
  BrokerConfig c = js_config(server_);
  c.nats().urls = {down.url(), server_.url()};
  c.nats().options["connect_timeout"] = "500ms";
  auto b = NatsBroker::open(c);
  ASSERT_TRUE(b) << b.error().message;
}

TEST_F(BrokerTest, MissingStreamWithoutCreateIsAClearError) {
  auto b = NatsBroker::open(js_config(server_, /*create=*/false, "ORDERS"));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::invalid_argument);
  EXPECT_NE(b.error().message.find("stream 'ORDERS' does not exist"), std::string::npos)
      << b.error().message;
}

TEST_F(BrokerTest, CreateTrueCreatesTheStreamThenItIsFound) {
  {
    auto b = open_broker(js_config(server_, true, "ORDERS", {"orders.>"}));
    ASSERT_TRUE(b);
    EXPECT_EQ(b->stream(), "ORDERS");
  }
  auto again = open_broker(js_config(server_, /*create=*/false, "ORDERS", {"orders.>"}));
  ASSERT_TRUE(again);
  EXPECT_EQ(again->stream_subjects(), std::vector<std::string>{"orders.>"});
}

TEST_F(BrokerTest, JetStreamPublishAnswersWithTheStreamSequence) {
  auto b = open_broker(js_config(server_));
  ASSERT_TRUE(b);
  for (int i = 1; i <= 3; ++i) {
    auto r = publish_sync(b->sink(), "events.x", make_event("e" + std::to_string(i), "d"));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r.value().topic, "events.x");
    EXPECT_EQ(r.value().partition, 0);
    EXPECT_EQ(r.value().offset, i);
  }
  ASSERT_TRUE(b->sink().flush(5s));
  auto ev = b->browser()->get("events.x", 0, 2);
  ASSERT_TRUE(ev) << ev.error().message;
  EXPECT_EQ(ev.value().id, "e2");
}

TEST_F(BrokerTest, ManyAsyncPublishesAllAnswered) {
  auto b = open_broker(js_config(server_));
  ASSERT_TRUE(b);
  std::atomic<int> okc{0}, bad{0};
  const int n = 2000;
  for (int i = 0; i < n; ++i)
    b->sink().publish("events.bulk", make_event(std::to_string(i), "x"),
                      [&](Result<PublishAck> r) { (r ? okc : bad).fetch_add(1); });
  ASSERT_TRUE(b->sink().flush(10s));
  EXPECT_EQ(okc.load(), n);
  EXPECT_EQ(bad.load(), 0);
}

TEST_F(BrokerTest, CorePublishWhenNoStream) {
  BrokerConfig c = js_config(server_);
  c.nats().jetstream.reset();
  auto b = open_broker(c);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->browser(), nullptr);
  auto r = publish_sync(b->sink(), "plain.subject", make_event("c1", "x"));
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(r.value().offset, -1);
}

TEST_F(BrokerTest, InvalidSubjectIsRejected) {
  auto b = open_broker(js_config(server_));
  ASSERT_TRUE(b);
  auto r = publish_sync(b->sink(), "events.*", make_event("w"));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

}  // namespace
}  // namespace sluice::nats::testing

namespace sluice::nats::testing {
namespace {

TEST(NatsSettingsTest, KeyOptionsAndTheirBadForms) {
  BrokerConfig c;
  c.name = "nats";
  c.settings = NatsBrokerConfig{};
  auto d = parse_settings(c);
  ASSERT_TRUE(d);
  EXPECT_EQ(d.value().key_header, "sluice-key");
  EXPECT_EQ(d.value().key_token, -1);
  EXPECT_FALSE(d.value().max_ack_pending_set);
  c.nats().options = {{"key_header", "x-tenant"}, {"key_token", "2"}, {"max_ack_pending", "64"}};
  auto s = parse_settings(c);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_EQ(s.value().key_header, "x-tenant");
  EXPECT_EQ(s.value().key_token, 2);
  EXPECT_TRUE(s.value().max_ack_pending_set);
  EXPECT_EQ(s.value().max_ack_pending, 64);
  c.nats().options = {{"key_token", "last"}};
  ASSERT_TRUE(parse_settings(c));
  EXPECT_EQ(parse_settings(c).value().key_token, -1);
  for (const char* bad : {"", "two", "1.5", "999"}) {
    c.nats().options = {{"key_token", bad}};
    auto r = parse_settings(c);
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
    EXPECT_NE(r.error().message.find("option 'key_token'"), std::string::npos) << r.error().message;
  }
  for (const char* bad : {"", "has space", "a:b"}) {
    c.nats().options = {{"key_header", bad}};
    auto r = parse_settings(c);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("option 'key_header'"), std::string::npos) << r.error().message;
  }
}

TEST_F(BrokerTest, UnreachableServerAtStartIsAConfigError) {
  NatsServer unused;
  auto b = NatsBroker::open(js_config(unused));
  ASSERT_FALSE(b);
  EXPECT_EQ(b.error().code, Errc::invalid_argument);  // `sluice run` exits 2
  EXPECT_NE(b.error().message.find("check the broker's url"), std::string::npos)
      << b.error().message;
}

}  // namespace
}  // namespace sluice::nats::testing
