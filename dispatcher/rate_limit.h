// Rate limits of a function (`rate_limit:` in the config): a token bucket for the whole
// function, or one bucket per event key kept in an LRU of bounded size.
//
// Pure and clock-injected: every call takes the time `now`; nothing here reads a clock,
// sleeps or touches the dispatcher. The dispatcher (dispatcher.cc, flow_admit) asks it
// before an invocation takes a worker and arms a timer for the wait it answers.
//
// Threads: not thread-safe; each instance is owned by one thread (the dispatcher's).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>

namespace sluice::dispatcher {

using RateClock = std::chrono::steady_clock;
using RateWait = std::chrono::nanoseconds;

// The state of one bucket: 16 bytes, so that a large LRU of keys stays small. The rate
// and the burst live with whoever owns the buckets (RateLimiter).
struct TokenBucket {
  double tokens = 0;       // may go below 0: tokens reserved ahead (reserve())
  int64_t stamp_ns = 0;    // RateClock time of the last refill

  // A full bucket at `now`.
  static TokenBucket full(double burst, RateClock::time_point now);
  // Adds what accrued since the last refill, up to `burst`.
  void refill(double per_second, double burst, RateClock::time_point now);
  // Takes one token if there is one (true), else takes nothing.
  bool try_take(double per_second, double burst, RateClock::time_point now);
  // How long from `now` until a whole token is there (0 if one is).
  RateWait wait(double per_second, double burst, RateClock::time_point now);
  // Takes one token now, borrowing from the future when the bucket is empty, and
  // answers when that token is due (0 = now). Successive reservations are spaced
  // 1/per_second apart, so the events they admit keep the rate exactly.
  RateWait reserve(double per_second, double burst, RateClock::time_point now);
};

// Buckets by key, the least recently used evicted beyond `cap` keys. An evicted key
// that comes back starts with a full bucket (it is as if it had been idle long enough
// to refill). Memory: one list node and one hash node per key (plus the key itself),
// at most `cap` keys.
class KeyedBuckets {
 public:
  KeyedBuckets(double burst, size_t cap);

  // The bucket of `key`, made full (and the least recently used evicted when full)
  // if absent; marks it most recently used. Valid until the next call.
  TokenBucket& get(std::string_view key, RateClock::time_point now);

  size_t size() const { return index_.size(); }
  size_t cap() const { return cap_; }
  uint64_t evicted() const { return evicted_; }
  bool contains(std::string_view key) const { return index_.count(key) != 0; }

 private:
  struct Entry {
    std::string key;
    TokenBucket bucket;
  };
  double burst_;
  size_t cap_;
  uint64_t evicted_ = 0;
  std::list<Entry> order_;  // most recently used first; stable addresses for index_ keys
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;
};

// What a function's `rate_limit` asks of one invocation.
struct RateSpec {
  double per_second = 0;  // > 0
  double burst = 1;       // >= 1
  bool by_key = false;    // one bucket per event key; events without one share a bucket
};

// One function's rate limit: its bucket, or its buckets by key.
class RateLimiter {
 public:
  // Keys remembered by a `by: key` limit (the LRU's cap).
  static constexpr size_t kMaxKeys = 100'000;

  RateLimiter(const RateSpec& spec, RateClock::time_point now, size_t max_keys = kMaxKeys);

  const RateSpec& spec() const { return spec_; }

  // One token for an event of `key` (ignored unless by_key): true if taken now.
  bool try_take(std::string_view key, RateClock::time_point now);
  // Until a token of `key` is there (0 if one is).
  RateWait wait(std::string_view key, RateClock::time_point now);
  // One token of `key`, borrowed ahead when there is none: when it is due (0 = now).
  RateWait reserve(std::string_view key, RateClock::time_point now);

  size_t keys() const { return keyed_.size(); }
  uint64_t evicted() const { return keyed_.evicted(); }

 private:
  TokenBucket& bucket(std::string_view key, RateClock::time_point now);
  RateSpec spec_;
  TokenBucket shared_;   // the function's bucket, or by_key's for events without a key
  KeyedBuckets keyed_;
};

// Burst when the config names none: one second of tokens, at least one.
double default_burst(double per_second);

}  // namespace sluice::dispatcher
