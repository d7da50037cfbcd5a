#include <gtest/gtest.h>

#include <ctime>
#include <cstdio>
#include <set>

#include "core/event.h"
#include "core/log_limit.h"
#include "core/runtime.h"

namespace sluice::testing {
namespace {

TEST(Event, ProtoRoundTripKeepsEveryField) {
  Event e;
  e.id = "abc";
  e.source = "/src";
  e.type = "t";
  e.subject = "s";
  e.datacontenttype = "text/plain";
  e.time = "2026-11-25T09:43:44.123Z";
  e.extensions = {{"partitionkey", "k1"}};
  e.data = std::string("bin\0ary", 7);
  e.broker = "local";
  e.topic = "orders";
  e.partition = 3;
  e.offset = 42;
  e.key = "k1";
  e.headers = {{"a", "1"}, {"b", "2"}};
  e.attempt = 2;
  e.first_attempt_time_ms = 1000;
  auto back = decode(encode(e));
  ASSERT_TRUE(back);
  const Event& b = back.value();
  EXPECT_EQ(b.id, e.id);
  EXPECT_EQ(b.data, e.data);
  EXPECT_EQ(b.headers, e.headers);
  EXPECT_EQ(b.extensions, e.extensions);
  EXPECT_EQ(b.partition, 3);
  EXPECT_EQ(b.offset, 42);
  EXPECT_EQ(b.attempt, 2u);
  EXPECT_EQ(b.time, e.time);
}

TEST(Event, DecodeGarbageIsCorrupt) {
  auto r = decode(std::string("\xff\xff\xff\xff\x0f", 5));
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::corrupt);
}

TEST(Event, HeaderLookupIsCaseInsensitiveAndSetReplaces) {
  Event e;
  e.set_header("Content-Type", "a");
  e.set_header("content-type", "b");
  ASSERT_EQ(e.headers.size(), 1u);
  ASSERT_NE(e.header("CONTENT-TYPE"), nullptr);
  EXPECT_EQ(*e.header("CONTENT-TYPE"), "b");
  EXPECT_EQ(e.header("missing"), nullptr);
}

TEST(Rfc3339, ParsesZuluOffsetsAndFractions) {
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01Z").value(), 1000);
  EXPECT_EQ(parse_rfc3339("1970-01-01T00:00:01.5Z").value(), 1500);
  EXPECT_EQ(parse_rfc3339("1970-01-01T01:00:00+01:00").value(), 0);
  EXPECT_EQ(format_rfc3339(1500), "1970-01-01T00:00:01.500Z");
  auto now = now_unix_ms();
  EXPECT_EQ(parse_rfc3339(format_rfc3339(now)).value(), now);
}

TEST(Rfc3339, FormatAgreesWithGmtimeOverCenturies) {
  // Leap years, century rules, negative times, the last millisecond of a day.
  for (int64_t ms = -2208988800000; ms < 32503680000000; ms += 7776000123) {
    for (int64_t at : {ms, ms - ms % 86400000 - 1}) {
      std::time_t secs = static_cast<std::time_t>(at / 1000 - (at % 1000 < 0 ? 1 : 0));
      std::tm tm{};
      gmtime_r(&secs, &tm);
      char want[64];
      std::snprintf(want, sizeof want, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    static_cast<int>(((at % 1000) + 1000) % 1000));
      ASSERT_EQ(format_rfc3339(at), want) << at;
      ASSERT_EQ(parse_rfc3339(want).value(), at) << want;
    }
  }
  EXPECT_EQ(format_rfc3339(951782400000), "2000-02-29T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(-1), "1969-12-31T23:59:59.999Z");
}

TEST(Rfc3339, RejectsBadForms) {
  for (const char* bad : {"", "2026-11-25", "2026-13-01T00:00:00Z", "2026-11-25T00:00:00",
                          "2026-11-25T00:00:00+0100", "2026-11-25T25:00:00Z",
                          "2026-11-25T00:00:00.Z", "2026-11-25T00:00:00Zjunk"}) {
    EXPECT_FALSE(parse_rfc3339(bad)) << bad;
  }
}

TEST(Outcome, ClassifiesIntoThreeVerdicts) {
  EXPECT_EQ(classify(Outcome::success), Verdict::ok);
  EXPECT_EQ(classify(Outcome::error), Verdict::retry);
  EXPECT_EQ(classify(Outcome::timeout), Verdict::retry);
  EXPECT_EQ(classify(Outcome::crash), Verdict::retry);
  EXPECT_EQ(classify(Outcome::rejected), Verdict::fatal);
}

TEST(EventId, IsUniqueUuid) {
  auto a = new_event_id(), b = new_event_id();
  EXPECT_EQ(a.size(), 36u);
  EXPECT_NE(a, b);
}

// Ids come from buffered random blocks: across several refills every id is a distinct,
// well-formed UUID v4 (version nibble 4, variant 10xx, lower-case hex).
TEST(EventId, ManyAreDistinctVersion4) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    std::string id = new_event_id();
    ASSERT_EQ(id.size(), 36u);
    for (size_t k = 0; k < id.size(); ++k) {
      if (k == 8 || k == 13 || k == 18 || k == 23) {
        ASSERT_EQ(id[k], '-') << id;
      } else {
        ASSERT_TRUE((id[k] >= '0' && id[k] <= '9') || (id[k] >= 'a' && id[k] <= 'f')) << id;
      }
    }
    EXPECT_EQ(id[14], '4') << id;
    EXPECT_NE(std::string("89ab").find(id[19]), std::string::npos) << id;
    EXPECT_TRUE(seen.insert(id).second) << "repeated id " << id;
  }
}

}  // namespace
}  // namespace sluice::testing

// LogLimit: one line per interval, and the line says how many were kept quiet.

TEST(LogLimit, OneLinePerIntervalCountingTheQuietOnes) {
  sluice::LogLimit limit(std::chrono::milliseconds(1000));
  ASSERT_EQ(limit.allow(10'000), std::optional<uint64_t>(0));
  EXPECT_FALSE(limit.allow(10'001));
  EXPECT_FALSE(limit.allow(10'999));
  EXPECT_EQ(limit.allow(11'000), std::optional<uint64_t>(2));
  EXPECT_FALSE(limit.allow(11'500));
  EXPECT_EQ(limit.allow(20'000), std::optional<uint64_t>(1));
  EXPECT_EQ(sluice::suppressed_note(0), "");
  EXPECT_EQ(sluice::suppressed_note(3), " (3 more since the last report)");
}
