#include "broker-adapters/nats/nats_subject.h"

namespace sluice::nats {

std::vector<std::string_view> subject_tokens(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    out.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return out;
    start = dot + 1;
  }
}

bool subject_matches(std::string_view pattern, std::string_view subject) {
  auto p = subject_tokens(pattern), t = subject_tokens(subject);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return t.size() > i;
    if (i >= t.size()) return false;
    if (p[i] != "*" && p[i] != t[i]) return false;
  }
  return p.size() == t.size();
}

bool subject_covers(std::string_view pattern, std::string_view filter) {
  auto p = subject_tokens(pattern), f = subject_tokens(filter);
  for (size_t i = 0; i < p.size(); ++i) {
    if (p[i] == ">") return f.size() > i;
    if (i >= f.size() || f[i] == ">") return false;
    if (p[i] == "*") continue;
    if (f[i] == "*" || p[i] != f[i]) return false;
  }
  return p.size() == f.size();
}

}  // namespace sluice::nats
