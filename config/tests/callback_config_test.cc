// http.callback_*: the allow-list entry syntax, defaults and bounds.
#include <gtest/gtest.h>

#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

using testing::load;

TEST(CallbackConfig, Defaults) {
  auto r = load("http: {}\n");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const HttpConfig& h = r.config->http;
  EXPECT_TRUE(h.callback_allow.empty());
  EXPECT_EQ(h.callback_timeout, Millis(10000));
  EXPECT_EQ(h.callback_max_attempts, 10u);
  EXPECT_EQ(h.callback_concurrency, 64u);
}

TEST(CallbackConfig, ReadsEveryKey) {
  auto r = load(
      "http:\n"
      "  callback_allow: [127.0.0.1/32, 'hooks.Example.com.:8443', '[::1]:9000', 10.1.2.3/8]\n"
      "  callback_timeout: 2s\n"
      "  callback_max_attempts: 3\n"
      "  callback_concurrency: 5\n");
  ASSERT_TRUE(r.config) << testing::dump(r);
  const HttpConfig& h = r.config->http;
  ASSERT_EQ(h.callback_allow.size(), 4u);
  EXPECT_EQ(h.callback_allow[1].host, "hooks.example.com");
  EXPECT_EQ(h.callback_allow[1].port, 8443);
  EXPECT_EQ(h.callback_timeout, Millis(2000));
  EXPECT_EQ(h.callback_max_attempts, 3u);
  EXPECT_EQ(h.callback_concurrency, 5u);
}

TEST(CallbackConfig, BadValuesNameTheField) {
  auto r = load(
      "http:\n"
      "  callback_allow:\n"
      "    - 10.0.0.0/33\n"
      "    - 0x7f000001\n"
      "  callback_timeout: 0s\n"
      "  callback_max_attempts: 0\n");
  EXPECT_CONFIG_ERROR(r, "http.callback_allow[0]", 3, "prefix length must be 0..32");
  EXPECT_CONFIG_ERROR(r, "http.callback_allow[1]", 4, "four decimal numbers");
  EXPECT_CONFIG_ERROR(r, "http.callback_timeout", 5, "must be at least 1ms");
  EXPECT_CONFIG_ERROR(r, "http.callback_max_attempts", 6, "");
}

TEST(CallbackAllowEntry, Networks) {
  auto v4 = parse_callback_allow("10.1.2.3/8");
  ASSERT_TRUE(v4) << v4.error().message;
  EXPECT_FALSE(v4.value().v6);
  EXPECT_EQ(v4.value().prefix, 8);
  EXPECT_EQ(v4.value().network[0], 10);
  EXPECT_EQ(v4.value().network[1], 0);  // host bits cleared
  auto v6 = parse_callback_allow("fd00::/8");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6.value().v6);
  EXPECT_EQ(v6.value().prefix, 8);
  auto one = parse_callback_allow("127.0.0.1");
  ASSERT_TRUE(one);
  EXPECT_EQ(one.value().prefix, 32);
  EXPECT_EQ(one.value().port, 0);
  auto with_port = parse_callback_allow("127.0.0.1:9000");
  ASSERT_TRUE(with_port);
  EXPECT_EQ(with_port.value().prefix, 32);
  EXPECT_EQ(with_port.value().port, 9000);
  auto v6_port = parse_callback_allow("[::1]:8443");
  ASSERT_TRUE(v6_port);
  EXPECT_TRUE(v6_port.value().v6);
  EXPECT_EQ(v6_port.value().prefix, 128);
  EXPECT_EQ(v6_port.value().port, 8443);
  EXPECT_TRUE(parse_callback_allow("::1"));
}

TEST(CallbackAllowEntry, HostNames) {
  auto h = parse_callback_allow("Hooks.Internal");
  ASSERT_TRUE(h);
  EXPECT_EQ(h.value().host, "hooks.internal");
  EXPECT_EQ(h.value().port, 0);
  auto hp = parse_callback_allow("localhost:8080");
  ASSERT_TRUE(hp);
  EXPECT_EQ(hp.value().host, "localhost");
  EXPECT_EQ(hp.value().port, 8080);
}

TEST(CallbackAllowEntry, Refusals) {
  for (const char* bad : {"", "10.0.0.0/", "10.0.0.0/x", "::/129", "nonsense/8", "[::1", "[::1]x",
                          "[127.0.0.1]", "::1:99999", "a:b:c", "host:0", "host:70000", "ho st",
                          "h/x", "127.1", "0x7f000001", "017700000001", "2130706433",
                          "http://x"}) {
    EXPECT_FALSE(parse_callback_allow(bad)) << bad;
  }
  EXPECT_NE(parse_callback_allow(std::string(300, 'a')).error().message.find("..."),
            std::string::npos);  // echoed cut short
}

}  // namespace
}  // namespace sluice::config::testing
