#include "config/values.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>

#include <arpa/inet.h>

#include <cctype>
#include <cstring>

#include "config/config.h"

namespace sluice {
namespace {

constexpr int64_t kNs = 1;
constexpr int64_t kUs = 1000 * kNs;
constexpr int64_t kMs = 1000 * kUs;
constexpr int64_t kS = 1000 * kMs;

struct Unit {
  std::string_view name;
  int64_t ns;
};
// Go's time.ParseDuration units; "µs" in both of its Unicode spellings.
constexpr Unit kDurationUnits[] = {{"ns", kNs},     {"us", kUs},     {"\xC2\xB5s", kUs},
                                   {"\xCE\xBCs", kUs}, {"ms", kMs},  {"s", kS},
                                   {"m", 60 * kS},  {"h", 3600 * kS}};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

Error duration_error(std::string_view text, std::string_view why = {}) {
  std::string msg = "expected a duration like 5s, got " + config::quote(text);
  if (!why.empty()) msg += " (" + std::string(why) + ")";
  return Error(Errc::invalid_argument, std::move(msg));
}

Error size_error(std::string_view text, std::string_view why = {}) {
  std::string msg = "expected a size like 1MiB, got " + config::quote(text);
  if (!why.empty()) msg += " (" + std::string(why) + ")";
  return Error(Errc::invalid_argument, std::move(msg));
}

}  // namespace

Result<Millis> parse_duration(std::string_view text) {
  if (text.empty()) return duration_error(text, "empty");
  if (text[0] == '-') return duration_error(text, "must not be negative");
  if (std::all_of(text.begin(), text.end(), [](char c) { return is_digit(c) || c == '.'; })) {
    return duration_error(text, "missing unit: ns, us, ms, s, m or h");
  }
  std::string_view s = text;
  int64_t total = 0;
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  while (!s.empty()) {
    // [digits][.digits]unit, like Go.
    int64_t whole = 0;
    std::size_t i = 0;
    bool overflow = false;
    for (; i < s.size() && is_digit(s[i]); ++i) {
      if (__builtin_mul_overflow(whole, 10, &whole) ||
          __builtin_add_overflow(whole, s[i] - '0', &whole)) {
        overflow = true;
      }
    }
    bool have_digits = i > 0;
    long double frac = 0, scale = 1;
    if (i < s.size() && s[i] == '.') {
      ++i;
      for (; i < s.size() && is_digit(s[i]); ++i) {
        have_digits = true;
        scale *= 10;
        frac += (s[i] - '0') / scale;
      }
    }
    if (!have_digits) return duration_error(text);
    std::size_t j = i;
    while (j < s.size() && !is_digit(s[j]) && s[j] != '.') ++j;
    std::string_view unit_name = s.substr(i, j - i);
    if (unit_name.empty()) return duration_error(text, "missing unit: ns, us, ms, s, m or h");
    const Unit* unit = nullptr;
    for (const Unit& u : kDurationUnits) {
      if (u.name == unit_name) unit = &u;
    }
    if (unit == nullptr) {
      return duration_error(text, "unknown unit " + config::quote(unit_name) +
                                      "; use ns, us, ms, s, m or h");
    }
    int64_t v = 0;
    if (overflow || __builtin_mul_overflow(whole, unit->ns, &v)) {
      return duration_error(text, "too large");
    }
    const long double frac_ns = frac * static_cast<long double>(unit->ns);
    if (frac_ns >= static_cast<long double>(kMax - v)) return duration_error(text, "too large");
    v += static_cast<int64_t>(frac_ns);
    if (__builtin_add_overflow(total, v, &total)) return duration_error(text, "too large");
    s.remove_prefix(j);
  }
  // Round up so that a positive duration never becomes zero milliseconds.
  return Millis(total / kMs + (total % kMs != 0 ? 1 : 0));
}

Result<uint64_t> parse_size(std::string_view text) {
  if (text.empty()) return size_error(text, "empty");
  if (text[0] == '-') return size_error(text, "must not be negative");
  uint64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (end == text.data()) return size_error(text);
  if (ec == std::errc::result_out_of_range) return size_error(text, "too large");
  std::string_view suffix(end, text.data() + text.size() - end);
  struct Suffix {
    std::string_view name;
    uint64_t mul;
  };
  static constexpr Suffix kSuffixes[] = {
      {"", 1},          {"B", 1},           {"KB", 1000ull},    {"MB", 1000000ull},
      {"GB", 1000000000ull}, {"TB", 1000000000000ull}, {"KiB", 1ull << 10}, {"MiB", 1ull << 20},
      {"GiB", 1ull << 30},   {"TiB", 1ull << 40}};
  for (const Suffix& sf : kSuffixes) {
    if (sf.name != suffix) continue;
    uint64_t bytes = 0;
    if (__builtin_mul_overflow(n, sf.mul, &bytes)) return size_error(text, "too large");
    return bytes;
  }
  return size_error(text, "unknown unit " + config::quote(suffix) +
                              "; use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB");
}

Result<CallbackAllow> parse_callback_allow(std::string_view text) {
  const std::string shown =
      text.size() > 100 ? std::string(text.substr(0, 100)) + "..." : std::string(text);
  const auto bad = [&](std::string_view why) -> Result<CallbackAllow> {
    return Error{Errc::invalid_argument,
                 "\"" + shown + "\": " + std::string(why) +
                     " (expected a CIDR like 10.0.0.0/8, an address like 127.0.0.1 or [::1]:8443, "
                     "or a host name like hooks.example.com[:port])"};
  };
  CallbackAllow e;
  e.text = std::string(text);
  // An address in the forms inet_pton accepts (dotted quads, RFC 4291 IPv6) into e.
  const auto address = [&](const std::string& a) {
    if (inet_pton(AF_INET, a.c_str(), e.network.data()) == 1) {
      e.v6 = false;
      e.prefix = 32;
      return true;
    }
    if (inet_pton(AF_INET6, a.c_str(), e.network.data()) == 1) {
      e.v6 = true;
      e.prefix = 128;
      return true;
    }
    return false;
  };
  const auto port = [&](std::string_view p) {
    unsigned v = 0;
    auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
    if (p.empty() || ec != std::errc() || end != p.data() + p.size() || v == 0 || v > 65535)
      return false;
    e.port = static_cast<uint16_t>(v);
    return true;
  };
  if (text.empty()) return bad("empty entry");
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    if (!address(std::string(text.substr(0, slash)))) return bad("not an IP network");
    const std::string_view len = text.substr(slash + 1);
    unsigned v = 0;
    auto [end, ec] = std::from_chars(len.data(), len.data() + len.size(), v);
    if (len.empty() || ec != std::errc() || end != len.data() + len.size() || v > e.prefix)
      return bad(e.v6 ? "prefix length must be 0..128" : "prefix length must be 0..32");
    e.prefix = static_cast<uint8_t>(v);
    // Host bits off, so that 10.1.2.3/8 means 10.0.0.0/8.
    for (unsigned bit = e.prefix; bit < (e.v6 ? 128u : 32u); ++bit)
      e.network[bit / 8] &= static_cast<uint8_t>(~(0x80u >> (bit % 8)));
    return e;
  }
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return bad("unterminated [");
    if (!address(std::string(text.substr(1, close - 1))) || !e.v6) return bad("not an IPv6 address");
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty() && (rest.front() != ':' || !port(rest.substr(1))))
      return bad("port must be 1..65535");
    return e;
  }
  if (address(std::string(text))) return e;  // 127.0.0.1, ::1
  std::string_view host = text;
  if (auto colon = text.rfind(':'); colon != std::string_view::npos) {
    host = text.substr(0, colon);
    if (host.find(':') != std::string_view::npos) return bad("write IPv6 addresses in brackets");
    if (!port(text.substr(colon + 1))) return bad("port must be 1..65535");
  }
  if (address(std::string(host))) return e;  // 127.0.0.1:9000
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);
  if (host.empty() || host.size() > 253) return bad("not a host name");
  for (char c : host)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_')
      return bad("not a host name");
  // inet_aton spellings (127.1, 0x7f000001, 017700000001) are addresses, not names.
  in_addr ignored{};
  if (inet_aton(std::string(host).c_str(), &ignored) != 0)
    return bad("write IPv4 addresses as four decimal numbers (like 127.0.0.1)");
  e.host.reserve(host.size());
  for (char c : host) e.host.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return e;
}

namespace config {

std::string quote(std::string_view text) {
  std::string out;  // built with append(): GCC 12 warns falsely on a + chain
  out.reserve(std::min(text.size(), kEchoLimit) + 32);
  out.append(1, '"');
  if (text.size() <= kEchoLimit) return out.append(text).append(1, '"');
  std::size_t cut = kEchoLimit;
  // Back up over UTF-8 continuation bytes so a character is not split.
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return out.append(text.substr(0, cut))
      .append("\u2026\" (")
      .append(std::to_string(text.size()))
      .append(" bytes)");
}

std::string format_duration(std::chrono::milliseconds d) {
  struct U {
    const char* name;
    int64_t ms;
  };
  static constexpr U kUnits[] = {{"h", 3600000}, {"m", 60000}, {"s", 1000}};
  const int64_t ms = d.count();
  for (const U& u : kUnits)
    if (ms != 0 && ms % u.ms == 0) return std::to_string(ms / u.ms) + u.name;
  return std::to_string(ms) + (ms == 0 ? "s" : "ms");
}

std::string format_size(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"TiB", "GiB", "MiB", "KiB"};
  for (int i = 0; i < 4; ++i) {
    const uint64_t unit = uint64_t{1} << (10 * (4 - i));
    if (bytes != 0 && bytes % unit == 0) return std::to_string(bytes / unit) + kUnits[i];
  }
  return std::to_string(bytes) + "B";
}

std::optional<std::string> check_listen(std::string_view text) {
  const std::string bad = "expected host:port like 127.0.0.1:8080, got " + quote(text);
  std::string_view host, port;
  if (!text.empty() && text[0] == '[') {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return bad;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return bad + " (missing :port)";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) {
      return bad + " (write IPv6 addresses in brackets, like [::1]:8080)";
    }
  }
  if (host.empty()) return bad + " (empty host)";
  if (std::any_of(host.begin(), host.end(), [](char c) { return c == ' ' || c == '\t'; })) {
    return bad;
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || port.size() > 5 || ec != std::errc() || end != port.data() + port.size() ||
      value > 65535) {
    return bad + " (port must be 0..65535)";
  }
  return std::nullopt;
}

std::size_t edit_distance(std::string_view a, std::string_view b) {
  const std::size_t n = a.size(), m = b.size();
  std::vector<std::vector<std::size_t>> d(n + 1, std::vector<std::size_t>(m + 1));
  for (std::size_t i = 0; i <= n; ++i) d[i][0] = i;
  for (std::size_t j = 0; j <= m; ++j) d[0][j] = j;
  for (std::size_t i = 1; i <= n; ++i) {
    for (std::size_t j = 1; j <= m; ++j) {
      const std::size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[n][m];
}

std::string_view closest(std::string_view word, const std::vector<std::string_view>& candidates) {
  std::string_view best;
  std::size_t best_d = 3;
  for (std::string_view c : candidates) {
    const std::size_t dist = edit_distance(word, c);
    if (dist < best_d && dist < word.size()) {
      best_d = dist;
      best = c;
    }
  }
  return best;
}

}  // namespace config
}  // namespace sluice
