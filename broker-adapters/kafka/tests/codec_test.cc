// Records in binary, structured and plain form, and a malformed CloudEvent, as the
// source hands them out; and an Event's round trip through the sink.
#include "broker-adapters/kafka/kafka_broker.h"
#include "broker-adapters/kafka/kafka_codec.h"
#include "broker-adapters/kafka/tests/kafka_env.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice::kafka::testing {
namespace {

const std::string* ext(const Event& e, const char* name) { return e.extension(name); }

TEST(KafkaCodec, RecordsBecomeEvents) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("codec");
  RawProducer p;
  const int64_t o_bin = p.produce(topic, 0, "bin-data", "k1",
                                  {{"ce_specversion", "1.0"},
                                   {"ce_id", "id-1"},
                                   {"ce_source", "/src"},
                                   {"ce_type", "t.bin"},
                                   {"ce_subject", "sub"},
                                   {"ce_myext", "x"},
                                   {"content-type", "text/plain"},
                                   {"x-trace", "abc"}});
  const int64_t o_struct = p.produce(
      topic, 0,
      R"({"specversion":"1.0","id":"id-2","source":"/s2","type":"t.struct","data":{"n":1}})",
      "k2", {{"content-type", "application/cloudevents+json; charset=utf-8"}, {"x-h", "1"}});
  const int64_t o_plain =
      p.produce(topic, 0, "plain-data", "k3", {{"h1", "v1"}, {"content-type", "text/csv"}});
  const int64_t o_bad = p.produce(topic, 0, "bad-data", "", {{"ce_id", "only-an-id"}});

  Collector c;
  auto src = b->make_source(topic, "");
  ASSERT_TRUE(src) << src.error().message;
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(4));
  auto es = c.events();
  auto tags = c.tags();
  ASSERT_EQ(es.size(), 4u);
  for (size_t i = 0; i < es.size(); ++i) {
    EXPECT_EQ(es[i].partition, 0);
    EXPECT_EQ(tags[i].partition, es[i].partition);
    EXPECT_EQ(tags[i].offset, es[i].offset);
    EXPECT_GT(es[i].broker_timestamp_ms, 0);
    EXPECT_EQ(es[i].topic, topic);
  }

  const Event& bin = es[0];
  EXPECT_EQ(bin.offset, o_bin);
  EXPECT_EQ(bin.id, "id-1");
  EXPECT_EQ(bin.source, "/src");
  EXPECT_EQ(bin.type, "t.bin");
  EXPECT_EQ(bin.subject, "sub");
  EXPECT_EQ(bin.datacontenttype, "text/plain");
  ASSERT_NE(ext(bin, "myext"), nullptr);
  EXPECT_EQ(*ext(bin, "myext"), "x");
  EXPECT_EQ(bin.key, "k1");
  EXPECT_EQ(bin.data, "bin-data");
  ASSERT_NE(bin.header("x-trace"), nullptr);
  EXPECT_EQ(*bin.header("x-trace"), "abc");
  EXPECT_EQ(bin.header("ce_id"), nullptr);

  const Event& st = es[1];
  EXPECT_EQ(st.offset, o_struct);
  EXPECT_EQ(st.id, "id-2");
  EXPECT_EQ(st.type, "t.struct");
  EXPECT_EQ(st.data, R"({"n":1})");
  EXPECT_EQ(st.key, "k2");
  ASSERT_NE(st.header("x-h"), nullptr);

  const Event& pl = es[2];
  EXPECT_EQ(pl.offset, o_plain);
  EXPECT_EQ(pl.id, topic + "/0/" + std::to_string(o_plain));
  EXPECT_EQ(pl.source, "/kafka/" + topic);
  EXPECT_EQ(pl.type, "io.sluice.kafka.record");
  EXPECT_EQ(pl.datacontenttype, "text/csv");
  EXPECT_FALSE(pl.time.empty());
  EXPECT_EQ(pl.key, "k3");
  EXPECT_EQ(pl.data, "plain-data");
  ASSERT_NE(pl.header("h1"), nullptr);
  EXPECT_EQ(*pl.header("h1"), "v1");
  EXPECT_EQ(pl.header("sluice-decode-error"), nullptr);

  const Event& bad = es[3];  // delivered, never dropped
  EXPECT_EQ(bad.offset, o_bad);
  EXPECT_EQ(bad.id, topic + "/0/" + std::to_string(o_bad));
  EXPECT_EQ(bad.type, "io.sluice.kafka.record");
  EXPECT_EQ(bad.data, "bad-data");
  EXPECT_NE(bad.header("sluice-decode-error"), nullptr);
  ASSERT_NE(bad.header("ce_id"), nullptr);
  EXPECT_TRUE(bad.key.empty());

  // Counted by the broker's probe and exported.
  metrics::Metrics metrics;
  metrics.add_probe("kafka", b->probe());
  const std::string text = metrics.text();
  EXPECT_EQ(testsupport::sample(text, R"(sluice_broker_errors_total{broker="kafka",kind="decode"})"),
            1.0)
      << text;
}

TEST(KafkaCodec, SinkPublishesBinaryModeThatTheSourceReadsBack) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string topic = unique("roundtrip");
  Event e = event("payload\0with-nul", "the-key");
  e.data.push_back('\0');
  e.subject = "subj";
  e.datacontenttype = "application/octet-stream";
  e.time = "2026-01-02T03:04:05.678Z";
  e.extensions.emplace_back("traceparent", "00-abc-01");
  e.headers.push_back({"sluice-dlq-function", "f"});
  e.headers.push_back({"x-bin", std::string("a\0b", 3)});
  auto ack = publish_sync(b->sink(), topic, e);
  ASSERT_TRUE(ack) << ack.error().message;

  Collector c;
  auto src = b->make_source(topic, "");
  ASSERT_TRUE(src);
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(1));
  const Event got = c.events()[0];
  EXPECT_EQ(got.partition, ack.value().partition);
  EXPECT_EQ(got.offset, ack.value().offset);
  EXPECT_EQ(got.id, e.id);
  EXPECT_EQ(got.source, e.source);
  EXPECT_EQ(got.type, e.type);
  EXPECT_EQ(got.subject, e.subject);
  EXPECT_EQ(got.time, e.time);
  EXPECT_EQ(got.datacontenttype, e.datacontenttype);
  EXPECT_EQ(got.data, e.data);
  EXPECT_EQ(got.key, "the-key");
  ASSERT_NE(ext(got, "traceparent"), nullptr);
  EXPECT_EQ(*ext(got, "traceparent"), "00-abc-01");
  ASSERT_NE(got.header("sluice-dlq-function"), nullptr);
  ASSERT_NE(got.header("x-bin"), nullptr);
  EXPECT_EQ(*got.header("x-bin"), std::string("a\0b", 3));
}

// The dead letter of a plain record is that record (key, value, headers untouched)
// plus the sluice-dlq-* headers: no ce_* headers are added to it.
TEST(KafkaCodec, DeadLetterOfAPlainRecordStaysPlain) {
  SLUICE_NEED_KAFKA();
  auto b = open_broker(config());
  ASSERT_TRUE(b);
  const std::string in = unique("plain-in"), dlq = unique("plain-dlq");
  RawProducer p;
  p.produce(in, 2, "raw value", "raw-key", {{"trace", "abc"}, {"content-type", "text/csv"}});
  Collector c;
  auto src = b->make_source(in, "");
  ASSERT_TRUE(src);
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(1));
  Event dead = c.events()[0];
  ASSERT_EQ(dead.type, kPlainType);
  dead.headers.push_back({"sluice-dlq-function", "f"});
  dead.headers.push_back({"sluice-dlq-attempts", "3"});
  ASSERT_TRUE(publish_sync(b->sink(), dlq, dead));

  Collector d;
  auto dsrc = b->make_source(dlq, "");
  ASSERT_TRUE(dsrc);
  ASSERT_TRUE(dsrc.value()->start(d));
  ASSERT_TRUE(d.wait_count(1));
  const Event got = d.events()[0];
  EXPECT_EQ(got.type, kPlainType);  // still a plain record
  EXPECT_EQ(got.key, "raw-key");
  EXPECT_EQ(got.data, "raw value");
  const Headers want{{"trace", "abc"},
                     {"content-type", "text/csv"},
                     {"sluice-dlq-function", "f"},
                     {"sluice-dlq-attempts", "3"}};
  EXPECT_EQ(got.headers, want);

  // After a trip through a retry topic (as a CloudEvent) the content type is only
  // the datacontenttype: it goes back into the record's headers.
  Event retried = dead;
  std::erase_if(retried.headers, [](const Header& h) { return h.name == "content-type"; });
  ASSERT_EQ(retried.datacontenttype, "text/csv");
  ASSERT_TRUE(publish_sync(b->sink(), dlq, retried));
  ASSERT_TRUE(d.wait_count(2));
  EXPECT_EQ(d.events()[1].headers, (Headers{{"trace", "abc"},
                                            {"sluice-dlq-function", "f"},
                                            {"sluice-dlq-attempts", "3"},
                                            {"content-type", "text/csv"}}));
}

}  // namespace
}  // namespace sluice::kafka::testing
