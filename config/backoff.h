// Retry delays: exponential (or fixed) backoff with jitter (AWS "full jitter" by
// default). Pure: the random source is passed in, so tests are deterministic.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>

#include "config/config.h"

namespace sluice::config {

// Delay before the next attempt after `failed_attempt` (1-based) failed.
// `hint` (a function's Retry-After) raises the delay, still capped by policy.max.
std::chrono::milliseconds backoff_delay(const RetryPolicy& p, uint32_t failed_attempt,
                                        std::mt19937_64& rng,
                                        std::optional<std::chrono::milliseconds> hint = {});

}  // namespace sluice::config
