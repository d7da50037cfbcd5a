// POST /function/{name} through a real dispatcher: the synchronous path answers from
// the dispatcher's budget (429 + Retry-After when over it) and its result.
#include "api/functions.h"

#include <gtest/gtest.h>

#include <thread>

#include "api/http_api.h"
#include "broker-adapters/http/tests/test_support.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::api::testing {
namespace {

using namespace http;  // the transport the routes are served on

using namespace dispatcher::testing;

TEST(FunctionRoutes, SyncCallOverTheDispatchersBudgetIs429AndTheCallInBudgetAnswers) {
  Config cfg;
  FunctionConfig fn;
  fn.name = "f";
  fn.concurrency = 1;
  fn.dead_letter = {"mem", "f.dlq"};
  cfg.functions.push_back(fn);
  metrics::Metrics metrics;
  FakeSink dlq;
  FakeRuntime rt;
  rt.hold = true;
  dispatcher::Dispatcher d(metrics);
  d.add_function({&cfg.functions[0], &rt, &dlq, nullptr});
  d.start();
  http::testing::RecordingSink sink;
  HttpConfig hc;
  hc.listen = "127.0.0.1:0";
  api::HttpApi server(hc, {{"mem", &sink}}, "mem", {}, {});
  server.set_functions(std::make_unique<api::FunctionRoutes>(cfg, d, std::map<std::string, Sink*>{{"mem", &sink}}, metrics));
  ASSERT_TRUE(server.start());

  Response first;
  std::thread caller([&] { first = http::testing::Client(server.port()).post("/function/f", "one"); });
  ASSERT_TRUE(wait_for(rt.mu, rt.cv, [&] { return rt.held.size() == 1; }));
  http::testing::Client client(server.port());
  auto busy = client.post("/function/f", "two");
  EXPECT_EQ(busy.result(), Status::too_many_requests) << busy.body();
  EXPECT_EQ(busy[bhttp::field::retry_after], "1");
  EXPECT_NE(busy.body().find("running 1 synchronous calls"), std::string::npos) << busy.body();
  EXPECT_EQ(rt.release_all_shuffled(1), 1u);
  caller.join();
  EXPECT_EQ(first.result(), Status::ok) << first.body();
  EXPECT_EQ(first["X-Function-Outcome"], "success");
  EXPECT_EQ(client.post("/function/nope", "x").result(), Status::not_found);
  server.stop();
  ASSERT_TRUE(d.drain(std::chrono::seconds(5)));
  d.stop();
}

}  // namespace
}  // namespace sluice::api::testing
