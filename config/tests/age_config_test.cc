// max_age / on_expired and retry.max_crashes (dispatcher/age.h): parsed, defaulted,
// and their bad forms refused with the field and line.
#include <gtest/gtest.h>

#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

TEST(ConfigAge, MaxAgeOnExpiredAndMaxCrashesAreRead) {
  auto r = load(R"(functions:
  - name: f
    command: [x]
    max_age: 15m
    on_expired: drop
    retry: { max_crashes: 3 }
  - { name: g, command: [x] }
)");
  ASSERT_TRUE(r.config) << (r.errors.empty() ? "" : r.errors[0].to_string());
  const FunctionConfig& f = r.config->functions[0];
  EXPECT_EQ(f.max_age, std::chrono::minutes(15));
  EXPECT_EQ(f.on_expired, OnExpired::drop);
  EXPECT_EQ(f.retry.max_crashes, 3u);
  const FunctionConfig& g = r.config->functions[1];
  EXPECT_EQ(g.max_age.count(), 0);  // no limit
  EXPECT_EQ(g.on_expired, OnExpired::dead_letter);
  EXPECT_EQ(g.retry.max_crashes, 2u);
}

TEST(ConfigAge, BadFormsAreRefused) {
  auto r = load(R"(functions:
  - { name: a, command: [x], max_age: 0s }
  - { name: b, command: [x], max_age: -5m }
  - { name: c, command: [x], max_age: 0 }
  - { name: d, command: [x], on_expired: keep }
  - { name: e, command: [x], retry: { max_crashes: 0 } }
)");
  EXPECT_CONFIG_ERROR(r, "functions[0].max_age", 2, "must be at least 1ms, got \"0s\"");
  EXPECT_CONFIG_ERROR(r, "functions[1].max_age", 3, "must not be negative");
  EXPECT_CONFIG_ERROR(r, "functions[2].max_age", 4, "missing unit");
  EXPECT_CONFIG_ERROR(r, "functions[3].on_expired", 5, "dead_letter");
  EXPECT_CONFIG_ERROR(r, "functions[4].retry.max_crashes", 6, "must be in 1..1000, got 0");
}

}  // namespace
}  // namespace sluice::config::testing
