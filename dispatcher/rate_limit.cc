#include "dispatcher/rate_limit.h"

#include <algorithm>
#include <cmath>

namespace sluice::dispatcher {

namespace {
int64_t ns_of(RateClock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}
// Seconds until `missing` tokens accrue, as a wait rounded up to the next nanosecond.
RateWait wait_for(double missing, double per_second) {
  if (missing <= 0) return RateWait::zero();
  const double ns = std::ceil(missing / per_second * 1e9);
  constexpr double kMax = 1e18;  // ~31 years: far enough, and no overflow
  return RateWait(static_cast<int64_t>(std::min(ns, kMax)));
}
}  // namespace

double default_burst(double per_second) { return std::max(1.0, std::ceil(per_second)); }

TokenBucket TokenBucket::full(double burst, RateClock::time_point now) {
  return TokenBucket{burst, ns_of(now)};
}

void TokenBucket::refill(double per_second, double burst, RateClock::time_point now) {
  const int64_t t = ns_of(now);
  if (t <= stamp_ns) return;  // a clock reading from before the last one adds nothing
  tokens = std::min(burst, tokens + static_cast<double>(t - stamp_ns) * 1e-9 * per_second);
  stamp_ns = t;
}

bool TokenBucket::try_take(double per_second, double burst, RateClock::time_point now) {
  refill(per_second, burst, now);
  if (tokens < 1) return false;
  tokens -= 1;
  return true;
}

RateWait TokenBucket::wait(double per_second, double burst, RateClock::time_point now) {
  refill(per_second, burst, now);
  return wait_for(1 - tokens, per_second);
}

RateWait TokenBucket::reserve(double per_second, double burst, RateClock::time_point now) {
  refill(per_second, burst, now);
  tokens -= 1;
  return wait_for(-tokens, per_second);
}

KeyedBuckets::KeyedBuckets(double burst, size_t cap)
    : burst_(burst), cap_(std::max<size_t>(cap, 1)) {}

TokenBucket& KeyedBuckets::get(std::string_view key, RateClock::time_point now) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    order_.splice(order_.begin(), order_, it->second);  // most recently used
    return it->second->bucket;
  }
  if (index_.size() >= cap_) {
    // The least recently used key goes; its node is reused for the new one.
    index_.erase(order_.back().key);
    order_.splice(order_.begin(), order_, std::prev(order_.end()));
    order_.front().key.assign(key);
    order_.front().bucket = TokenBucket::full(burst_, now);
    ++evicted_;
  } else {
    order_.push_front(Entry{std::string(key), TokenBucket::full(burst_, now)});
  }
  index_.emplace(order_.front().key, order_.begin());
  return order_.front().bucket;
}

RateLimiter::RateLimiter(const RateSpec& spec, RateClock::time_point now, size_t max_keys)
    : spec_(spec),
      shared_(TokenBucket::full(spec.burst, now)),
      keyed_(spec.burst, max_keys) {}

TokenBucket& RateLimiter::bucket(std::string_view key, RateClock::time_point now) {
  if (!spec_.by_key || key.empty()) return shared_;
  return keyed_.get(key, now);
}

bool RateLimiter::try_take(std::string_view key, RateClock::time_point now) {
  return bucket(key, now).try_take(spec_.per_second, spec_.burst, now);
}

RateWait RateLimiter::wait(std::string_view key, RateClock::time_point now) {
  return bucket(key, now).wait(spec_.per_second, spec_.burst, now);
}

RateWait RateLimiter::reserve(std::string_view key, RateClock::time_point now) {
  return bucket(key, now).reserve(spec_.per_second, spec_.burst, now);
}

}  // namespace sluice::dispatcher
