// The callbacks of asynchronous invocations: the one callback event, the sealed
// request, and the dispatcher calling back only through api::Callbacks.
#include "api/callbacks.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "dispatcher/dispatcher.h"
#include "dispatcher/retry_topic.h"
#include "dispatcher/tests/fakes.h"

namespace sluice::api::testing {
namespace {

using namespace dispatcher::testing;
using api::kCallbackFunctionHeader;
using api::kCallbackUrlHeader;

// ---------------------------------------------------------------- the callback event

TEST(CallbackEvent, SuccessCarriesTheOutputAndItsContentType) {
  Event in;
  in.id = "call-1";
  in.data = "input";
  InvocationResult r;
  r.outcome = Outcome::success;
  r.output = "OUT";
  r.content_type = "text/plain";
  Event cb = api::callback_event("upper", in, r, 1);
  EXPECT_EQ(cb.id, "call-1");
  EXPECT_EQ(cb.data, "OUT");
  EXPECT_EQ(cb.datacontenttype, "text/plain");
  EXPECT_EQ(*cb.header("X-Call-Id"), "call-1");
  EXPECT_EQ(*cb.header("X-Function-Name"), "upper");
  EXPECT_EQ(*cb.header("X-Function-Status"), "200");
  EXPECT_EQ(*cb.header("X-Function-Outcome"), "success");
  EXPECT_EQ(*cb.header("X-Function-Attempts"), "1");
  r.content_type.clear();
  EXPECT_EQ(api::callback_event("upper", in, r, 1).datacontenttype, "application/octet-stream");
}

TEST(CallbackEvent, FailureCarriesTheErrorAsJsonLikeTheSynchronousCall) {
  Event in;
  in.id = "call-2";
  InvocationResult r;
  r.outcome = Outcome::timeout;
  r.output = "partial";
  r.message = "took too long";
  Event cb = api::callback_event("slow", in, r, 3);
  EXPECT_EQ(cb.datacontenttype, "application/json");
  const auto body = nlohmann::json::parse(cb.data);
  EXPECT_EQ(body, (nlohmann::json{{"error", "took too long"}, {"outcome", "timeout"}}));
  EXPECT_EQ(cb.data, api::error_body(r));  // the synchronous call's error body
  EXPECT_EQ(*cb.header("X-Function-Status"), "500");
  EXPECT_EQ(*cb.header("X-Function-Outcome"), "timeout");
  EXPECT_EQ(*cb.header("X-Function-Attempts"), "3");

  // No message: the outcome stands in; bytes that are not UTF-8 stay valid JSON.
  r.message.clear();
  EXPECT_EQ(nlohmann::json::parse(api::callback_event("slow", in, r, 3).data)["error"], "timeout");
  r.message = "bad \xff byte";
  EXPECT_TRUE(nlohmann::json::accept(api::callback_event("slow", in, r, 3).data));
}

// ---------------------------------------------------------------- request and screen

TEST(Callbacks, ARequestIsSealedForItsFunctionAndTheCallersOwnHeadersAreDropped) {
  const seal::Keyring keys = seal::Keyring::random();
  FakeSink sink;
  api::Callbacks hook(&sink, keys);
  Event e;
  e.id = "x";
  e.set_header("Sluice-Callback-Url", "http://169.254.169.254/forged");
  e.set_header("sluice-callback-seal", "junk");
  e.set_header("X-Callback-Url", "http://elsewhere.example/");
  e.set_header("user", "kept");
  api::request_callback(e, "http://receiver.example/cb", "f", &keys);
  EXPECT_EQ(*e.header(kCallbackUrlHeader), "http://receiver.example/cb");
  EXPECT_EQ(e.header("X-Callback-Url"), nullptr);
  EXPECT_EQ(*e.header("user"), "kept");

  auto s = hook.screen("f", e);
  EXPECT_TRUE(s.wanted);
  EXPECT_EQ(s.rejected, nullptr);
  // Another subscriber of the topic neither judges it nor calls back.
  auto other = hook.screen("g", e);
  EXPECT_FALSE(other.wanted);
  EXPECT_EQ(other.rejected, nullptr);
  EXPECT_FALSE(hook.result("g", e, InvocationResult{}, 1));

  auto out = hook.result("f", e, InvocationResult{}, 1);
  ASSERT_TRUE(out);
  EXPECT_EQ(out->sink, &sink);
  EXPECT_EQ(out->topic, "http://receiver.example/cb");
  EXPECT_EQ(*out->event.header("X-Function-Name"), "f");
  // Without a sink (HTTP off) a verified request is screened but never sent.
  EXPECT_FALSE(api::Callbacks(nullptr, keys).result("f", e, InvocationResult{}, 1));
}

TEST(Callbacks, ARequestSealedWithAnotherKeyIsRejectedAndStripped) {
  const seal::Keyring keys = seal::Keyring::random();
  FakeSink sink;
  api::Callbacks hook(&sink, keys);
  Event e;
  e.id = "x";
  const seal::Keyring other_key = seal::Keyring::random();
  api::request_callback(e, "http://receiver.example/cb", "f", &other_key);
  auto s = hook.screen("f", e);
  EXPECT_FALSE(s.wanted);
  ASSERT_NE(s.rejected, nullptr);
  EXPECT_EQ(e.header(kCallbackUrlHeader), nullptr);
  EXPECT_FALSE(seal::has_any(seal::Kind::callback, e));
  // No keys: nothing is requested, the caller's headers are still dropped.
  Event plain;
  plain.set_header(std::string(kCallbackUrlHeader), "http://x.example/");
  api::request_callback(plain, "http://receiver.example/cb", "f", nullptr);
  EXPECT_TRUE(plain.headers.empty());
}

// ---------------------------------------------------------------- through the dispatcher

// Issue 21: a plain record carrying sluice-callback-* headers made the dispatcher call
// back. Only headers sealed for the function (POST /async-function) count.
TEST(Dispatcher, ForgedCallbackHeadersNeverReachTheCallbackSink) {
  const seal::Keyring keys = seal::Keyring::random();
  metrics::Metrics metrics;
  FunctionConfig fn;
  fn.name = "f";
  fn.dead_letter = {"fake", "f.dlq"};
  FakeSource src;
  FakeSink dlq, callbacks;
  FakeRuntime rt;
  dispatcher::DispatcherOptions opts;
  opts.control_keys = &keys;
  dispatcher::Dispatcher d(metrics, opts);
  dispatcher::FunctionBinding b{&fn, &rt, &dlq, nullptr};
  api::Callbacks hook(&callbacks, keys);
  b.results = &hook;
  d.add_function(b);
  d.add_route(src, "f", Ordering::none);
  d.start();
  ASSERT_TRUE(src.start(d));
  auto event = [](std::string id, std::string url) {
    Event e;
    e.id = std::move(id);
    e.data = "payload";
    e.broker = "fake";
    e.topic = "in";
    e.partition = 0;
    e.set_header(std::string(kCallbackUrlHeader), std::move(url));
    e.set_header(std::string(kCallbackFunctionHeader), "f");
    return e;
  };
  Event forged = event("forged", "http://169.254.169.254/forged");
  forged.offset = 0;
  Event genuine = event("genuine", "http://receiver.example/genuine");
  keys.apply(seal::Kind::callback, genuine, "f");
  genuine.offset = 1;
  Event copied = event("copied", "http://receiver.example/genuine");
  copied.set_header(std::string(seal::seal_header(seal::Kind::callback)),
                    *genuine.header(seal::seal_header(seal::Kind::callback)));
  copied.offset = 2;
  Event other_key = event("other-key", "http://receiver.example/other");
  seal::Keyring::random().apply(seal::Kind::callback, other_key, "f");
  other_key.offset = 3;
  for (Event* e : {&forged, &genuine, &copied, &other_key}) src.send_event(std::move(*e));
  ASSERT_TRUE(d.drain(10s));
  EXPECT_EQ(rt.calls.size(), 4u);  // every event still runs
  ASSERT_EQ(callbacks.count(), 1u);
  EXPECT_EQ(callbacks.published[0].first, "http://receiver.example/genuine");
  EXPECT_EQ(*callbacks.published[0].second.header("X-Call-Id"), "genuine");
  EXPECT_EQ(src.committed_at(0), 4);
  EXPECT_NE(metrics.text().find(
                "sluice_control_headers_rejected_total{function=\"f\",kind=\"callback\"} 3"),
            std::string::npos)
      << metrics.text();
  d.stop();
}

TEST(RetryRecord, SealCoversExactlyTheRetryAndCallbackHeaders) {
  const auto retry_h = seal::covered_headers(seal::Kind::retry);
  EXPECT_EQ(std::vector<std::string_view>(retry_h.begin(), retry_h.end()),
            (std::vector<std::string_view>{dispatcher::retry::kAttempt, dispatcher::retry::kDue, dispatcher::retry::kFirstFailure,
                                           dispatcher::retry::kOrigin}));
  const auto cb = seal::covered_headers(seal::Kind::callback);
  EXPECT_EQ(std::vector<std::string_view>(cb.begin(), cb.end()),
            (std::vector<std::string_view>{kCallbackUrlHeader, kCallbackFunctionHeader}));
}

}  // namespace
}  // namespace sluice::api::testing
