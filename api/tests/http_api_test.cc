#include "api/http_api.h"

#include <gtest/gtest.h>

#include <atomic>

#include "api/request_event.h"
#include "broker-adapters/http/tests/test_support.h"
#include "core/cloudevents.h"

namespace sluice::api::testing {
namespace {

using namespace http;  // the transport the routes are served on

using api::HttpApi;
using api::is_valid_topic_name;

using http::testing::Client;
using http::testing::json_of;
using http::testing::RecordingSink;
using http::testing::TempFile;
using Mode = RecordingSink::Mode;

class Ingress : public ::testing::Test {
 protected:
  void start(HttpConfig cfg = {}, RecordingSink* sink = nullptr,
             std::set<std::string> reserved = {}) {
    cfg.listen = "127.0.0.1:0";
    ingress_ = std::make_unique<HttpApi>(
        cfg, std::map<std::string, Sink*>{{"mem", sink ? sink : &sink_}, {"other", &other_}},
        "mem", [this] { return ready_.load(); }, [] { return std::string("sluice_up 1\n"); });
    ingress_->reserve_topics(std::move(reserved));
    auto r = ingress_->start();
    ASSERT_TRUE(r) << r.error().message;
    client_ = std::make_unique<Client>(ingress_->port());
  }
  // Asserts a JSON error body and returns its message.
  static std::string error_of(const Response& res) {
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    auto j = json_of(res);
    EXPECT_TRUE(j.is_object() && j["error"].is_string()) << res.body();
    return j.is_object() && j["error"].is_string() ? j["error"].get<std::string>() : "";
  }

  RecordingSink sink_;
  RecordingSink other_;
  RecordingSink async_sink_{/*async=*/true};  // completes on its own thread
  std::atomic<bool> ready_{true};
  std::unique_ptr<HttpApi> ingress_;
  std::unique_ptr<Client> client_;
};

TEST_F(Ingress, PlainPublishIsAcceptedOnceStoredAndCarriesTheBody) {
  start();
  auto res = client_->post("/topics/orders.v1", "hello", "text/plain",
                           {{"X-Sluice-Key", "k1"}, {"X-Trace", "t1"}, {"Authorization", "x"}});
  ASSERT_EQ(res.result(), Status::accepted) << res.body();
  auto j = json_of(res);
  ASSERT_EQ(sink_.count(), 1u);
  Event e = sink_.events()[0];
  EXPECT_EQ(j["id"], e.id);
  EXPECT_EQ(j["topic"], "orders.v1");
  EXPECT_EQ(j["partition"], 2);
  EXPECT_EQ(j["offset"], 0);
  EXPECT_FALSE(e.id.empty());
  EXPECT_EQ(e.source, "/sluice/http");
  EXPECT_EQ(e.type, "io.sluice.publish");
  EXPECT_TRUE(parse_rfc3339(e.time));
  EXPECT_EQ(e.datacontenttype, "text/plain");
  EXPECT_EQ(e.data, "hello");
  EXPECT_EQ(e.topic, "orders.v1");
  EXPECT_EQ(e.key, "k1");
  ASSERT_NE(e.header("x-trace"), nullptr);
  EXPECT_EQ(e.header("authorization"), nullptr);
  EXPECT_EQ(e.header("host"), nullptr);
}

TEST_F(Ingress, BinaryModeAttributesLandInTheEvent) {
  start();
  auto res = client_->post("/topics/t", R"({"a":1})", "application/json",
                           {{"ce-specversion", "1.0"},
                            {"ce-id", "id-1"},
                            {"ce-source", "/my%20app"},
                            {"ce-type", "com.example.x"},
                            {"ce-subject", "sub"},
                            {"ce-time", "2026-01-02T03:04:05Z"},
                            {"ce-partitionkey", "pk"},
                            {"ce-traceparent", "00-1"},
                            {"X-Extra", "e"}});
  ASSERT_EQ(res.result(), Status::accepted) << res.body();
  EXPECT_EQ(json_of(res)["id"], "id-1");
  ASSERT_EQ(sink_.count(), 1u);
  Event e = sink_.events()[0];
  EXPECT_EQ(e.id, "id-1");
  EXPECT_EQ(e.source, "/my app");
  EXPECT_EQ(e.type, "com.example.x");
  EXPECT_EQ(e.subject, "sub");
  EXPECT_EQ(e.time, "2026-01-02T03:04:05Z");
  EXPECT_EQ(e.datacontenttype, "application/json");
  EXPECT_EQ(e.data, R"({"a":1})");
  EXPECT_EQ(e.key, "pk");
  EXPECT_EQ(*e.extension("traceparent"), "00-1");
  ASSERT_NE(e.header("x-extra"), nullptr);
  EXPECT_EQ(e.header("ce-id"), nullptr);
}

TEST_F(Ingress, StructuredMode) {
  start();
  Event in;
  in.id = "s-1";
  in.source = "/s";
  in.type = "t";
  in.datacontenttype = "application/json";
  in.data = R"({"n":1})";
  in.extensions = {{"partitionkey", "pk"}};
  auto res = client_->post("/topics/t?broker=other", cloudevents::to_structured(in),
                           "application/cloudevents+json; charset=utf-8");
  ASSERT_EQ(res.result(), Status::accepted) << res.body();
  ASSERT_EQ(other_.count(), 1u);
  EXPECT_EQ(sink_.count(), 0u);
  Event e = other_.events()[0];
  EXPECT_EQ(e.id, "s-1");
  EXPECT_EQ(e.data, R"({"n":1})");
  EXPECT_EQ(e.key, "pk");
  EXPECT_EQ(e.topic, "t");
}

TEST_F(Ingress, BadRequestsGet4xxJsonAndPublishNothing) {
  start();
  auto binary_without_id = client_->post(
      "/topics/t", "x", "text/plain",
      {{"ce-specversion", "1.0"}, {"ce-source", "/s"}, {"ce-type", "t"}});
  EXPECT_EQ(binary_without_id.result(), Status::bad_request);
  EXPECT_NE(error_of(binary_without_id).find("'id'"), std::string::npos);

  auto bad_json = client_->post("/topics/t", "{not json", "application/cloudevents+json");
  EXPECT_EQ(bad_json.result(), Status::bad_request);
  EXPECT_NE(error_of(bad_json).find("invalid JSON"), std::string::npos);

  for (std::string topic : std::vector<std::string>{"bad%20name", "a%2Fb", "", std::string(250, 'a'), "caf%C3%A9", "%zz"}) {
    auto res = client_->post("/topics/" + topic, "x");
    EXPECT_EQ(res.result(), Status::bad_request) << topic;
    EXPECT_NE(error_of(res).find("topic"), std::string::npos);
  }
  auto nested = client_->post("/topics/a/b", "x");
  EXPECT_EQ(nested.result(), Status::bad_request);

  auto batch = client_->post("/topics/t", "[]", "application/cloudevents-batch+json");
  EXPECT_EQ(batch.result(), Status::unsupported_media_type);
  EXPECT_NE(error_of(batch).find("batch"), std::string::npos);
  auto avro = client_->post("/topics/t", "x", "application/cloudevents+avro");
  EXPECT_EQ(avro.result(), Status::unsupported_media_type);

  auto broker = client_->post("/topics/t?broker=nope", "x");
  EXPECT_EQ(broker.result(), Status::bad_request);
  EXPECT_NE(error_of(broker).find("nope"), std::string::npos);

  auto half_binary = client_->post("/topics/t", "x", "text/plain", {{"ce-type", "t"}});
  EXPECT_EQ(half_binary.result(), Status::bad_request);
  EXPECT_NE(error_of(half_binary).find("ce-specversion"), std::string::npos);

  EXPECT_EQ(sink_.count() + other_.count(), 0u);
  EXPECT_EQ(client_->post("/topics/t", "still alive").result(), Status::accepted);
}

// Issue 21: anyone could write a function's retry or dead-letter records over HTTP.
TEST_F(Ingress, ReservedTopicsAre403OnEveryBroker) {
  start({}, nullptr, {"f.retry", "f.dlq"});
  for (const char* path : {"/topics/f.retry", "/topics/f.dlq", "/topics/f.dlq?broker=other",
                           "/topics/f%2Eretry"}) {
    auto res = client_->post(path, "x", "text/plain", {{"sluice-retry-due", "32503680000000"}});
    EXPECT_EQ(res.result(), Status::forbidden) << path;
    EXPECT_NE(error_of(res).find("internal to sluice"), std::string::npos);
  }
  EXPECT_EQ(sink_.count(), 0u);
  EXPECT_EQ(other_.count(), 0u);
  EXPECT_EQ(client_->post("/topics/f.retry.not", "x", "text/plain").result(), Status::accepted);
}

TEST_F(Ingress, BodyOverTheLimitIs413AndClosesTheConnection) {
  HttpConfig cfg;
  cfg.max_body = 1024;
  start(cfg);
  EXPECT_EQ(client_->post("/topics/t", std::string(1024, 'x')).result(), Status::accepted);
  auto res = client_->post("/topics/t", std::string(1025, 'x'));
  EXPECT_EQ(res.result(), Status::payload_too_large);
  EXPECT_NE(error_of(res).find("1024"), std::string::npos);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_TRUE(client_->server_closed());
  EXPECT_EQ(sink_.count(), 1u);
  Client again(ingress_->port());  // the server itself is fine
  EXPECT_EQ(again.post("/topics/t", "x").result(), Status::accepted);
}

TEST_F(Ingress, UnknownPathAndWrongMethod) {
  start();
  auto missing = client_->get("/nope");
  EXPECT_EQ(missing.result(), Status::not_found);
  error_of(missing);
  auto wrong = client_->get("/topics/t");
  EXPECT_EQ(wrong.result(), Status::method_not_allowed);
  EXPECT_EQ(wrong[bhttp::field::allow], "POST");
  error_of(wrong);
  auto wrong2 = client_->post("/healthz", "");
  EXPECT_EQ(wrong2.result(), Status::method_not_allowed);
}

TEST_F(Ingress, BearerTokens) {
  TempFile tokens("# ops tokens\n\n  secret-one  \nsecret-two\r\n");
  HttpConfig cfg;
  cfg.bearer_tokens_file = tokens.path();
  start(cfg);
  auto none = client_->post("/topics/t", "x");
  EXPECT_EQ(none.result(), Status::unauthorized);
  EXPECT_EQ(none[bhttp::field::www_authenticate], "Bearer realm=\"sluice\"");
  error_of(none);
  EXPECT_EQ(client_->post("/topics/t", "x", "", {{"Authorization", "Bearer secret-on"}}).result(),
            Status::unauthorized);
  EXPECT_EQ(client_->post("/topics/t", "x", "", {{"Authorization", "Basic secret-one"}}).result(),
            Status::unauthorized);
  EXPECT_EQ(client_->get("/metrics").result(), Status::unauthorized);
  EXPECT_EQ(client_->get("/nope").result(), Status::unauthorized);
  EXPECT_EQ(sink_.count(), 0u);
  EXPECT_EQ(client_->post("/topics/t", "x", "", {{"Authorization", "Bearer secret-one"}}).result(),
            Status::accepted);
  EXPECT_EQ(client_->post("/topics/t", "x", "", {{"Authorization", "bearer  secret-two"}}).result(),
            Status::accepted);
  EXPECT_EQ(client_->get("/healthz").result(), Status::ok);
  EXPECT_EQ(client_->get("/readyz").result(), Status::ok);
  EXPECT_EQ(client_->get("/metrics", {{"Authorization", "Bearer secret-two"}}).result(),
            Status::ok);
  EXPECT_EQ(sink_.count(), 2u);
}

TEST_F(Ingress, TokensFileMissingOrEmptyIsAStartError) {
  for (bool exists : {false, true}) {
    TempFile empty("# nothing here\n\n");
    HttpConfig cfg;
    cfg.listen = "127.0.0.1:0";
    cfg.bearer_tokens_file = exists ? empty.path() : empty.path() + ".missing";
    HttpApi ingress(cfg, {{"mem", &sink_}}, "mem", {}, {});
    auto r = ingress.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().message.find("bearer_tokens_file"), std::string::npos);
  }
}

TEST_F(Ingress, DefaultBrokerWithoutSinkIsAStartError) {
  HttpConfig cfg;
  cfg.listen = "127.0.0.1:0";
  HttpApi ingress(cfg, {{"mem", &sink_}}, "kafka", {}, {});
  EXPECT_FALSE(ingress.start());
}

TEST_F(Ingress, SinkFailures) {
  RecordingSink& async_sink = async_sink_;
  start({}, &async_sink);
  async_sink.set_mode(Mode::fail_retriable);
  auto retriable = client_->post("/topics/t", "x");
  EXPECT_EQ(retriable.result(), Status::service_unavailable);
  EXPECT_NE(error_of(retriable).find("broker down"), std::string::npos);
  async_sink.set_mode(Mode::fail_fatal);
  auto fatal = client_->post("/topics/t", "x");
  EXPECT_EQ(fatal.result(), Status::internal_server_error);
  EXPECT_NE(error_of(fatal).find("disk on fire"), std::string::npos);
  async_sink.set_mode(Mode::drop);
  auto dropped = client_->post("/topics/t", "x");
  EXPECT_EQ(dropped.result(), Status::internal_server_error);
  error_of(dropped);
  async_sink.set_mode(Mode::ack);
  EXPECT_EQ(client_->post("/topics/t", "x").result(), Status::accepted);
}

TEST_F(Ingress, KeepAliveThousandRequestsOnOneConnection) {
  RecordingSink& async_sink = async_sink_;
  start({}, &async_sink);
  for (int i = 0; i < 1000; ++i) {
    auto res = client_->post("/topics/t", std::to_string(i), "text/plain");
    ASSERT_EQ(res.result(), Status::accepted) << i << ": " << res.body();
    ASSERT_TRUE(res.keep_alive());
    ASSERT_EQ(json_of(res)["offset"], i);
  }
  auto events = async_sink.events();
  ASSERT_EQ(events.size(), 1000u);
  EXPECT_EQ(events[999].data, "999");
}

TEST_F(Ingress, HealthReadinessAndMetrics) {
  start();
  auto health = client_->get("/healthz");
  EXPECT_EQ(health.result(), Status::ok);
  EXPECT_EQ(json_of(health)["status"], "ok");
  EXPECT_EQ(client_->get("/readyz").result(), Status::ok);
  ready_ = false;
  auto not_ready = client_->get("/readyz");
  EXPECT_EQ(not_ready.result(), Status::service_unavailable);
  error_of(not_ready);
  auto metrics = client_->get("/metrics");
  EXPECT_EQ(metrics.result(), Status::ok);
  EXPECT_EQ(metrics.body(), "sluice_up 1\n");
  EXPECT_EQ(metrics[bhttp::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(Ingress, DotAndDotDotAreNotTopicNames) {
  start();
  for (std::string target : {"/topics/.", "/topics/..", "/topics/%2E", "/topics/%2e%2E",
                             "/topics/"}) {
    auto res = client_->post(target, "x");
    EXPECT_EQ(res.result(), Status::bad_request) << target;
    EXPECT_NE(error_of(res).find("invalid topic name"), std::string::npos) << target;
  }
  EXPECT_EQ(sink_.count(), 0u);
  EXPECT_EQ(client_->post("/topics/...", "x").result(), Status::accepted);
}

TEST(TopicNames, Rule) {
  EXPECT_TRUE(is_valid_topic_name("a"));
  EXPECT_TRUE(is_valid_topic_name("Orders_v1.dlq-2"));
  EXPECT_TRUE(is_valid_topic_name(std::string(249, 'x')));
  EXPECT_FALSE(is_valid_topic_name(""));
  EXPECT_FALSE(is_valid_topic_name(std::string(250, 'x')));
  EXPECT_FALSE(is_valid_topic_name("a b"));
  EXPECT_FALSE(is_valid_topic_name("a/b"));
  EXPECT_FALSE(is_valid_topic_name("."));
  EXPECT_FALSE(is_valid_topic_name(".."));
}

}  // namespace
}  // namespace sluice::api::testing
