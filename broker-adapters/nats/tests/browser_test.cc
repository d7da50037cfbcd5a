// NatsBrowser (DLQ verbs, `sluice lag`) and the CloudEvents mapping through a real
// server (binary, structured, plain; headers preserved).
#include "broker-adapters/nats/tests/nats_server.h"
#include "core/cloudevents.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice::nats::testing {
namespace {

class BrowserTest : public NatsTest {
 protected:
  void SetUp() override {
    NatsTest::SetUp();
    broker_ = open_broker(js_config(server_));
    ASSERT_TRUE(broker_);
  }
  void TearDown() override {
    broker_.reset();
    NatsTest::TearDown();
  }
  // Publishes a raw message (another client's) to the stream.
  void raw_publish(const std::string& subj, const std::string& data,
                   const std::vector<std::pair<std::string, std::string>>& headers) {
    natsMsg* m = nullptr;
    ASSERT_EQ(natsMsg_Create(&m, subj.c_str(), nullptr, data.data(), static_cast<int>(data.size())),
              NATS_OK);
    for (auto& [k, v] : headers) ASSERT_EQ(natsMsgHeader_Add(m, k.c_str(), v.c_str()), NATS_OK);
    jsPubAck* pa = nullptr;
    jsErrCode jerr{};
    ASSERT_EQ(js_PublishMsg(&pa, broker_->conn().js(), m, nullptr, &jerr), NATS_OK);
    jsPubAck_Destroy(pa);
    natsMsg_Destroy(m);
  }
  std::unique_ptr<NatsBroker> broker_;
};

TEST_F(BrowserTest, ReadGetRemoveByTopic) {
  for (int i = 1; i <= 5; ++i) {
    const std::string topic = i % 2 ? "events.dlq" : "events.other";
    Event e = make_event("e" + std::to_string(i), "d" + std::to_string(i));
    e.headers = {{"sluice-dlq-function", "fn"}};
    ASSERT_TRUE(publish_sync(broker_->sink(), topic, std::move(e)));
  }
  TopicBrowser& br = *broker_->browser();
  auto all = br.read("events.dlq", -1, 0, 100);
  ASSERT_TRUE(all) << all.error().message;
  ASSERT_EQ(all.value().size(), 3u);
  EXPECT_EQ(all.value()[0].offset, 1);
  EXPECT_EQ(all.value()[1].offset, 3);
  EXPECT_EQ(all.value()[2].offset, 5);
  EXPECT_EQ(all.value()[1].id, "e3");
  EXPECT_EQ(all.value()[1].data, "d3");
  ASSERT_NE(all.value()[1].header("sluice-dlq-function"), nullptr);
  EXPECT_GT(all.value()[1].broker_timestamp_ms, 0);

  auto page = br.read("events.dlq", 0, 2, 1);
  ASSERT_TRUE(page);
  ASSERT_EQ(page.value().size(), 1u);
  EXPECT_EQ(page.value()[0].offset, 3);

  auto one = br.get("events.dlq", 0, 3);
  ASSERT_TRUE(one) << one.error().message;
  EXPECT_EQ(one.value().id, "e3");
  auto wrong = br.get("events.dlq", 0, 2);  // another subject
  ASSERT_FALSE(wrong);
  EXPECT_EQ(wrong.error().code, Errc::not_found);

  ASSERT_TRUE(br.remove("events.dlq", 0, 3));
  auto gone = br.get("events.dlq", 0, 3);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().code, Errc::not_found);
  EXPECT_FALSE(br.remove("events.dlq", 0, 2));  // not this topic: untouched
  auto left = br.read("events.dlq", -1, 0, 100);
  ASSERT_TRUE(left);
  EXPECT_EQ(left.value().size(), 2u);
}

TEST_F(BrowserTest, CloudEventModesThroughTheServer) {
  raw_publish("events.bin", "{\"a\":1}",
              {{"ce-specversion", "1.0"}, {"ce-id", "b-1"}, {"ce-source", "/s"},
               {"ce-type", "t.bin"}, {"content-type", "application/json"}, {"X-Keep", "1"}});
  Event st;
  st.id = "s-1";
  st.source = "/s";
  st.type = "t.struct";
  st.data = "hi";
  st.datacontenttype = "text/plain";
  raw_publish("events.struct", cloudevents::to_structured(st),
              {{"content-type", "application/cloudevents+json"}, {"X-Keep", "2"}});
  raw_publish("events.plain", "raw", {{"X-Keep", "3"}, {"sluice-key", "kk"}});
  raw_publish("events.bad", "raw", {{"ce-id", "no-source"}});

  auto src = broker_->make_source("events.>", "fn");
  ASSERT_TRUE(src) << src.error().message;
  Collector got;
  ASSERT_TRUE(src.value()->start(got));
  ASSERT_TRUE(got.wait_held(4));
  auto ds = got.take();
  EXPECT_EQ(ds[0].event.id, "b-1");
  EXPECT_EQ(ds[0].event.type, "t.bin");
  EXPECT_EQ(ds[0].event.data, "{\"a\":1}");
  EXPECT_EQ(*ds[0].event.header("x-keep"), "1");
  EXPECT_EQ(ds[1].event.id, "s-1");
  EXPECT_EQ(ds[1].event.data, "hi");
  EXPECT_EQ(*ds[1].event.header("x-keep"), "2");
  EXPECT_EQ(ds[2].event.id, "EVENTS/3");
  EXPECT_EQ(ds[2].event.source, "/nats/EVENTS");
  EXPECT_EQ(ds[2].event.key, "kk");
  EXPECT_EQ(*ds[2].event.header("x-keep"), "3");
  EXPECT_EQ(ds[3].event.id, "EVENTS/4");
  EXPECT_NE(ds[3].event.header("sluice-decode-error"), nullptr);
  for (auto& d : ds) d.ack();
  // Counted in the broker's probe and exported.
  metrics::Metrics metrics;
  metrics.add_probe("nats", broker_->probe());
  EXPECT_EQ(testsupport::sample(metrics.text(),
                                R"(sluice_broker_errors_total{broker="nats",kind="decode"})"),
            1.0)
      << metrics.text();

  // The browser decodes the same way.
  auto b = broker_->browser()->get("events.plain", 0, 3);
  ASSERT_TRUE(b);
  EXPECT_EQ(b.value().id, "EVENTS/3");
  EXPECT_EQ(*b.value().header("x-keep"), "3");
  auto r = broker_->browser()->read("events.bin", 0, 0, 10);
  ASSERT_TRUE(r);
  ASSERT_EQ(r.value().size(), 1u);
  EXPECT_EQ(r.value()[0].id, "b-1");
  EXPECT_EQ(*r.value()[0].header("x-keep"), "1");
}

TEST_F(BrowserTest, LagByTopicAndGroup) {
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(publish_sync(broker_->sink(), "events.q", make_event(std::to_string(i))));
  auto src = broker_->make_source("events.q", "lagger");
  ASSERT_TRUE(src);  // creates the durable; not started: everything pending
  auto l = broker_->browser()->lag("events.q", "lagger");
  ASSERT_TRUE(l) << l.error().message;
  ASSERT_EQ(l.value().size(), 1u);
  EXPECT_EQ(l.value()[0].lag, 4);
  EXPECT_EQ(l.value()[0].partition, 0);
  ASSERT_TRUE(l.value()[0].lag_seconds.has_value());
}

}  // namespace
}  // namespace sluice::nats::testing
