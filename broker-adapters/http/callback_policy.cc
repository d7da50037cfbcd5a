#include "broker-adapters/http/callback_policy.h"

#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>

#include "broker-adapters/http/http_util.h"

namespace sluice::http {

namespace ip = boost::asio::ip;

Result<CallbackUrl> parse_callback_url(std::string_view url) {
  const auto bad = [&](std::string_view why) -> Result<CallbackUrl> {
    const std::string shown =
        url.size() > 200 ? std::string(url.substr(0, 200)) + "..." : std::string(url);
    return Error{Errc::invalid_argument, "callback URL '" + shown + "': " + std::string(why)};
  };
  CallbackUrl u;
  const auto sep = url.find("://");
  if (sep == std::string_view::npos) return bad("expected http://host[:port]/path");
  const std::string_view scheme = url.substr(0, sep);
  if (iequals(scheme, "http")) {
    u.scheme = "http";
    u.port = "80";
  } else if (iequals(scheme, "https")) {
    u.scheme = "https";
    u.port = "443";
  } else {
    return bad("only http and https callbacks are allowed");
  }
  std::string_view rest = url.substr(sep + 3);
  const auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (!u.target.empty() && u.target[0] == '?') u.target = "/" + u.target;
  if (auto hash = u.target.find('#'); hash != std::string::npos) u.target.resize(hash);
  if (u.target.empty()) u.target = "/";
  if (authority.find('@') != std::string_view::npos) return bad("credentials in the URL are not allowed");
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return bad("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    authority = authority.substr(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return bad("junk after the IPv6 address");
      u.port = std::string(authority.substr(1));
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty()) return bad("no host");
  if (u.host.size() > 253) return bad("host name too long");
  for (char c : u.host)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '\\')
      return bad("bad character in the host");
  if (u.port.empty() || u.port.size() > 5 ||
      !std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(u.port) == 0 || std::stoi(u.port) > 65535)
    return bad("bad port");
  for (char c : u.target)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return bad("bad character in the path");
  return u;
}

namespace {

struct Range4 {
  uint32_t net;
  int prefix;
  const char* what;
};

// Checked in order: the first match names the range.
constexpr std::array<Range4, 13> kSpecial4{{
    {0x00000000, 8, "\"this network\" (0.0.0.0/8)"},
    {0x0A000000, 8, "private (10.0.0.0/8)"},
    {0x64400000, 10, "shared address space, CGNAT (100.64.0.0/10)"},
    {0x7F000000, 8, "loopback (127.0.0.0/8)"},
    {0xA9FE0000, 16, "link-local (169.254.0.0/16)"},
    {0xAC100000, 12, "private (172.16.0.0/12)"},
    {0xC0000000, 24, "IETF protocol assignments (192.0.0.0/24)"},
    {0xC0A80000, 16, "private (192.168.0.0/16)"},
    {0xC6120000, 15, "benchmarking (198.18.0.0/15)"},
    {0xE0000000, 4, "multicast (224.0.0.0/4)"},
    {0xFFFFFFFF, 32, "broadcast (255.255.255.255)"},
    {0xF0000000, 4, "reserved (240.0.0.0/4)"},
    {0x00000000, 0, nullptr},
}};

std::optional<std::string> special4(uint32_t a) {
  for (const Range4& r : kSpecial4) {
    if (!r.what) break;
    const uint32_t mask = r.prefix == 0 ? 0 : ~uint32_t{0} << (32 - r.prefix);
    if ((a & mask) == r.net) return std::string(r.what);
  }
  return std::nullopt;
}

uint32_t be32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool starts(const ip::address_v6::bytes_type& b, std::initializer_list<uint8_t> prefix) {
  size_t i = 0;
  for (uint8_t x : prefix)
    if (b[i++] != x) return false;
  return true;
}

// The IPv4 address an IPv6 address carries, and how; nullopt when none.
std::optional<std::pair<uint32_t, const char*>> embedded4(const ip::address_v6& a) {
  const auto b = a.to_bytes();
  const bool zero80 = std::all_of(b.begin(), b.begin() + 10, [](uint8_t x) { return x == 0; });
  if (zero80 && b[10] == 0xff && b[11] == 0xff) return {{be32(&b[12]), "IPv4-mapped IPv6"}};
  if (zero80 && b[10] == 0 && b[11] == 0 && be32(&b[12]) > 1)  // not :: nor ::1
    return {{be32(&b[12]), "IPv4-compatible IPv6"}};
  if (starts(b, {0x00, 0x64, 0xff, 0x9b}) &&
      std::all_of(b.begin() + 4, b.begin() + 12, [](uint8_t x) { return x == 0; }))
    return {{be32(&b[12]), "NAT64 (64:ff9b::/96)"}};
  if (starts(b, {0x20, 0x02})) return {{be32(&b[2]), "6to4 (2002::/16)"}};
  if (starts(b, {0x20, 0x01, 0x00, 0x00})) return {{~be32(&b[12]), "Teredo (2001::/32)"}};
  return std::nullopt;
}

std::optional<std::string> special6(const ip::address_v6& a) {
  const auto b = a.to_bytes();
  if (a.is_unspecified()) return std::string("unspecified (::)");
  if (a.is_loopback()) return std::string("loopback (::1)");
  if (auto e = embedded4(a)) {
    if (auto r = special4(e->first)) return *r + " via " + e->second;
    return std::nullopt;
  }
  if (starts(b, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) return std::string("local-use NAT64 (64:ff9b:1::/48)");
  if ((b[0] & 0xfe) == 0xfc) return std::string("unique local (fc00::/7)");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return std::string("link-local (fe80::/10)");
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0xc0) return std::string("site-local (fec0::/10)");
  if (b[0] == 0xff) return std::string("multicast (ff00::/8)");
  if (starts(b, {0x01, 0x00}) &&
      std::all_of(b.begin() + 2, b.begin() + 8, [](uint8_t x) { return x == 0; }))
    return std::string("discard-only (100::/64)");
  return std::nullopt;
}

bool in_network(const CallbackAllow& e, const ip::address& a) {
  std::array<uint8_t, 16> bytes{};
  size_t bits = 0;
  if (a.is_v4() && !e.v6) {
    const auto b = a.to_v4().to_bytes();
    std::copy(b.begin(), b.end(), bytes.begin());
    bits = 32;
  } else if (a.is_v6() && e.v6) {
    const auto b = a.to_v6().to_bytes();
    std::copy(b.begin(), b.end(), bytes.begin());
    bits = 128;
  } else {
    return false;
  }
  for (size_t bit = 0; bit < e.prefix && bit < bits; ++bit) {
    const uint8_t m = static_cast<uint8_t>(0x80u >> (bit % 8));
    if ((bytes[bit / 8] & m) != (e.network[bit / 8] & m)) return false;
  }
  return true;
}

std::string normal_host(std::string_view h) {
  if (!h.empty() && h.back() == '.') h.remove_suffix(1);
  std::string out;
  out.reserve(h.size());
  for (char c : h) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

}  // namespace

std::optional<std::string> special_range(const ip::address& a) {
  if (a.is_v4()) return special4(a.to_v4().to_uint());
  return special6(a.to_v6());
}

std::optional<ip::address> literal_address(std::string_view host) {
  if (host.empty() || host.size() > 253) return std::nullopt;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_flags = AI_NUMERICHOST;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(std::string(host).c_str(), nullptr, &hints, &res) != 0 || !res) return std::nullopt;
  std::optional<ip::address> out;
  if (res->ai_family == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(res->ai_addr);
    out = ip::address_v4(ntohl(sa->sin_addr.s_addr));
  } else if (res->ai_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(res->ai_addr);
    ip::address_v6::bytes_type b;
    std::memcpy(b.data(), sa->sin6_addr.s6_addr, 16);
    out = ip::address_v6(b, sa->sin6_scope_id);
  }
  freeaddrinfo(res);
  return out;
}

CallbackPolicy::CallbackPolicy(std::vector<CallbackAllow> allow) : allow_(std::move(allow)) {}

bool CallbackPolicy::allowed(std::string_view url_host, uint16_t port, const ip::address& addr) const {
  if (allow_.empty()) return false;
  const std::string host = normal_host(url_host);
  // An IPv4 address carried in IPv6 is matched as itself too.
  std::optional<ip::address> inner;
  if (addr.is_v6())
    if (auto e = embedded4(addr.to_v6())) inner = ip::address_v4(e->first);
  for (const CallbackAllow& e : allow_) {
    if (e.port != 0 && e.port != port) continue;
    if (!e.host.empty()) {
      if (e.host == host) return true;
      continue;
    }
    if (in_network(e, addr) || (inner && in_network(e, *inner))) return true;
  }
  return false;
}

std::optional<std::string> CallbackPolicy::refusal(std::string_view url_host, uint16_t port,
                                                   const ip::address& addr) const {
  auto range = special_range(addr);
  if (!range || allowed(url_host, port, addr)) return std::nullopt;
  return addr.to_string() + " is " + *range +
         "; callbacks there are refused unless http.callback_allow opens them";
}

Result<void> CallbackPolicy::check_url(const CallbackUrl& url) const {
  auto addr = literal_address(url.host);
  if (!addr) return ok();
  auto why = refusal(url.host, static_cast<uint16_t>(std::stoi(url.port)), *addr);
  if (!why) return ok();
  std::string shown = url.host.size() > 100 ? url.host.substr(0, 100) + "..." : url.host;
  return Error{Errc::invalid_argument, "callback host '" + shown + "': " + *why};
}

}  // namespace sluice::http
