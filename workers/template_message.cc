#include "workers/template_message.h"

#include <fmt/format.h>

#include <limits>
#include <optional>

namespace sluice::workers {

namespace {

constexpr long long kMaxPid = std::numeric_limits<pid_t>::max();
constexpr long long kMaxWaitStatus = 0xffff;

// `s` as a decimal number in [lo, hi] written canonically: digits only, no leading
// zero; nullopt otherwise. At most 10 digits are read, so it cannot overflow.
std::optional<long long> decimal(std::string_view s, long long lo, long long hi) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

Error bad(std::string why) { return Error{Errc::invalid_argument, std::move(why)}; }

std::string pid_needed(std::string_view verb) {
  return fmt::format("'{}' needs a pid (1 to {})", verb, kMaxPid);
}

}  // namespace

Result<TemplateMessage> parse_template_message(std::string_view datagram, size_t nfds) {
  if (datagram.size() > kTemplateMessageMax)
    return bad(fmt::format("a message of more than {} bytes", kTemplateMessageMax));
  if (datagram.empty()) return bad("an empty message");
  const size_t sp = datagram.find(' ');
  const std::string_view verb = datagram.substr(0, sp);
  const bool has_args = sp != std::string_view::npos;
  const std::string_view args = has_args ? datagram.substr(sp + 1) : std::string_view{};
  const size_t needed = verb == "forked" ? 1 : 0;
  const bool known = verb == "ready" || verb == "forked" || verb == "error" || verb == "exit";
  if (!known) return bad(fmt::format("an unknown message ({} bytes)", datagram.size()));
  if (nfds != needed)
    return bad(fmt::format("'{}' comes with {} fd{}, not {}", verb, needed, needed == 1 ? "" : "s",
                           nfds));
  if (verb == "error") {
    if (!has_args) return bad("'error' needs a space before its text");
    TemplateForkError e;
    for (char c : args.substr(0, kTemplateErrorText)) {
      const auto u = static_cast<unsigned char>(c);
      e.text += (u < 0x20 || u >= 0x7f) ? '?' : c;
    }
    return TemplateMessage{std::move(e)};
  }
  if (verb == "exit") {
    const size_t sp2 = args.find(' ');
    const auto pid = decimal(args.substr(0, sp2), 1, kMaxPid);
    if (!has_args || !pid) return bad(pid_needed(verb) + " and a wait status");
    const auto status = sp2 == std::string_view::npos
                            ? std::nullopt
                            : decimal(args.substr(sp2 + 1), 0, kMaxWaitStatus);
    if (!status)
      return bad(fmt::format("'exit' needs a wait status (0 to {}) after its pid", kMaxWaitStatus));
    return TemplateMessage{TemplateExit{static_cast<pid_t>(*pid), static_cast<int>(*status)}};
  }
  const auto pid = decimal(args, 1, kMaxPid);
  if (!has_args || !pid) return bad(pid_needed(verb));
  if (verb == "ready") return TemplateMessage{TemplateReady{static_cast<pid_t>(*pid)}};
  return TemplateMessage{TemplateForked{static_cast<pid_t>(*pid)}};
}

}  // namespace sluice::workers
