// A sink whose disk is full (the local queue's Errc::no_space): the publisher gets 503
// with Retry-After, never 500, whatever the error's own retriable flag says.
#include <gtest/gtest.h>

#include "api/http_api.h"
#include "broker-adapters/http/tests/test_support.h"

namespace sluice::api::testing {
namespace {

using namespace http;  // the transport the routes are served on

using api::HttpApi;

class FullSink final : public Sink {
 public:
  std::string_view broker() const override { return "mem"; }
  void publish(std::string_view, Event, PublishCallback done) override {
    done(Error{Errc::no_space, "local broker q.db: database or disk is full"});
  }
  Result<void> flush(std::chrono::milliseconds) override { return ok(); }
};

TEST(IngressFullDisk, NoSpaceIs503WithRetryAfter) {
  FullSink sink;
  HttpConfig cfg;
  cfg.listen = "127.0.0.1:0";
  HttpApi ingress(cfg, {{"mem", &sink}}, "mem", [] { return true; },
                      [] { return std::string(); });
  ASSERT_TRUE(ingress.start());
  http::testing::Client client(ingress.port());
  auto res = client.post("/topics/t", "x");
  EXPECT_EQ(res.result(), Status::service_unavailable);
  EXPECT_EQ(res[bhttp::field::retry_after], "1");
  EXPECT_NE(res.body().find("disk is full"), std::string::npos) << res.body();
  ingress.stop();
}

}  // namespace
}  // namespace sluice::api::testing
