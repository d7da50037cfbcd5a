#include "dispatcher/age.h"

#include <algorithm>
#include <string>

namespace sluice::dispatcher::age {

std::optional<int64_t> origin_ms(const Event& e) {
  if (!e.time.empty()) {
    if (auto t = parse_rfc3339(e.time)) return t.value();
  }
  if (e.broker_timestamp_ms > 0) return e.broker_timestamp_ms;
  return std::nullopt;
}

int64_t age_ms(int64_t origin, int64_t now_ms) {
  if (now_ms <= origin) return 0;
  // Far-off times (year 1 in `time`) must not overflow.
  if (origin < 0 && now_ms > INT64_MAX + origin) return INT64_MAX;
  return now_ms - origin;
}

bool expired(std::optional<int64_t> origin, std::chrono::milliseconds max_age, int64_t now_ms) {
  if (max_age.count() <= 0 || !origin) return false;
  return age_ms(*origin, now_ms) > max_age.count();
}

namespace {
std::string human(int64_t ms) {
  if (ms < 1000) return std::to_string(ms) + "ms";
  int64_t s = ms / 1000;
  std::string out;
  if (s >= 86400) out += std::to_string(s / 86400) + "d", s %= 86400;
  if (s >= 3600) out += std::to_string(s / 3600) + "h", s %= 3600;
  if (s >= 60) out += std::to_string(s / 60) + "m", s %= 60;
  if (s > 0 || out.empty()) out += std::to_string(s) + "s";
  return out;
}
}  // namespace

std::string describe(int64_t age, std::chrono::milliseconds max_age) {
  return "age " + human(age) + " > max_age " + human(max_age.count());
}

}  // namespace sluice::dispatcher::age

namespace sluice::dispatcher::crash {

void Ledger::put(std::string key, uint32_t crashes) {
  auto [it, inserted] = counts_.insert_or_assign(key, crashes);
  if (inserted) order_.push_back(std::move(key));
  while (counts_.size() > kCap || order_.size() > 2 * kCap) {
    counts_.erase(order_.front());
    order_.pop_front();
  }
}

uint32_t Ledger::take(const std::string& key) {
  auto it = counts_.find(key);
  if (it == counts_.end()) return 0;
  const uint32_t n = it->second;
  counts_.erase(it);
  return n;
}

}  // namespace sluice::dispatcher::crash
