#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "core/version.h"
#include "metrics/build_info.h"
#include "metrics/metrics.h"

namespace sluice::metrics::testing {
namespace {

TEST(BuildInfo, VersionIsTheProjectVersionAndCommitIsAGitHashOrUnknown) {
  EXPECT_STREQ(sluice::kVersion, SLUICE_PROJECT_VERSION);
  EXPECT_TRUE(std::regex_match(std::string(build::kCommit), std::regex("[0-9a-f]{7,40}|unknown")))
      << build::kCommit;
}

TEST(BuildInfo, ExportedAsAGaugeOfOne) {
  Metrics metrics;
  const std::string text = metrics.text();
  EXPECT_NE(text.find("# TYPE sluice_build_info gauge\n"), std::string::npos) << text;
  const std::string series = "sluice_build_info{commit=\"" + std::string(build::kCommit) +
                             "\",version=\"" + SLUICE_PROJECT_VERSION + "\"} 1\n";
  EXPECT_NE(text.find(series), std::string::npos) << text;
}

}  // namespace
}  // namespace sluice::metrics::testing
