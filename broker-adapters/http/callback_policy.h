// Where a callback may go (docs/SECURITY.md, "Callbacks"): the callback URL syntax and
// the destination policy that keeps callbacks off the operator's own network.
//
// By default a callback may reach public addresses only. Refused: loopback, private
// (RFC 1918, IPv6 unique-local and site-local), link-local, shared address space
// (CGNAT 100.64/10), multicast, "this network"/unspecified, broadcast and reserved
// ranges, and IPv4 embedded in IPv6 (v4-mapped, v4-compatible, NAT64, 6to4, Teredo)
// judged by the IPv4 address it carries. `http.callback_allow` opens destinations: a
// network entry (CIDR or one address, with an optional port) matches the address
// connected to; a host entry matches the URL's host name (and port, when given).
//
// The check is made on each address a name resolved to, before connecting to it
// (CallbackSink connects only to addresses that pass, from that one resolution), so a
// name that resolves to a refused address, or changes its answer, cannot get through.
// A URL whose host is a literal address, in any spelling the resolver accepts (127.1,
// 0x7f000001, 017700000001, 2130706433, [::ffff:127.0.0.1]), is checked at request time.
//
// Threads: pure functions; a CallbackPolicy is immutable after construction and may be
// used from any thread.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::http {

struct CallbackUrl {
  std::string scheme;  // "http" or "https"
  std::string host;    // as written, without IPv6 brackets
  std::string port;    // "80"/"443" when not given
  std::string target;  // path and query, "/" at least
};
// Accepts http:// and https:// URLs with a host; anything else is Errc::invalid_argument.
Result<CallbackUrl> parse_callback_url(std::string_view url);

// The special-purpose range `a` lies in, like "loopback (127.0.0.0/8)"; nullopt for a
// public address. IPv4 embedded in IPv6 is judged by the IPv4 address, like
// "loopback (127.0.0.0/8) via IPv4-mapped IPv6".
std::optional<std::string> special_range(const boost::asio::ip::address& a);

// The address a URL host denotes when it is a numeric address in any spelling the
// system resolver takes as one (getaddrinfo with AI_NUMERICHOST: inet_aton's forms for
// IPv4, RFC 4291 with an optional %scope for IPv6); nullopt for a host name.
std::optional<boost::asio::ip::address> literal_address(std::string_view host);

class CallbackPolicy {
 public:
  explicit CallbackPolicy(std::vector<CallbackAllow> allow = {});

  // Why a callback to `url_host`:`port` may not connect to `addr` (one of the addresses
  // `url_host` resolved to), naming the rule; nullopt when it may.
  std::optional<std::string> refusal(std::string_view url_host, uint16_t port,
                                     const boost::asio::ip::address& addr) const;

  // At request time: an invalid_argument error when the URL's host is a literal
  // address that is refused (host names are checked at connect time).
  Result<void> check_url(const CallbackUrl& url) const;

 private:
  bool allowed(std::string_view url_host, uint16_t port, const boost::asio::ip::address& addr) const;
  std::vector<CallbackAllow> allow_;
};

}  // namespace sluice::http
