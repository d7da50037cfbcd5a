#include <gtest/gtest.h>

#include "dlq/record.h"

namespace sluice::dlq::testing {
namespace {

const seal::Keyring& keys() {
  static const seal::Keyring k = seal::Keyring::random();
  return k;
}

Event original() {
  Event e;
  e.id = "ev-1";
  e.source = "/src";
  e.type = "t";
  e.data = std::string("\x00\x01payload", 9);
  e.key = "k";
  e.headers = {{"trace", "abc"}};
  e.broker = "local";
  e.topic = "orders";
  e.partition = 2;
  e.offset = 40;
  e.attempt = 3;
  return e;
}

TEST(DeadLetter, RecordKeepsOriginalAndAddsDlqHeaders) {
  Failure f{"fn", Outcome::crash, "killed by signal SIGSEGV", 5, 1000, 2000};
  Event rec = make_record(original(), f, keys());
  EXPECT_EQ(rec.data, original().data);
  EXPECT_EQ(rec.key, "k");
  EXPECT_EQ(rec.id, "ev-1");
  ASSERT_NE(rec.header("trace"), nullptr);
  EXPECT_EQ(*rec.header("sluice-dlq-error-class"), "crash");
  EXPECT_EQ(*rec.header("sluice-dlq-attempts"), "5");
  EXPECT_EQ(*rec.header("sluice-dlq-original-offset"), "40");
  EXPECT_EQ(*rec.header("sluice-dlq-first-failure-time"), "1970-01-01T00:00:01.000Z");

  rec.topic = "fn.dlq";
  rec.partition = 0;
  rec.offset = 7;
  auto r = parse_record(rec, &keys());
  ASSERT_TRUE(r);
  EXPECT_EQ(r.value().id, "fn.dlq:0:7");
  EXPECT_EQ(r.value().function, "fn");
  EXPECT_EQ(r.value().attempts, 5u);
  EXPECT_EQ(r.value().first_failure_ms, 1000);
  EXPECT_EQ(r.value().last_failure_ms, 2000);
  EXPECT_EQ(r.value().original_topic, "orders");
  EXPECT_EQ(r.value().original_partition, 2);
  EXPECT_TRUE(r.value().verified) << r.value().unverified_reason;

  Event back = original_event(r.value());
  EXPECT_EQ(back.data, original().data);
  EXPECT_EQ(back.headers, original().headers);  // dlq headers gone, others kept
  EXPECT_EQ(back.partition, -1);
  EXPECT_EQ(back.attempt, 0u);
}

TEST(DeadLetter, DeadLetteringTwiceKeepsOneSetOfHeaders) {
  Failure f{"fn", Outcome::error, "x", 1, 1, 1};
  Event twice = make_record(make_record(original(), f, keys()), f, keys());
  size_t n = 0;
  for (auto& h : twice.headers) n += h.name == "sluice-dlq-function";
  EXPECT_EQ(n, 1u);
}

TEST(DeadLetter, PlainEventIsNotARecord) {
  auto r = parse_record(original(), &keys());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(DeadLetter, RecordIdsParseAndRejectBadForms) {
  auto id = parse_record_id("a.b.dlq:3:99");
  ASSERT_TRUE(id);
  EXPECT_EQ(id.value().topic, "a.b.dlq");
  EXPECT_EQ(id.value().partition, 3);
  EXPECT_EQ(id.value().offset, 99);
  for (const char* bad : {"", "x", "x:1", ":1:2", "x:-1:2", "x:1:y", "x:1:2:3z", "x::2"})
    EXPECT_FALSE(parse_record_id(bad)) << bad;
}

TEST(DeadLetter, JsonHasTheFieldsOfTheContract) {
  Event rec = make_record(original(), {"fn", Outcome::timeout, "slow", 2, 5, 6}, keys());
  rec.topic = "fn.dlq";
  rec.partition = 0;
  rec.offset = 1;
  auto j = to_json(parse_record(rec, &keys()).value(), true);
  for (const char* k : {"\"function\":\"fn\"", "\"error_class\":\"timeout\"", "\"attempts\":2",
                        "\"original\"", "\"headers\"", "\"verified\":true"})
    EXPECT_NE(j.find(k), std::string::npos) << k << " in " << j;
}

Event stored(Event e) {
  e.topic = "fn.dlq";
  e.partition = 0;
  e.offset = 3;
  return e;
}

TEST(DeadLetter, ForgedRecordIsUnverified) {
  // What a producer with write access to the dead-letter topic can write: the
  // headers, without a seal sluice made.
  Event forged = stored(original());
  forged.set_header("sluice-dlq-function", "fn");
  forged.set_header("sluice-dlq-error-class", "error");
  forged.set_header("sluice-dlq-original-topic", "payments");
  auto r = parse_record(forged, &keys());
  ASSERT_TRUE(r);
  EXPECT_FALSE(r.value().verified);
  EXPECT_EQ(r.value().unverified_reason, "no seal");
  EXPECT_NE(to_json(r.value(), false).find("\"verified\":false"), std::string::npos);
}

TEST(DeadLetter, ChangedFieldOrOtherKeyOrNoKeyIsUnverified) {
  Event rec = stored(make_record(original(), {"fn", Outcome::error, "boom", 3, 1, 2}, keys()));
  Event changed = rec;
  changed.set_header("sluice-dlq-original-topic", "payments");
  EXPECT_FALSE(parse_record(changed, &keys()).value().verified);
  Event other_payload = rec;
  other_payload.data = "other";
  EXPECT_FALSE(parse_record(other_payload, &keys()).value().verified);
  const seal::Keyring other = seal::Keyring::random();
  EXPECT_FALSE(parse_record(rec, &other).value().verified);
  EXPECT_FALSE(parse_record(rec, nullptr).value().verified);
  EXPECT_TRUE(parse_record(rec, &keys()).value().verified);
}

TEST(DeadLetter, SealCoversTheHeadersTheSealModuleCovers) {
  Event rec = make_record(original(), {"fn", Outcome::error, "boom", 3, 1, 2}, keys());
  for (const Header& h : rec.headers) {
    if (h.name.rfind(kHeaderPrefix, 0) != 0 || h.name == seal::seal_header(seal::Kind::dead_letter))
      continue;
    const auto covered = seal::covered_headers(seal::Kind::dead_letter);
    EXPECT_NE(std::find(covered.begin(), covered.end(), h.name), covered.end()) << h.name;
  }
}

}  // namespace
}  // namespace sluice::dlq::testing
