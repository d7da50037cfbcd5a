// A broker's probe (core/broker_probe.h) as Metrics exports it:
// sluice_broker_errors_total{broker,kind}, read at scrape time, every kind present
// from the start, and a probe whose broker is gone skipped.
#include <gtest/gtest.h>

#include <memory>

#include "core/broker_probe.h"
#include "metrics/metrics.h"
#include "tests/support/metrics_text.h"

namespace sluice {
namespace {

class TwoKinds final : public CountingProbe<2> {
 public:
  TwoKinds() : CountingProbe({"decode", "consume"}) {}
  void decode_error() { count(0); }
};

std::optional<double> errors(const Metrics& m, const std::string& broker, const std::string& kind) {
  return testsupport::sample(
      m.text(), "sluice_broker_errors_total{broker=\"" + broker + "\",kind=\"" + kind + "\"}");
}

TEST(BrokerProbe, CountsAreReadAtScrapeTime) {
  Metrics m;
  auto probe = std::make_shared<TwoKinds>();
  m.add_probe("k", probe);
  EXPECT_EQ(errors(m, "k", "decode"), 0.0);  // present before it moves
  EXPECT_EQ(errors(m, "k", "consume"), 0.0);
  probe->decode_error();
  probe->decode_error();
  EXPECT_EQ(errors(m, "k", "decode"), 2.0);
  EXPECT_EQ(errors(m, "k", "consume"), 0.0);
  EXPECT_NE(m.text().find("# TYPE sluice_broker_errors_total counter"), std::string::npos);
}

TEST(BrokerProbe, ABrokerWithoutProbeOrGoneIsSkipped) {
  Metrics m;
  m.add_probe("none", std::shared_ptr<const BrokerProbe>());  // Broker::probe() default
  {
    auto gone = std::make_shared<TwoKinds>();
    m.add_probe("gone", gone);
    EXPECT_EQ(errors(m, "gone", "decode"), 0.0);
  }
  EXPECT_EQ(errors(m, "gone", "decode"), std::nullopt);
  EXPECT_EQ(m.text().find("sluice_broker_errors_total"), std::string::npos);
}

}  // namespace
}  // namespace sluice
