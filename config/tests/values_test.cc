// parse_duration, parse_size, listen addresses and the "did you mean" distance.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/values.h"

namespace sluice::config::testing {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, AcceptsGoStyle) {
  EXPECT_EQ(parse_duration("5s").value(), 5000ms);
  EXPECT_EQ(parse_duration("200ms").value(), 200ms);
  EXPECT_EQ(parse_duration("1m").value(), 60000ms);
  EXPECT_EQ(parse_duration("1h30m").value(), 5400000ms);
  EXPECT_EQ(parse_duration("1.5s").value(), 1500ms);
  EXPECT_EQ(parse_duration(".5s").value(), 500ms);
  EXPECT_EQ(parse_duration("2500us").value(), 3ms);  // rounded up, never shortened
  EXPECT_EQ(parse_duration("250us").value(), 1ms);
  EXPECT_EQ(parse_duration("1000000ns").value(), 1ms);
  EXPECT_EQ(parse_duration("0s").value(), 0ms);
  EXPECT_EQ(parse_duration("1m0.5s").value(), 60500ms);
}

TEST(ParseDuration, RejectsTheRest) {
  for (const char* bad : {"", "5", "1.5", "-5s", "+5s", "5x", "5sec", "s", "five", "5 s", "1h30",
                          ".s", "99999999999999999999s", "3000000h"}) {
    auto r = parse_duration(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("expected a duration like 5s"), std::string::npos) << bad;
  }
  EXPECT_NE(parse_duration("5").error().message.find("missing unit"), std::string::npos);
  EXPECT_NE(parse_duration("5sec").error().message.find("unknown unit \"sec\""), std::string::npos);
}

TEST(ParseSize, AcceptsBytesAndUnits) {
  EXPECT_EQ(parse_size("1024").value(), 1024u);
  EXPECT_EQ(parse_size("0").value(), 0u);
  EXPECT_EQ(parse_size("7B").value(), 7u);
  EXPECT_EQ(parse_size("512KiB").value(), 512u * 1024);
  EXPECT_EQ(parse_size("1MiB").value(), 1u << 20);
  EXPECT_EQ(parse_size("1GiB").value(), 1ull << 30);
  EXPECT_EQ(parse_size("10KB").value(), 10000u);
  EXPECT_EQ(parse_size("10MB").value(), 10000000u);
  EXPECT_EQ(parse_size("2TiB").value(), 2ull << 40);
}

TEST(ParseSize, RejectsTheRest) {
  for (const char* bad : {"", "-1", "1.5MiB", "MiB", "1 MiB", "1mib", "1XB", "10kb",
                          "99999999999999999999", "20000000TiB"}) {
    auto r = parse_size(bad);
    ASSERT_FALSE(r) << bad;
    EXPECT_NE(r.error().message.find("expected a size like 1MiB"), std::string::npos) << bad;
  }
  EXPECT_NE(parse_size("20000000TiB").error().message.find("too large"), std::string::npos);
}

TEST(CheckListen, HostPortWithBracketedIpv6) {
  using config::check_listen;
  for (const char* ok :
       {"127.0.0.1:8080", "0.0.0.0:0", "localhost:65535", "[::1]:9464", "[::]:80"}) {
    EXPECT_FALSE(check_listen(ok)) << ok;
  }
  for (const char* bad : {"", "8080", ":8080", "host:", "host:65536", "host:-1", "host:80a",
                          "::1:80", "[::1]", "[::1]80", "[]:80", "a b:80"}) {
    EXPECT_TRUE(check_listen(bad)) << bad;
  }
}

TEST(EditDistance, CountsTranspositionAsOne) {
  using config::edit_distance;
  EXPECT_EQ(edit_distance("timeout", "timeout"), 0u);
  EXPECT_EQ(edit_distance("timout", "timeout"), 1u);
  EXPECT_EQ(edit_distance("tiemout", "timeout"), 1u);
  EXPECT_EQ(edit_distance("", "abc"), 3u);
  EXPECT_EQ(config::closest("subscibe", {"subscribe", "retry"}), "subscribe");
  EXPECT_EQ(config::closest("zzzzzz", {"subscribe", "retry"}), "");
}

}  // namespace
}  // namespace sluice::config::testing
