// bench_rate_limit_keys: memory of a `rate_limit: { by: key }` limit fed KEYS distinct
// keys (default 1,000,000), beside a baseline map that remembers every key (what a
// limit without the LRU's cap would hold). Prints the process RSS growth, and the time
// per admission. Each side runs in its own process (freed memory stays in the
// allocator). A benchmark, not a test: it exits non-zero only when the limiter holds
// more keys than its cap.
//
//   bench_rate_limit_keys sluice|baseline [KEYS] [CAP]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <unordered_map>

#include "dispatcher/rate_limit.h"

namespace {

long rss_kib() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  return -1;
}

std::string key_of(size_t i) { return "user-" + std::to_string(i * 2654435761u % 1000000007u); }

}  // namespace

int main(int argc, char** argv) {
  using sluice::dispatcher::RateClock;
  using sluice::dispatcher::RateLimiter;
  const std::string side = argc > 1 ? argv[1] : "sluice";
  const size_t keys = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1'000'000;
  const size_t cap = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : RateLimiter::kMaxKeys;
  if (side == "baseline") {
    // Every key remembered: a bucket per key without the LRU.
    const long before = rss_kib();
    std::unordered_map<std::string, sluice::dispatcher::TokenBucket> all;
    const auto now = RateClock::now();
    for (size_t i = 0; i < keys; ++i)
      all.try_emplace(key_of(i), sluice::dispatcher::TokenBucket::full(1, now));
    std::printf("RESULT rate_limit_keys baseline keys=%zu held=%zu rss_growth_kib=%ld\n", keys,
                all.size(), rss_kib() - before);
    return 0;
  }

  const long before = rss_kib();
  size_t at_cap_kib = 0;
  double ns_per_key = 0;
  size_t held = 0;
  uint64_t evicted = 0;
  {
    RateLimiter limiter({.per_second = 1, .burst = 1, .by_key = true}, RateClock::now(), cap);
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t i = 0; i < keys; ++i) {
      (void)limiter.try_take(key_of(i), RateClock::now());
      if (i + 1 == cap) at_cap_kib = static_cast<size_t>(rss_kib() - before);
    }
    ns_per_key = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0)
                     .count() / static_cast<double>(keys);
    held = limiter.keys();
    evicted = limiter.evicted();
    const long after = rss_kib();
    std::printf("RESULT rate_limit_keys sluice keys=%zu cap=%zu held=%zu evicted=%llu "
                "rss_growth_at_cap_kib=%zu rss_growth_kib=%ld ns_per_admission=%.0f\n",
                keys, cap, held, static_cast<unsigned long long>(evicted), at_cap_kib,
                after - before, ns_per_key);
  }
  return held <= cap ? 0 : 1;
}
