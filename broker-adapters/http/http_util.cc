#include "broker-adapters/http/http_util.h"

#include <boost/beast/http/field.hpp>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>

namespace sluice::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Result<std::string> decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      int hi = i + 2 < s.size() ? hex_value(s[i + 1]) : -1;
      int lo = hi >= 0 ? hex_value(s[i + 2]) : -1;
      if (lo < 0) return Error{Errc::invalid_argument, "malformed percent-escape in URL"};
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else {
      out += (plus_is_space && c == '+') ? ' ' : c;
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

}  // namespace

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // ASCII only, without the locale (std::tolower): header names are compared per request.
  auto lower = [](unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; };
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(static_cast<unsigned char>(a[i])) != lower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

Response json_response(Status status, std::string json) {
  Response res{status, 11};
  res.set(bhttp::field::content_type, "application/json");
  res.body() = std::move(json);
  res.prepare_payload();
  return res;
}

void append_json_string(std::string& out, std::string_view s) {
  // Printable ASCII other than '"' and '\\' is written as is (ids, topic names);
  // anything else goes through nlohmann for escapes and UTF-8 checking.
  bool plain = true;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
      plain = false;
      break;
    }
  }
  if (plain) {
    out += '"';
    out += s;
    out += '"';
    return;
  }
  out += nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Response json_error(Status status, std::string_view message) {
  nlohmann::json j = {{"error", message}};
  return json_response(status, j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

std::string_view target_path(std::string_view target) {
  return target.substr(0, target.find('?'));
}

Result<std::string> query_param(std::string_view target, std::string_view name) {
  auto q = target.find('?');
  if (q == std::string_view::npos) return std::string();
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    auto eq = pair.find('=');
    SLUICE_TRY(key, decode(pair.substr(0, eq), true));
    if (key != name) continue;
    if (eq == std::string_view::npos) return std::string();
    return decode(pair.substr(eq + 1), true);
  }
  return std::string();
}

Result<std::string> url_decode(std::string_view s) { return decode(s, false); }

Result<std::vector<std::string>> load_bearer_tokens(const std::string& path,
                                                    const std::string& key) {
  std::ifstream in(path);
  if (!in)
    return Error{Errc::io, key + ": cannot read '" + path + "'"};
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    std::string_view t = trim(line);
    if (t.empty() || t.front() == '#') continue;
    tokens.emplace_back(t);
  }
  if (in.bad())
    return Error{Errc::io, key + ": error reading '" + path + "'"};
  if (tokens.empty())
    return Error{Errc::invalid_argument,
                 key + ": '" + path + "' holds no token"};
  return tokens;
}

bool bearer_token_ok(std::string_view authorization, const std::vector<std::string>& tokens) {
  std::string_view a = trim(authorization);
  constexpr std::string_view kScheme = "bearer ";
  if (a.size() <= kScheme.size() || !iequals(a.substr(0, kScheme.size()), kScheme))
    return false;
  std::string_view given = trim(a.substr(kScheme.size()));
  if (given.empty()) return false;
  // Constant time in the content: every byte of every token is looked at, and the
  // loop never exits early (only the lengths can be learnt, not the bytes).
  unsigned match = 0;
  for (const auto& t : tokens) {
    unsigned diff = t.size() != given.size() ? 1u : 0u;
    for (size_t i = 0; i < t.size(); ++i) {
      unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
      diff |= static_cast<unsigned char>(t[i]) ^ g;
    }
    match |= static_cast<unsigned>(diff == 0);
  }
  return match != 0;
}

}  // namespace sluice::http
