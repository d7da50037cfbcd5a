#include "config/backoff.h"

#include <algorithm>

namespace sluice::config {

std::chrono::milliseconds backoff_delay(const RetryPolicy& p, uint32_t failed_attempt,
                                        std::mt19937_64& rng,
                                        std::optional<std::chrono::milliseconds> hint) {
  using std::chrono::milliseconds;
  const int64_t cap = std::max<int64_t>(p.max.count(), 0);
  int64_t base = std::max<int64_t>(p.initial.count(), 0);
  if (p.backoff == BackoffKind::exponential) {
    // initial * 2^(n-1), saturating at the cap without overflowing.
    for (uint32_t i = 1; i < failed_attempt && base < cap; ++i) base *= 2;
  }
  base = std::min(base, cap);
  int64_t d = base;
  switch (p.jitter) {
    case Jitter::full:
      d = base > 0 ? std::uniform_int_distribution<int64_t>(0, base)(rng) : 0;
      break;
    case Jitter::equal:
      d = base / 2 + (base > 1 ? std::uniform_int_distribution<int64_t>(0, base - base / 2)(rng) : 0);
      break;
    case Jitter::none:
      break;
  }
  if (hint) d = std::max<int64_t>(d, hint->count());
  return milliseconds(std::min(d, cap));
}

}  // namespace sluice::config
