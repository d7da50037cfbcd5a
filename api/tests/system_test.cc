// GET /system/functions shows the flow-control settings as the config wrote them:
// each subscription's filter (the sql text or the dialect map), rate_limit,
// max_per_key, max_age and on_expired; null / 0 where the config sets none.
#include "api/system.h"

#include <gtest/gtest.h>

#include "api/http_api.h"
#include "broker-adapters/http/tests/test_support.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::api::testing {
namespace {

using namespace http;  // the transport the routes are served on
using namespace dispatcher::testing;

Config load(const std::string& yaml) {
  auto r = load_config_string(yaml, ".");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  return r.config.value_or(Config{});
}

constexpr const char* kYaml = R"(
functions:
  - name: shaped
    command: [cat]
    subscribe:
      - { topic: orders, ordering: none, filter: { sql: "type LIKE 'order.%' AND int(priority) > 3" } }
      - topic: audit
        ordering: none
        filter:
          any:
            - { prefix: { type: "com.example.", source: /billing } }
            - { not: { exact: { subject: noise } } }
      - { topic: plain, ordering: none }
    rate_limit: { per_second: 2.5, burst: 5 }
    max_per_key: 2
    max_age: 15m
    on_expired: drop
  - name: bare
    command: [cat]
    subscribe: [{ topic: other }]
    rate_limit: { per_second: 10, by: key }
)";

TEST(SystemFunctions, FiltersAndFlowControlAsWritten) {
  Config cfg = load(kYaml);
  ASSERT_EQ(cfg.functions.size(), 2u);
  const auto shaped = function_config_json(cfg.functions[0]);
  const auto& subs = shaped["subscriptions"];
  ASSERT_EQ(subs.size(), 3u);
  EXPECT_EQ(subs[0]["filter"],
            (nlohmann::json{{"sql", "type LIKE 'order.%' AND int(priority) > 3"}}));
  EXPECT_EQ(subs[1]["filter"], nlohmann::json::parse(R"({"any": [
      {"prefix": {"type": "com.example.", "source": "/billing"}},
      {"not": {"exact": {"subject": "noise"}}}]})"));
  EXPECT_TRUE(subs[2]["filter"].is_null());
  EXPECT_EQ(subs[0]["ordering"], "none");
  EXPECT_EQ(shaped["rate_limit"],
            (nlohmann::json{{"per_second", 2.5}, {"burst", 5}, {"by", "function"}}));
  EXPECT_EQ(shaped["max_per_key"], 2);
  EXPECT_EQ(shaped["max_age"], "15m");
  EXPECT_EQ(shaped["on_expired"], "drop");

  const auto bare = function_config_json(cfg.functions[1]);
  EXPECT_EQ(bare["rate_limit"]["by"], "key");
  EXPECT_EQ(bare["rate_limit"]["burst"], 10);  // per_second rounded up
  EXPECT_EQ(bare["max_per_key"], 0);
  EXPECT_TRUE(bare["max_age"].is_null());
  EXPECT_EQ(bare["on_expired"], "dead_letter");
}

// The route serves the same fields next to the live ones.
TEST(SystemFunctions, TheRouteServesTheConfigFieldsWithTheLiveOnes) {
  Config cfg = load(kYaml);
  metrics::Metrics metrics;
  FakeSink dlq;
  FakeRuntime rt;
  dispatcher::Dispatcher d(metrics);
  std::map<std::string, std::unique_ptr<Runtime>> runtimes;
  for (const auto& fn : cfg.functions) {
    d.add_function({&fn, &rt, &dlq, nullptr});
    runtimes.emplace(fn.name, std::make_unique<FakeRuntime>());
  }
  d.start();
  http::testing::RecordingSink sink;
  HttpConfig hc;
  hc.listen = "127.0.0.1:0";
  api::HttpApi server(hc, {{"mem", &sink}}, "mem", {}, {});
  add_system_routes(server.server(), {&cfg, &d, &runtimes, [](const std::string&) {
                                        return PoolView{3, true};
                                      }});
  ASSERT_TRUE(server.start());
  http::testing::Client client(server.port());
  auto res = client.get("/system/functions");
  ASSERT_EQ(res.result(), Status::ok) << res.body();
  const auto j = http::testing::json_of(res);
  ASSERT_TRUE(j.is_array() && j.size() == 2) << res.body();
  for (size_t i = 0; i < 2; ++i) {
    nlohmann::json config_part = j[i];
    for (const char* live : {"replicas", "workers", "workers_desired", "autoscaled", "inflight",
                             "running", "paused"}) {
      EXPECT_TRUE(config_part.contains(live)) << live;
      config_part.erase(live);
    }
    EXPECT_EQ(config_part, function_config_json(cfg.functions[i]));
  }
  EXPECT_EQ(j[0]["workers_desired"], 3);
  EXPECT_EQ(j[0]["subscriptions"][0]["filter"]["sql"], "type LIKE 'order.%' AND int(priority) > 3");
  server.stop();
  d.stop();
}

}  // namespace
}  // namespace sluice::api::testing
