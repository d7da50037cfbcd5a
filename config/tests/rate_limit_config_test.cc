// functions[].rate_limit and max_per_key: parsing, defaults and refusals.
#include <gtest/gtest.h>

#include "config/tests/test_util.h"

namespace sluice::config::testing {
namespace {

std::string fn(const std::string& extra, const std::string& ordering = "partition") {
  return "functions:\n  - name: f\n    command: [x]\n    subscribe: [{ topic: t, ordering: " +
         ordering + " }]\n" + extra;
}

TEST(RateLimitConfig, PerFunctionWithDefaultBurst) {
  auto r = load(fn("    rate_limit: { per_second: 7.5 }\n"));
  ASSERT_TRUE(r.config) << dump(r);
  const auto& rl = r.config->functions[0].rate_limit;
  ASSERT_TRUE(rl);
  EXPECT_DOUBLE_EQ(rl->per_second, 7.5);
  EXPECT_EQ(rl->burst, 8u);  // one second of tokens, rounded up
  EXPECT_FALSE(rl->by_key);
  EXPECT_EQ(r.config->functions[0].max_per_key, 0u);
}

TEST(RateLimitConfig, FractionalRateBurstAtLeastOneAndByKey) {
  auto r = load(fn("    rate_limit: { per_second: 0.2, by: key }\n"));
  ASSERT_TRUE(r.config) << dump(r);
  EXPECT_DOUBLE_EQ(r.config->functions[0].rate_limit->per_second, 0.2);
  EXPECT_EQ(r.config->functions[0].rate_limit->burst, 1u);
  EXPECT_TRUE(r.config->functions[0].rate_limit->by_key);
  auto b = load(fn("    rate_limit: { per_second: 100, burst: 3 }\n"));
  ASSERT_TRUE(b.config) << dump(b);
  EXPECT_EQ(b.config->functions[0].rate_limit->burst, 3u);
}

TEST(RateLimitConfig, AbsentMeansUnlimited) {
  auto r = load(fn(""));
  ASSERT_TRUE(r.config) << dump(r);
  EXPECT_FALSE(r.config->functions[0].rate_limit);
}

TEST(RateLimitConfig, BadRatesAreRefused) {
  auto neg = load(fn("    rate_limit: { per_second: -5 }\n"));
  EXPECT_CONFIG_ERROR(neg, "functions[0].rate_limit.per_second", 5, "must be in 0.001..1000000");
  auto zero = load(fn("    rate_limit: { per_second: 0 }\n"));
  EXPECT_CONFIG_ERROR(zero, "functions[0].rate_limit.per_second", 5, "must be in");
  auto word = load(fn("    rate_limit: { per_second: fast }\n"));
  EXPECT_CONFIG_ERROR(word, "functions[0].rate_limit.per_second", 5, "expected a number");
  auto nan = load(fn("    rate_limit: { per_second: .nan }\n"));
  EXPECT_CONFIG_ERROR(nan, "functions[0].rate_limit.per_second", 5, "expected a number");
  auto burst = load(fn("    rate_limit: { per_second: 1, burst: 0 }\n"));
  EXPECT_CONFIG_ERROR(burst, "functions[0].rate_limit.burst", 5, "must be in 1..1000000");
  auto missing = load(fn("    rate_limit: { burst: 2 }\n"));
  EXPECT_CONFIG_ERROR(missing, "functions[0].rate_limit.per_second", 5, "");
  auto by = load(fn("    rate_limit: { per_second: 1, by: user }\n"));
  EXPECT_CONFIG_ERROR(by, "functions[0].rate_limit.by", 5, "expected one of function | key");
  auto unknown = load(fn("    rate_limit: { per_second: 1, per_minute: 2 }\n"));
  EXPECT_FALSE(unknown.config);
}

TEST(RateLimitConfig, MaxPerKeyOnlyWithoutOrdering) {
  auto ok = load(fn("    max_per_key: 2\n", "none"));
  ASSERT_TRUE(ok.config) << dump(ok);
  EXPECT_EQ(ok.config->functions[0].max_per_key, 2u);
  auto keyed = load(fn("    max_per_key: 2\n", "key"));
  EXPECT_CONFIG_ERROR(keyed, "functions[0].max_per_key", 5, "ordering: none");
  auto part = load(fn("    max_per_key: 1\n"));
  EXPECT_CONFIG_ERROR(part, "functions[0].max_per_key", 5, "ordering: none");
  auto zero = load(fn("    max_per_key: 0\n"));  // 0 = no limit, fine with any ordering
  ASSERT_TRUE(zero.config) << dump(zero);
  auto neg = load(fn("    max_per_key: -1\n", "none"));
  EXPECT_CONFIG_ERROR(neg, "functions[0].max_per_key", 5, "must be in");
}

}  // namespace
}  // namespace sluice::config::testing
