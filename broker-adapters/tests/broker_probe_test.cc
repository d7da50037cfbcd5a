// A broker's probe (core/broker_probe.h) as Metrics exports it:
// sluice_broker_errors_total{broker,kind}, read at scrape time, every kind present
// from the start, and a probe whose broker is gone skipped.
#include <gtest/gtest.h>

#include <memory>

#include "core/broker_probe.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice::brokers::testing {
namespace {

enum class Kind : uint8_t { decode, consume };
std::shared_ptr<CountingProbe<Kind, 2>> two_kinds() {
  return std::make_shared<CountingProbe<Kind, 2>>(std::array<std::string_view, 2>{"decode", "consume"});
}

std::optional<double> errors(const metrics::Metrics& m, const std::string& broker, const std::string& kind) {
  return testsupport::sample(
      m.text(), "sluice_broker_errors_total{broker=\"" + broker + "\",kind=\"" + kind + "\"}");
}

TEST(BrokerProbe, CountsAreReadAtScrapeTime) {
  metrics::Metrics m;
  auto probe = two_kinds();
  m.add_probe("k", probe);
  EXPECT_EQ(errors(m, "k", "decode"), 0.0);  // present before it moves
  EXPECT_EQ(errors(m, "k", "consume"), 0.0);
  probe->count(Kind::decode);
  probe->count(Kind::decode);
  EXPECT_EQ(errors(m, "k", "decode"), 2.0);
  EXPECT_EQ(errors(m, "k", "consume"), 0.0);
  EXPECT_NE(m.text().find("# TYPE sluice_broker_errors_total counter"), std::string::npos);
}

TEST(BrokerProbe, ABrokerWithoutProbeOrGoneIsSkipped) {
  metrics::Metrics m;
  m.add_probe("none", std::shared_ptr<const BrokerProbe>());  // Broker::probe() default
  {
    auto gone = two_kinds();
    m.add_probe("gone", gone);
    EXPECT_EQ(errors(m, "gone", "decode"), 0.0);
  }
  EXPECT_EQ(errors(m, "gone", "decode"), std::nullopt);
  EXPECT_EQ(m.text().find("sluice_broker_errors_total"), std::string::npos);
}

}  // namespace
}  // namespace sluice::brokers::testing
