// NATS message <-> Event mapping (the CloudEvents NATS binding), on messages built
// in memory: binary, structured, plain, malformed, key rules, round trip.
#include <gtest/gtest.h>

#include "broker-adapters/nats/nats_codec.h"
#include "broker-adapters/nats/nats_conn.h"
#include "core/cloudevents.h"

namespace sluice::nats::testing {
namespace {

// nats.c's message functions need the library opened (a connection does it).
class NatsLib : public ::testing::Environment {
 public:
  void SetUp() override { ASSERT_EQ(nats_Open(-1), NATS_OK); }
};
const auto* const kNatsLib = ::testing::AddGlobalTestEnvironment(new NatsLib);

MsgPtr msg(const std::string& subject, const std::string& data,
           const std::vector<std::pair<std::string, std::string>>& headers) {
  natsMsg* m = nullptr;
  EXPECT_EQ(natsMsg_Create(&m, subject.c_str(), nullptr, data.data(), static_cast<int>(data.size())),
            NATS_OK);
  for (auto& [k, v] : headers) EXPECT_EQ(natsMsgHeader_Add(m, k.c_str(), v.c_str()), NATS_OK);
  return MsgPtr(m);
}

const MsgCoords kAt{"nats", "EVENTS", 42, 1700000000000};

TEST(NatsCodec, PlainMessageBecomesEventWithStreamSequenceId) {
  auto m = msg("events.orders.eu", "hello", {{"X-Trace", "abc"}, {"Content-Type", "text/plain"}});
  Event e = msg_to_event(m.get(), kAt);
  EXPECT_EQ(e.id, "EVENTS/42");
  EXPECT_EQ(e.source, "/nats/EVENTS");
  EXPECT_EQ(e.type, "io.sluice.nats.message");
  EXPECT_EQ(e.data, "hello");
  EXPECT_EQ(e.datacontenttype, "text/plain");
  EXPECT_EQ(e.topic, "events.orders.eu");
  EXPECT_EQ(e.partition, 0);
  EXPECT_EQ(e.offset, 42);
  EXPECT_EQ(e.key, "eu");  // last subject token
  EXPECT_EQ(e.broker, "nats");
  EXPECT_EQ(e.broker_timestamp_ms, 1700000000000);
  ASSERT_NE(e.header("x-trace"), nullptr);
  EXPECT_EQ(*e.header("x-trace"), "abc");
}

TEST(NatsCodec, SluiceKeyHeaderWins) {
  auto m = msg("events.a", "x", {{"sluice-key", "k1"}});
  EXPECT_EQ(msg_to_event(m.get(), kAt).key, "k1");
}

TEST(NatsCodec, BinaryModeReadsCeHeaders) {
  auto m = msg("events.a", "{\"n\":1}",
               {{"ce-specversion", "1.0"}, {"ce-id", "e-1"}, {"ce-source", "/src"},
                {"ce-type", "t.created"}, {"ce-partitionkey", "pk"}, {"content-type", "application/json"},
                {"X-Other", "kept"}});
  Event e = msg_to_event(m.get(), kAt);
  EXPECT_EQ(e.id, "e-1");
  EXPECT_EQ(e.source, "/src");
  EXPECT_EQ(e.type, "t.created");
  EXPECT_EQ(e.datacontenttype, "application/json");
  EXPECT_EQ(e.data, "{\"n\":1}");
  EXPECT_EQ(e.key, "pk");
  EXPECT_EQ(e.offset, 42);
  ASSERT_NE(e.header("x-other"), nullptr);
  EXPECT_EQ(e.header(kDecodeErrorHeader), nullptr);
}

TEST(NatsCodec, StructuredModeParsesJson) {
  Event src;
  src.id = "s-1";
  src.source = "/s";
  src.type = "t";
  src.datacontenttype = "text/plain";
  src.data = "body";
  auto m = msg("events.b", cloudevents::to_structured(src),
               {{"Content-Type", "application/cloudevents+json; charset=utf-8"}, {"X-H", "1"}});
  Event e = msg_to_event(m.get(), kAt);
  EXPECT_EQ(e.id, "s-1");
  EXPECT_EQ(e.type, "t");
  EXPECT_EQ(e.data, "body");
  ASSERT_NE(e.header("x-h"), nullptr);
  EXPECT_EQ(e.header("content-type"), nullptr);
}

TEST(NatsCodec, MalformedCloudEventIsDeliveredPlainWithDecodeError) {
  auto bin = msg("events.c", "raw", {{"ce-id", "only-an-id"}});  // no source/type
  bool bad = false;
  Event e = msg_to_event(bin.get(), kAt, {}, &bad);
  EXPECT_TRUE(bad);
  EXPECT_EQ(e.id, "EVENTS/42");
  EXPECT_EQ(e.data, "raw");
  EXPECT_NE(e.header(kDecodeErrorHeader), nullptr);
  ASSERT_NE(e.header("ce-id"), nullptr);

  auto st = msg("events.c", "{not json", {{"content-type", "application/cloudevents+json"}});
  bad = false;
  Event s = msg_to_event(st.get(), kAt, {}, &bad);
  EXPECT_TRUE(bad);
  EXPECT_EQ(s.type, "io.sluice.nats.message");
  EXPECT_EQ(s.data, "{not json");
  EXPECT_NE(s.header(kDecodeErrorHeader), nullptr);
}

TEST(NatsCodec, EncodeDecodeRoundTrip) {
  Event src;
  src.id = "r-1";
  src.source = "/r";
  src.type = "t.r";
  src.subject = "sub ject";
  src.datacontenttype = "application/octet-stream";
  src.data = std::string("a\0b", 3);
  src.key = "kk";
  src.extensions = {{"traceparent", "00-abc"}};
  src.headers = {{"X-App", "v"}};
  auto m = event_to_msg("events.rt", src);
  ASSERT_TRUE(m) << m.error().message;
  Event e = msg_to_event(m.value().get(), kAt);
  EXPECT_EQ(e.id, "r-1");
  EXPECT_EQ(e.subject, "sub ject");
  EXPECT_EQ(e.data, src.data);
  EXPECT_EQ(e.key, "kk");
  ASSERT_NE(e.extension("traceparent"), nullptr);
  ASSERT_NE(e.header("x-app"), nullptr);
  EXPECT_EQ(*e.header("x-app"), "v");
}

TEST(NatsCodec, HeaderWithNewlineIsRejected) {
  Event src = Event{};
  src.id = "x";
  src.source = "/x";
  src.type = "t";
  src.headers = {{"X-Bad", "a\r\nb"}};
  auto m = event_to_msg("events.x", src);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error().code, Errc::invalid_argument);
}

TEST(NatsSubjects, MatchAndCover) {
  EXPECT_TRUE(subject_matches("events.>", "events.a.b"));
  EXPECT_FALSE(subject_matches("events.>", "events"));
  EXPECT_TRUE(subject_matches("events.*.x", "events.a.x"));
  EXPECT_FALSE(subject_matches("events.*", "events.a.b"));
  EXPECT_TRUE(subject_covers("events.>", "events.*.x"));
  EXPECT_TRUE(subject_covers("events.>", "events.>"));
  EXPECT_FALSE(subject_covers("events.*", "events.>"));
  EXPECT_FALSE(subject_covers("events.a", "events.*"));
}

}  // namespace
}  // namespace sluice::nats::testing

namespace sluice::nats::testing {
namespace {

TEST(NatsCodec, SubjectTokenPositions) {
  EXPECT_EQ(subject_token("events.tenant1.created", 1), "events");
  EXPECT_EQ(subject_token("events.tenant1.created", 2), "tenant1");
  EXPECT_EQ(subject_token("events.tenant1.created", 3), "created");
  EXPECT_EQ(subject_token("events.tenant1.created", 4), "");
  EXPECT_EQ(subject_token("events.tenant1.created", -1), "created");
  EXPECT_EQ(subject_token("events.tenant1.created", -2), "tenant1");
  EXPECT_EQ(subject_token("events.tenant1.created", -3), "events");
  EXPECT_EQ(subject_token("events.tenant1.created", -4), "");
  EXPECT_EQ(subject_token("events.tenant1.created", 0), "");
  EXPECT_EQ(subject_token("single", 1), "single");
  EXPECT_EQ(subject_token("single", -1), "single");
  EXPECT_EQ(subject_token("", -1), "");
}

TEST(NatsCodec, KeyRuleHeaderThenPartitionKeyThenSubjectToken) {
  const KeyRule tenant{"x-tenant", 2};
  // The configured header wins.
  auto a = msg("events.t1.created", "x", {{"X-Tenant", "acme"}, {"sluice-key", "ignored"}});
  EXPECT_EQ(msg_to_event(a.get(), kAt, tenant).key, "acme");
  // Without it: the CloudEvents partitionkey.
  auto b = msg("events.t1.created", "x",
               {{"ce-specversion", "1.0"}, {"ce-id", "1"}, {"ce-source", "/s"}, {"ce-type", "t"},
                {"ce-partitionkey", "pk"}});
  EXPECT_EQ(msg_to_event(b.get(), kAt, tenant).key, "pk");
  // Neither: the chosen subject token.
  auto c = msg("events.t1.created", "x", {{"sluice-key", "not-the-configured-header"}});
  EXPECT_EQ(msg_to_event(c.get(), kAt, tenant).key, "t1");
  // Token 0: no key (the dispatcher runs such events unordered).
  auto d = msg("events.t1.created", "x", {});
  EXPECT_EQ(msg_to_event(d.get(), kAt, KeyRule{"sluice-key", 0}).key, "");
  // A subject shorter than the position: no key.
  auto e = msg("events", "x", {});
  EXPECT_EQ(msg_to_event(e.get(), kAt, tenant).key, "");
}

// The reply (ack) subject of a JetStream message, parsed without nats.c.
TEST(NatsAckSubject, V1NineTokens) {
  AckMeta m;
  ASSERT_TRUE(parse_ack_subject("$JS.ACK.EVENTS.fn.3.1042.77.1700000000123456789.12", m));
  EXPECT_EQ(m.domain, "");
  EXPECT_EQ(m.stream, "EVENTS");
  EXPECT_EQ(m.consumer, "fn");
  EXPECT_EQ(m.delivered, 3u);
  EXPECT_EQ(m.stream_seq, 1042u);
  EXPECT_EQ(m.consumer_seq, 77u);
  EXPECT_EQ(m.timestamp_ns, 1700000000123456789);
  EXPECT_EQ(m.pending, 12u);
}

TEST(NatsAckSubject, V2TwelveTokensWithDomainAndAccountHash) {
  AckMeta m;
  ASSERT_TRUE(parse_ack_subject(
      "$JS.ACK.hub.ACCHASH123.EVENTS.fn.1.5.4.1700000000000000000.0.XyZrandom", m));
  EXPECT_EQ(m.domain, "hub");
  EXPECT_EQ(m.stream, "EVENTS");
  EXPECT_EQ(m.consumer, "fn");
  EXPECT_EQ(m.delivered, 1u);
  EXPECT_EQ(m.stream_seq, 5u);
  EXPECT_EQ(m.consumer_seq, 4u);
  EXPECT_EQ(m.timestamp_ns, 1700000000000000000);
  EXPECT_EQ(m.pending, 0u);
  // "_" = no domain; 11 tokens (no random token) and more than 12 are accepted too,
  // as nats.c does (it looks at the first 9 after $JS.ACK).
  ASSERT_TRUE(parse_ack_subject("$JS.ACK._.H.S.c.2.9.8.7.6.r", m));
  EXPECT_EQ(m.domain, "");
  EXPECT_EQ(m.stream, "S");
  EXPECT_EQ(m.delivered, 2u);
  EXPECT_EQ(m.stream_seq, 9u);
  ASSERT_TRUE(parse_ack_subject("$JS.ACK._.H.S.c.2.9.8.7.6", m));
  EXPECT_EQ(m.pending, 6u);
  ASSERT_TRUE(parse_ack_subject("$JS.ACK._.H.S.c.2.9.8.7.6.r.future.tokens", m));
  EXPECT_EQ(m.stream_seq, 9u);
}

TEST(NatsAckSubject, BadFormsAreRefused) {
  AckMeta m;
  for (const char* bad : {
           "",                                             // empty
           "$JS.ACK.",                                     // prefix only
           "$JS.ACK.S.c.1.2.3.4",                          // 8 tokens
           "$JS.ACK.S.c.1.2.3.4.5.6",                      // 10 tokens
           "$JS.ACK.D.H.S.c.1.2.3.4",                      // 10 tokens (v2 short)
           "$JS.NAK.S.c.1.2.3.4.5",                        // another prefix
           "$js.ack.S.c.1.2.3.4.5",                        // case matters
           "_INBOX.abc",                                   // not an ack subject
           "$JS.ACK.S.c.x.2.3.4.5",                        // non-numeric delivered
           "$JS.ACK.S.c.1.2.3.4.-5",                       // a sign
           "$JS.ACK.S.c.1..3.4.5",                         // empty number
           "$JS.ACK..c.1.2.3.4.5",                         // empty stream
           "$JS.ACK.S..1.2.3.4.5",                         // empty consumer
           "$JS.ACK.S.c.1.9223372036854775808.3.4.5",      // above INT64_MAX
           "$JS.ACK.S.c.1.99999999999999999999.3.4.5",     // 20 digits
           "$JS.ACK.D.H.S.c.1.2.3.x.5.r",                  // v2, bad timestamp
       }) {
    EXPECT_FALSE(parse_ack_subject(bad, m)) << bad;
  }
  // The largest accepted number.
  ASSERT_TRUE(parse_ack_subject("$JS.ACK.S.c.1.9223372036854775807.3.4.5", m));
  EXPECT_EQ(m.stream_seq, 9223372036854775807u);
}

}  // namespace
}  // namespace sluice::nats::testing
