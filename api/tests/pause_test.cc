// POST /system/functions/{name}/pause and /resume through a real dispatcher: bearer
// tokens, unknown functions, idempotence, and the state in GET /system/functions.
#include "api/pause.h"

#include <gtest/gtest.h>

#include "api/http_api.h"
#include "api/system.h"
#include "broker-adapters/http/tests/test_support.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::api::testing {
namespace {

using namespace http;  // the transport the routes are served on
using namespace dispatcher::testing;

TEST(PauseRoutes, PauseAndResumeAreProtectedIdempotentAndShownInSystemFunctions) {
  Config cfg;
  FunctionConfig fn;
  fn.name = "f.v1";
  fn.dead_letter = {"mem", "f.dlq"};
  cfg.functions.push_back(fn);
  metrics::Metrics metrics;
  FakeSink dlq;
  FakeRuntime rt;
  dispatcher::Dispatcher d(metrics);
  d.add_function({&cfg.functions[0], &rt, &dlq, nullptr});
  d.start();
  std::map<std::string, std::unique_ptr<Runtime>> runtimes;
  runtimes.emplace("f.v1", std::make_unique<FakeRuntime>());
  http::testing::RecordingSink sink;
  http::testing::TempFile tokens("s3cret\n");
  HttpConfig hc;
  hc.listen = "127.0.0.1:0";
  hc.bearer_tokens_file = tokens.path();
  api::HttpApi server(hc, {{"mem", &sink}}, "mem", {}, {});
  add_system_routes(server.server(), {&cfg, &d, &runtimes, [](const std::string&) {
                                        return PoolView{};
                                      }});
  add_pause_routes(server.server(), d);
  ASSERT_TRUE(server.start());
  http::testing::Client client(server.port());
  const std::vector<std::pair<std::string, std::string>> auth = {{"Authorization", "Bearer s3cret"}};
  auto paused_in_list = [&] {
    auto res = client.get("/system/functions", auth);
    EXPECT_EQ(res.result(), Status::ok) << res.body();
    auto j = http::testing::json_of(res);
    return j.is_array() && j.size() == 1 && j[0].value("paused", false);
  };

  EXPECT_EQ(client.post("/system/functions/f.v1/pause", "").result(), Status::unauthorized);
  EXPECT_FALSE(paused_in_list());
  for (int i = 0; i < 2; ++i) {  // the second pause answers the same
    auto res = client.post("/system/functions/f.v1/pause", "", "", auth);
    ASSERT_EQ(res.result(), Status::ok) << res.body();
    EXPECT_EQ(http::testing::json_of(res), (nlohmann::json{{"name", "f.v1"}, {"paused", true}}));
  }
  EXPECT_TRUE(paused_in_list());
  EXPECT_EQ(metrics.function_paused.Add({{"function", "f.v1"}}).Value(), 1);
  // The name is URL-decoded.
  auto res = client.post("/system/functions/f%2Ev1/resume", "", "", auth);
  ASSERT_EQ(res.result(), Status::ok) << res.body();
  EXPECT_EQ(http::testing::json_of(res), (nlohmann::json{{"name", "f.v1"}, {"paused", false}}));
  EXPECT_EQ(client.post("/system/functions/f.v1/resume", "", "", auth).result(), Status::ok);
  EXPECT_FALSE(paused_in_list());

  res = client.post("/system/functions/nope/pause", "", "", auth);
  EXPECT_EQ(res.result(), Status::not_found);
  EXPECT_NE(res.body().find("unknown function 'nope'"), std::string::npos) << res.body();
  for (const char* bad : {"/system/functions/f.v1", "/system/functions/f.v1/stop",
                          "/system/functions//pause", "/system/functions/"}) {
    res = client.post(bad, "", "", auth);
    EXPECT_EQ(res.result(), Status::not_found) << bad;
    EXPECT_NE(res.body().find("/pause"), std::string::npos) << bad << ": " << res.body();
  }
  EXPECT_EQ(client.get("/system/functions/f.v1/pause", auth).result(), Status::method_not_allowed);
  server.stop();
  d.stop();
}

}  // namespace
}  // namespace sluice::api::testing
