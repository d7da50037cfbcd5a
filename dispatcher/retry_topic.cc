#include "dispatcher/retry_topic.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace sluice::dispatcher::retry {

namespace {

template <typename T>
bool parse_int(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc{} && p == s.data() + s.size();
}

std::string origin_of(const Event& ev) {
  return ev.broker + '/' + ev.topic + '/' + std::to_string(ev.partition) + '/' +
         std::to_string(ev.offset);
}

// "broker/topic/partition/offset"; the topic may itself contain '/'.
bool parse_origin(std::string_view s, Event& ev) {
  const auto first = s.find('/');
  const auto last = s.rfind('/');
  if (first == std::string_view::npos || last == first) return false;
  const auto mid = s.rfind('/', last - 1);
  if (mid == std::string_view::npos || mid <= first) return false;
  int32_t partition = 0;
  int64_t offset = 0;
  if (!parse_int(s.substr(mid + 1, last - mid - 1), partition) ||
      !parse_int(s.substr(last + 1), offset))
    return false;
  ev.broker = std::string(s.substr(0, first));
  ev.topic = std::string(s.substr(first + 1, mid - first - 1));
  ev.partition = partition;
  ev.offset = offset;
  return true;
}

}  // namespace

Event make_event(const Event& ev, const State& st, const seal::Keyring& keys,
                 std::string_view function) {
  Event out = ev;
  if (!out.header(kOrigin)) out.set_header(std::string(kOrigin), origin_of(ev));
  out.set_header(std::string(kAttempt), std::to_string(st.attempts));
  out.set_header(std::string(kDue), std::to_string(st.due_ms));
  out.set_header(std::string(kFirstFailure), std::to_string(st.first_failure_ms));
  out.attempt = 0;
  out.first_attempt_time_ms = 0;
  keys.apply(seal::Kind::retry, out, function);
  return out;
}

Result<State> take_state(Event& ev) {
  State st;
  std::string problem;
  const auto field = [&](std::string_view name, auto& out) {
    const std::string* v = ev.header(name);
    if (!v) {
      if (problem.empty()) problem = "header " + std::string(name) + " is missing";
    } else if (!parse_int(*v, out)) {
      if (problem.empty())
        problem = "header " + std::string(name) + " is not a number: \"" + *v + "\"";
    }
  };
  field(kAttempt, st.attempts);
  field(kDue, st.due_ms);
  field(kFirstFailure, st.first_failure_ms);
  if (const std::string* o = ev.header(kOrigin)) {
    if (!parse_origin(*o, ev) && problem.empty())
      problem = "header " + std::string(kOrigin) + " is malformed: \"" + *o + "\"";
  } else if (problem.empty()) {
    problem = "header " + std::string(kOrigin) + " is missing";
  }
  seal::strip(seal::Kind::retry, ev);
  if (!problem.empty()) return Error{Errc::corrupt, "retry record: " + problem};
  return st;
}

}  // namespace sluice::dispatcher::retry
