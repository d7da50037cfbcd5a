// CallbackPolicy: which callback destinations are refused, in every spelling, and
// what http.callback_allow opens.
#include <gtest/gtest.h>

#include "broker-adapters/http/callback_policy.h"

namespace sluice::http::testing {
namespace {

namespace ip = boost::asio::ip;

std::optional<std::string> range_of(const char* a) { return special_range(ip::make_address(a)); }

CallbackPolicy with(std::initializer_list<const char*> entries) {
  std::vector<CallbackAllow> allow;
  for (const char* e : entries) {
    auto parsed = parse_callback_allow(e);
    EXPECT_TRUE(parsed) << e;
    if (parsed) allow.push_back(std::move(parsed).value());
  }
  return CallbackPolicy(std::move(allow));
}

CallbackUrl url(const std::string& text) {
  auto u = parse_callback_url(text);
  EXPECT_TRUE(u) << text;
  return u ? u.value() : CallbackUrl{};
}

TEST(CallbackPolicy, SpecialIPv4Ranges) {
  const std::vector<std::pair<const char*, const char*>> refused = {
      {"127.0.0.1", "loopback"},        {"127.255.255.254", "loopback"},
      {"10.1.2.3", "private"},          {"172.16.0.1", "private"},
      {"172.31.255.255", "private"},    {"192.168.1.1", "private"},
      {"169.254.169.254", "link-local"}, {"100.64.0.1", "CGNAT"},
      {"100.127.255.255", "CGNAT"},     {"0.0.0.0", "this network"},
      {"0.1.2.3", "this network"},      {"224.0.0.1", "multicast"},
      {"239.255.255.250", "multicast"}, {"255.255.255.255", "broadcast"},
      {"240.0.0.1", "reserved"},        {"192.0.0.8", "IETF"},
      {"198.18.0.1", "benchmarking"},
  };
  for (const auto& [a, what] : refused) {
    auto r = range_of(a);
    ASSERT_TRUE(r) << a;
    EXPECT_NE(r->find(what), std::string::npos) << a << ": " << *r;
  }
  for (const char* a : {"8.8.8.8", "1.1.1.1", "172.32.0.1", "172.15.255.255", "100.128.0.1",
                        "100.63.255.255", "169.255.0.1", "192.169.0.1", "11.0.0.1", "223.255.255.255"})
    EXPECT_FALSE(range_of(a)) << a << ": " << *range_of(a);
}

TEST(CallbackPolicy, SpecialIPv6RangesAndEmbeddedIPv4) {
  const std::vector<std::pair<const char*, const char*>> refused = {
      {"::", "unspecified"},
      {"::1", "loopback"},
      {"::ffff:127.0.0.1", "loopback (127.0.0.0/8) via IPv4-mapped"},
      {"::ffff:7f00:1", "loopback"},
      {"::ffff:169.254.169.254", "link-local (169.254.0.0/16) via IPv4-mapped"},
      {"::ffff:10.0.0.1", "private"},
      {"::127.0.0.1", "loopback (127.0.0.0/8) via IPv4-compatible"},
      {"::10.0.0.1", "private"},
      {"64:ff9b::7f00:1", "loopback (127.0.0.0/8) via NAT64"},
      {"64:ff9b::a9fe:a9fe", "link-local"},
      {"64:ff9b:1::1", "local-use NAT64"},
      {"2002:7f00:1::1", "loopback (127.0.0.0/8) via 6to4"},
      {"2002:c0a8:101::1", "private"},
      {"2001:0:4136:e378:8000:63bf:80ff:fffe", "loopback (127.0.0.0/8) via Teredo"},
      {"fc00::1", "unique local"},
      {"fd12:3456::1", "unique local"},
      {"fe80::1", "link-local"},
      {"febf::1", "link-local"},
      {"fec0::1", "site-local"},
      {"ff02::1", "multicast"},
      {"100::1", "discard-only"},
  };
  for (const auto& [a, what] : refused) {
    auto r = range_of(a);
    ASSERT_TRUE(r) << a;
    EXPECT_NE(r->find(what), std::string::npos) << a << ": " << *r;
  }
  for (const char* a : {"2606:4700:4700::1111", "2001:4860:4860::8888", "::ffff:8.8.8.8",
                        "64:ff9b::808:808", "2002:808:808::1", "fbff::1", "fe7f::1"})
    EXPECT_FALSE(range_of(a)) << a << ": " << *range_of(a);
}

TEST(CallbackPolicy, LiteralAddressesInEverySpellingTheResolverTakes) {
  const std::vector<std::pair<const char*, const char*>> spellings = {
      {"127.0.0.1", "127.0.0.1"},    {"127.1", "127.0.0.1"},        {"127.0.1", "127.0.0.1"},
      {"0x7f000001", "127.0.0.1"},   {"0X7F000001", "127.0.0.1"},   {"017700000001", "127.0.0.1"},
      {"2130706433", "127.0.0.1"},   {"0x7f.0.0.1", "127.0.0.1"},   {"0177.0.0.01", "127.0.0.1"},
      {"0", "0.0.0.0"},              {"169.254.43518", "169.254.169.254"},
      {"::ffff:127.0.0.1", "::ffff:127.0.0.1"}, {"::FFFF:7F00:1", "::ffff:127.0.0.1"},
      {"0:0:0:0:0:0:0:1", "::1"},
  };
  for (const auto& [text, want] : spellings) {
    auto a = literal_address(text);
    ASSERT_TRUE(a) << text;
    EXPECT_EQ(*a, ip::make_address(want)) << text;
  }
  for (const char* name : {"localhost", "example.com", "127.0.0.1.nip.io", "0x7g000001", ""})
    EXPECT_FALSE(literal_address(name)) << name;
}

TEST(CallbackPolicy, RefusesLiteralUrlsInEverySpellingByDefault) {
  const CallbackPolicy p;
  for (const char* u :
       {"http://127.0.0.1:8080/x", "http://127.1/", "http://0x7f000001/", "http://017700000001/",
        "http://2130706433/", "http://[::1]/", "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:7f00:1]:9000/", "http://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/", "http://192.168.0.1/", "http://[fe80::1]/", "http://[fd00::1]/",
        "http://100.64.0.1/", "http://0.0.0.0/", "http://0/", "http://[::]/",
        "http://224.0.0.1/", "http://255.255.255.255/", "http://[64:ff9b::7f00:1]/"}) {
    auto r = p.check_url(url(u));
    ASSERT_FALSE(r) << u;
    EXPECT_NE(r.error().message.find("http.callback_allow"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().code, Errc::invalid_argument);
  }
  auto r = p.check_url(url("http://0x7f000001/"));
  EXPECT_NE(r.error().message.find("127.0.0.1 is loopback (127.0.0.0/8)"), std::string::npos)
      << r.error().message;
  // Public literals pass; names are checked where they resolve to, at connect time.
  EXPECT_TRUE(p.check_url(url("http://8.8.8.8/")));
  EXPECT_TRUE(p.check_url(url("http://[2606:4700:4700::1111]:8443/")));
  EXPECT_TRUE(p.check_url(url("http://localhost/")));
  EXPECT_TRUE(p.check_url(url("https://hooks.example.com/x")));
}

TEST(CallbackPolicy, AllowListNetworksMatchTheAddressInAnySpelling) {
  const auto p = with({"127.0.0.1/32"});
  const auto lo = ip::make_address("127.0.0.1");
  EXPECT_FALSE(p.refusal("127.0.0.1", 80, lo));
  EXPECT_FALSE(p.refusal("localhost", 9999, lo));
  EXPECT_FALSE(p.refusal("::ffff:127.0.0.1", 80, ip::make_address("::ffff:127.0.0.1")));
  EXPECT_TRUE(p.check_url(url("http://0x7f000001:8080/")));
  EXPECT_TRUE(p.check_url(url("http://[::ffff:127.0.0.1]/")));
  EXPECT_FALSE(p.check_url(url("http://127.0.0.2/")));
  EXPECT_FALSE(p.check_url(url("http://127.2/")));
  EXPECT_FALSE(p.check_url(url("http://[::1]/")));
  EXPECT_FALSE(p.check_url(url("http://169.254.169.254/")));

  const auto nets = with({"10.0.0.0/8", "fd00::/8"});
  EXPECT_FALSE(nets.refusal("x", 80, ip::make_address("10.200.1.1")));
  EXPECT_TRUE(nets.refusal("x", 80, ip::make_address("11.0.0.1")) == std::nullopt);  // public
  EXPECT_TRUE(nets.refusal("x", 80, ip::make_address("192.168.0.1")));
  EXPECT_FALSE(nets.refusal("x", 80, ip::make_address("fd12::1")));
  EXPECT_TRUE(nets.refusal("x", 80, ip::make_address("fc00::1")));
  EXPECT_TRUE(nets.refusal("x", 80, ip::make_address("::1")));
}

TEST(CallbackPolicy, AllowListPortsAndHostNames) {
  const auto p = with({"127.0.0.1:9000", "[::1]:8443", "hooks.internal", "Local.Test:8080"});
  const auto lo = ip::make_address("127.0.0.1");
  EXPECT_FALSE(p.refusal("127.0.0.1", 9000, lo));
  EXPECT_TRUE(p.refusal("127.0.0.1", 9001, lo));
  EXPECT_FALSE(p.refusal("::1", 8443, ip::make_address("::1")));
  EXPECT_TRUE(p.refusal("::1", 443, ip::make_address("::1")));
  // A host entry matches the URL's host name, whatever it resolves to, on any port...
  EXPECT_FALSE(p.refusal("hooks.internal", 80, ip::make_address("10.1.1.1")));
  EXPECT_FALSE(p.refusal("HOOKS.internal.", 1234, ip::make_address("fd00::5")));
  EXPECT_TRUE(p.refusal("other.internal", 80, ip::make_address("10.1.1.1")));
  EXPECT_TRUE(p.refusal("evil.hooks.internal", 80, ip::make_address("10.1.1.1")));
  // ...or, with a port, on that port only.
  EXPECT_FALSE(p.refusal("local.test", 8080, lo));
  EXPECT_TRUE(p.refusal("local.test", 8081, lo));
  // A literal is not a host name.
  EXPECT_FALSE(p.check_url(url("http://127.0.0.1:80/")));
  EXPECT_TRUE(p.check_url(url("http://127.0.0.1:9000/")));
  const auto why = p.refusal("127.0.0.1", 9001, lo);
  ASSERT_TRUE(why);
  EXPECT_NE(why->find("127.0.0.1 is loopback (127.0.0.0/8)"), std::string::npos) << *why;
}

TEST(CallbackUrl, Parsing) {
  auto u = url("HTTPS://[::1]:8443/a/b?c=d#frag");
  EXPECT_EQ(u.scheme, "https");
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.port, "8443");
  EXPECT_EQ(u.target, "/a/b?c=d");
  auto v = url("http://example.com?x=1");
  EXPECT_EQ(v.port, "80");
  EXPECT_EQ(v.target, "/?x=1");
  for (const char* bad : {"ftp://x/", "http://", "http:///x", "http://u:p@x/", "http://[::1/",
                          "http://[::1]x/", "http://x:0/", "http://x:65536/", "http://x:8a/",
                          "http://x/a b", "http://a\tb/", "x"})
    EXPECT_FALSE(parse_callback_url(bad)) << bad;
  EXPECT_FALSE(parse_callback_url("http://" + std::string(300, 'a') + "/"));
}

}  // namespace
}  // namespace sluice::http::testing
