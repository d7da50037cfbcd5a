#include "broker-adapters/http/metrics_listener.h"

#include <gtest/gtest.h>

#include "broker-adapters/http/tests/test_support.h"

namespace sluice::http::testing {
namespace {


MetricsConfig local_metrics(std::string tokens_file = "") {
  MetricsConfig cfg;
  cfg.enabled = true;
  cfg.listen = "127.0.0.1:0";
  cfg.bearer_tokens_file = std::move(tokens_file);
  return cfg;
}

TEST(MetricsListener, BearerTokensAreRequiredWhenConfigured) {
  TempFile tokens("# scrapers\nscrape-secret\n");
  metrics::Metrics metrics;
  MetricsListener listener(local_metrics(tokens.path()), metrics);
  auto r = listener.start();
  ASSERT_TRUE(r) << r.error().message;
  Client client(listener.port());
  auto none = client.get("/metrics");
  EXPECT_EQ(none.result(), Status::unauthorized);
  EXPECT_EQ(none.body().find("sluice_"), std::string::npos);
  EXPECT_EQ(client.get("/metrics", {{"Authorization", "Bearer wrong"}}).result(),
            Status::unauthorized);
  auto ok = client.get("/metrics", {{"Authorization", "Bearer scrape-secret"}});
  EXPECT_EQ(ok.result(), Status::ok);
  EXPECT_EQ(ok[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(ok.body().find("sluice_http_connections{listener=\"metrics\"} 1"),
            std::string::npos)
      << ok.body();
  // /metrics and nothing else.
  EXPECT_EQ(client.get("/topics/x", {{"Authorization", "Bearer scrape-secret"}}).result(),
            Status::not_found);
}

TEST(MetricsListener, WithoutTokensServesMetricsOnly) {
  metrics::Metrics metrics;
  MetricsListener listener(local_metrics(), metrics);
  ASSERT_TRUE(listener.start());
  Client client(listener.port());
  EXPECT_EQ(client.get("/metrics").result(), Status::ok);
  EXPECT_EQ(client.get("/healthz").result(), Status::not_found);
}

TEST(MetricsListener, TakenPortAndBadTokenFileAreClearErrors) {
  metrics::Metrics metrics;
  MetricsListener first(local_metrics(), metrics);
  ASSERT_TRUE(first.start());
  MetricsConfig cfg = local_metrics();
  cfg.listen = "127.0.0.1:" + std::to_string(first.port());
  MetricsListener second(cfg, metrics);
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("metrics: cannot listen on " + cfg.listen), std::string::npos)
      << r.error().message;

  TempFile empty("# nothing\n");
  MetricsListener no_tokens(local_metrics(empty.path()), metrics);
  auto e = no_tokens.start();
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("metrics.auth.bearer_tokens_file"), std::string::npos)
      << e.error().message;
}

}  // namespace
}  // namespace sluice::http::testing
