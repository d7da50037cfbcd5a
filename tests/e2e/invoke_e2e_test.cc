// End-to-end: function invocation over HTTP (PRODUCT.md §5) and `sluice invoke`.
#include <gtest/gtest.h>
#include <signal.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <atomic>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "harness.h"
#include "tests/support/http_receiver.h"

namespace sluice::e2e {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = asio::ip::tcp;

// `http_extra` goes into the http: map (by default it opens 127.0.0.1 for the test's
// callback receivers); `top_extra` is appended at the top level.
std::string config(uint16_t port, const std::string& extra_functions = "",
                   const std::string& http_extra = ", callback_allow: [127.0.0.1/32]",
                   const std::string& top_extra = "") {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db, partitions: 2 }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) + ", max_body: 1KiB" + http_extra + " }\n" +
         top_extra +
         "functions:\n"
         "  - name: upper\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'tr a-z A-Z']\n"
         "    concurrency: 4\n"
         "    subscribe: [{ broker: local, topic: upper-in }]\n"
         "  - name: slow\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'sleep 5']\n"
         "    timeout: 300ms\n"
         "    retry: { max_attempts: 1 }\n"
         "    subscribe: [{ broker: local, topic: slow-in }]\n"
         "  - name: picky\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'echo refusing >&2; exit 65']\n"
         "    subscribe: [{ broker: local, topic: picky-in }]\n" + extra_functions;
}

using Receiver = testsupport::HttpReceiver;

struct InvokeFixture : ::testing::Test {
  void SetUp() override {
    port = free_port();
    dir.write("sluice.yaml", config(port));
    engine = std::make_unique<Engine>(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine->wait_ready(port)) << dir.read("engine.log");
  }
  void TearDown() override {
    engine->signal(SIGTERM);
    EXPECT_EQ(engine->wait_exit(), 0) << dir.read("engine.log");
  }
  TempDir dir;
  uint16_t port = 0;
  std::unique_ptr<Engine> engine;
};

TEST_F(InvokeFixture, SynchronousInvokeReturnsTheFunctionsResult) {
  HttpClient c(port);
  auto r = c.post("/function/upper", "hello sync", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "HELLO SYNC");
  auto cli = run_cli({"invoke", "-c", dir.file("sluice.yaml"), "upper", "from the cli"});
  EXPECT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, "FROM THE CLI");
}

TEST_F(InvokeFixture, FailuresMapToStatusCodesAndTheCliExitsOne) {
  HttpClient c(port);
  auto slow = c.post("/function/slow", "x");
  EXPECT_EQ(slow.status, 504) << slow.body;
  EXPECT_EQ(nlohmann::json::parse(slow.body)["outcome"], "timeout");
  auto picky = c.post("/function/picky", "x");
  EXPECT_EQ(picky.status, 422) << picky.body;
  EXPECT_NE(picky.body.find("refusing"), std::string::npos) << picky.body;
  auto cli = run_cli({"invoke", "-c", dir.file("sluice.yaml"), "slow"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_NE(cli.err.find("function 'slow' failed (timeout): HTTP 504"), std::string::npos) << cli.err;
}

TEST_F(InvokeFixture, BadRequestsAreRefusedAndNothingIsQueued) {
  // A fresh connection per request: the server closes one after a 413.
  struct Fresh {
    uint16_t port;
    HttpClient::Reply post(const std::string& t, const std::string& b,
                           const std::map<std::string, std::string>& h = {}) {
      return HttpClient(port).post(t, b, h);
    }
    HttpClient::Reply get(const std::string& t) { return HttpClient(port).get(t); }
  } c{port};
  EXPECT_EQ(c.post("/function/nope", "x").status, 404);
  EXPECT_EQ(c.post("/async-function/nope", "x").status, 404);
  EXPECT_EQ(c.post("/function/upper", std::string(4096, 'a')).status, 413);
  EXPECT_EQ(c.post("/async-function/upper", "x", {{"X-Callback-Url", "ftp://example.com/x"}}).status, 400);
  EXPECT_EQ(c.post("/async-function/upper", "x", {{"X-Callback-Url", "http://"}}).status, 400);
  // Literal addresses outside what callback_allow (127.0.0.1/32 here) opens, in any spelling.
  for (const char* url : {"http://169.254.169.254/latest/meta-data/", "http://[::1]:8080/",
                          "http://0x7f000002/", "http://127.2/", "http://[::ffff:10.0.0.1]/",
                          "http://017700000002/", "https://192.168.1.1/"}) {
    auto r = c.post("/async-function/upper", "x", {{"X-Callback-Url", url}});
    EXPECT_EQ(r.status, 400) << url;
    EXPECT_NE(r.body.find("http.callback_allow"), std::string::npos) << r.body;
  }
  EXPECT_EQ(c.post("/function/upper", "{}", {{"Content-Type", "application/cloudevents-batch+json"}}).status,
            415);
  EXPECT_EQ(c.get("/function/upper").status, 405);
  auto cli = run_cli({"invoke", "-c", dir.file("sluice.yaml"), "nope"});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_NE(cli.err.find("no function 'nope'"), std::string::npos) << cli.err;
  // Nothing reached the queue: the lag of upper-in is zero.
  auto lag = run_cli({"lag", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(lag.out.find("upper-in"), std::string::npos) << lag.out;
}

TEST_F(InvokeFixture, AsyncInvokeCallsBackEvenWhenTheReceiverComesUpLate) {
  const uint16_t cb_port = free_port();
  HttpClient c(port);
  auto r = c.post("/async-function/upper", "call me back",
                  {{"Content-Type", "text/plain"},
                   {"X-Callback-Url", "http://127.0.0.1:" + std::to_string(cb_port) + "/done?x=1"}});
  ASSERT_EQ(r.status, 202) << r.body;
  const std::string id = nlohmann::json::parse(r.body)["id"];
  // The receiver is down: the first delivery fails and is retried.
  ASSERT_TRUE(eventually([&] {
    return dir.read("engine.log").find("callback http://127.0.0.1:" + std::to_string(cb_port)) !=
           std::string::npos;
  })) << dir.read("engine.log");
  Receiver rx(Receiver::Mode::answer, cb_port);
  ASSERT_TRUE(eventually([&] { return !rx.got().empty(); })) << dir.read("engine.log");
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target(), "/done?x=1");
  EXPECT_EQ(got[0].body(), "CALL ME BACK");
  EXPECT_EQ(got[0]["X-Call-Id"], id);
  EXPECT_EQ(got[0]["X-Function-Status"], "200");
  EXPECT_EQ(got[0]["X-Function-Name"], "upper");
  // The receiver records the request before it answers, and the engine counts the
  // callback delivered once it has read the answer: wait for the count.
  std::string metrics;
  EXPECT_TRUE(eventually([&] {
    metrics = c.get("/metrics").body;
    return metrics.find("sluice_callbacks_total{outcome=\"delivered\"} 1") != std::string::npos;
  })) << metrics;
  EXPECT_NE(metrics.find("sluice_callbacks_total{outcome=\"failed\"}"), std::string::npos);
  const auto& m = metrics;
  // The queued call counts as a publish, like POST /topics.
  EXPECT_NE(m.find("sluice_published_total{broker=\"local\",topic=\"upper-in\"} 1"),
            std::string::npos)
      << m;
}

TEST_F(InvokeFixture, AsyncInvokeOfAFailingFunctionCallsBackWithTheError) {
  const uint16_t cb_port = free_port();
  Receiver rx(Receiver::Mode::answer, cb_port);
  HttpClient c(port);
  auto r = c.post("/async-function/picky", "x",
                  {{"X-Callback-Url", "http://127.0.0.1:" + std::to_string(cb_port) + "/"}});
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(eventually([&] { return !rx.got().empty(); })) << dir.read("engine.log");
  auto got = rx.got();
  EXPECT_EQ(got[0]["X-Function-Status"], "500");
  EXPECT_EQ(got[0]["X-Function-Outcome"], "rejected");
  // The error as JSON, like a failed synchronous call's answer; Host names the port.
  EXPECT_EQ(got[0]["Content-Type"], "application/json");
  EXPECT_EQ(got[0]["Host"], "127.0.0.1:" + std::to_string(cb_port));
  const auto body = nlohmann::json::parse(got[0].body(), nullptr, false);
  ASSERT_TRUE(body.is_object()) << got[0].body();
  EXPECT_EQ(body.value("outcome", ""), "rejected");
  EXPECT_NE(body.value("error", "").find("refusing"), std::string::npos) << got[0].body();
  auto sync = c.post("/function/picky", "x");
  EXPECT_EQ(sync.status, 422);
  EXPECT_EQ(nlohmann::json::parse(sync.body, nullptr, false).value("error", "?"),
            body.value("error", "!"));
}

// ---------------------------------------------------------------- control headers
// Issue 21: headers that steer sluice were trusted from anyone who could write a record.

struct ControlHeaderFixture : ::testing::Test {
  void SetUp() override {
    port = free_port();
    dir.write("sluice.yaml", config(port,
                                    "  - name: flaky\n"
                                    "    runtime: exec\n"
                                    "    command: [sh, -c, 'exit 1']\n"
                                    "    retry: { max_attempts: 1, mode: topic }\n"
                                    "    subscribe: [{ broker: local, topic: flaky-in }]\n"));
    engine = std::make_unique<Engine>(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine->wait_ready(port)) << dir.read("engine.log");
  }
  void TearDown() override {
    engine->signal(SIGTERM);
    EXPECT_EQ(engine->wait_exit(), 0) << dir.read("engine.log");
  }
  bool metric_has(HttpClient& c, const std::string& line) {
    return c.get("/metrics").body.find(line) != std::string::npos;
  }
  std::vector<nlohmann::json> dead_letters() {
    auto r = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "--json"});
    std::vector<nlohmann::json> out;
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) out.push_back(nlohmann::json::parse(l));
    return out;
  }
  TempDir dir;
  uint16_t port = 0;
  std::unique_ptr<Engine> engine;
};

TEST_F(ControlHeaderFixture, ForgedCallbackHeadersOnAPlainPublishCallNobody) {
  const uint16_t cb_port = free_port();
  Receiver rx(Receiver::Mode::answer, cb_port);
  const std::string url = "http://127.0.0.1:" + std::to_string(cb_port);
  HttpClient c(port);
  auto forged = c.post("/topics/upper-in", "forged",
                       {{"sluice-callback-url", url + "/forged"},
                        {"sluice-callback-function", "upper"}});
  ASSERT_EQ(forged.status, 202) << forged.body;
  ASSERT_TRUE(eventually([&] {
    return metric_has(c, "sluice_control_headers_rejected_total{function=\"upper\",kind=\"callback\"} 1") &&
           metric_has(c, "sluice_invocations_total{function=\"upper\",outcome=\"success\"} 1");
  })) << c.get("/metrics").body;
  // A genuine asynchronous invocation after it still calls back, and is the only call.
  auto genuine = c.post("/async-function/upper", "genuine", {{"X-Callback-Url", url + "/genuine"}});
  ASSERT_EQ(genuine.status, 202) << genuine.body;
  const std::string id = nlohmann::json::parse(genuine.body)["id"];
  ASSERT_TRUE(eventually([&] { return !rx.got().empty(); })) << dir.read("engine.log");
  ASSERT_TRUE(eventually([&] {
    return metric_has(c, "sluice_invocations_total{function=\"upper\",outcome=\"success\"} 2");
  }));
  auto got = rx.got();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].target(), "/genuine");
  EXPECT_EQ(got[0]["X-Call-Id"], id);
}

TEST_F(ControlHeaderFixture, InternalTopicsAreRefusedOverHttpAndByTheCli) {
  HttpClient c(port);
  for (const char* t : {"/topics/flaky.retry", "/topics/flaky.dlq", "/topics/upper.dlq"}) {
    auto r = c.post(t, "x", {{"sluice-retry-due", "32503680000000"}});
    EXPECT_EQ(r.status, 403) << t << ": " << r.body;
    EXPECT_TRUE(nlohmann::json::parse(r.body)["error"].is_string()) << r.body;
  }
  auto cli = run_cli({"publish", "-c", dir.file("sluice.yaml"), "flaky.retry", "x"});
  EXPECT_EQ(cli.exit_code, 2);
  EXPECT_NE(cli.err.find("--internal"), std::string::npos) << cli.err;
  // Nothing reached those topics.
  auto lag = run_cli({"lag", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(lag.out.find("flaky.retry"), std::string::npos) << lag.out;
  EXPECT_TRUE(dead_letters().empty());
}

TEST_F(ControlHeaderFixture, ForgedDeadLetterIsUnverifiedAndNotReplayedWithoutForce) {
  HttpClient c(port);
  // A genuine dead letter: flaky fails its only attempt.
  ASSERT_EQ(c.post("/topics/flaky-in", "genuine").status, 202);
  // A forged one, written straight into the local queue's dead-letter topic.
  auto forged = run_cli({"publish", "-c", dir.file("sluice.yaml"), "--internal", "flaky.dlq",
                         "forged", "--header", "sluice-dlq-function=flaky", "--header",
                         "sluice-dlq-error-class=error", "--header",
                         "sluice-dlq-original-topic=payments"});
  ASSERT_EQ(forged.exit_code, 0) << forged.err;
  std::vector<nlohmann::json> recs;
  ASSERT_TRUE(eventually([&] { return (recs = dead_letters()).size() == 2; }))
      << dir.read("engine.log");
  std::string forged_id;
  for (const auto& r : recs) {
    if (r["original"]["topic"] == "payments") {
      EXPECT_EQ(r["verified"], false) << r.dump();
      forged_id = r["id"];
    } else {
      EXPECT_EQ(r["verified"], true) << r.dump();
    }
  }
  ASSERT_FALSE(forged_id.empty());
  auto table = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml")});
  EXPECT_NE(table.out.find("VERIFIED"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("1 unverified"), std::string::npos) << table.out;
  auto show = run_cli({"dlq", "show", "-c", dir.file("sluice.yaml"), forged_id});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(nlohmann::json::parse(show.out)["verified"], false);
  EXPECT_NE(show.err.find("unverified"), std::string::npos) << show.err;

  auto replay = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--to", "replayed"});
  EXPECT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_NE(replay.out.find("replayed 1 of 1 dead letter(s); skipped 1 unverified"),
            std::string::npos)
      << replay.out;
  recs = dead_letters();
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["id"], forged_id);  // still there, not replayed
  auto forced = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--to", "replayed",
                         "--force", "--dry-run"});
  EXPECT_NE(forced.out.find("1 dead letter(s) would be replayed"), std::string::npos)
      << forced.out;
}

// Without callback_allow nothing on this machine can be called back: a literal
// loopback URL (any spelling) is 400 at once; a name that resolves there is refused at
// connect time (counted); the receiver never sees a connection.
TEST(InvokeCallbacks, LoopbackIsRefusedByDefault) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml", config(port, "", ""));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  Receiver rx;
  const std::string p = std::to_string(rx.port());
  HttpClient c(port);
  for (const std::string& url : {"http://127.0.0.1:" + p + "/", "http://[::ffff:127.0.0.1]:" + p + "/",
                                 "http://0x7f000001:" + p + "/", "http://127.1:" + p + "/",
                                 "http://2130706433:" + p + "/"}) {
    auto r = c.post("/async-function/upper", "x", {{"X-Callback-Url", url}});
    EXPECT_EQ(r.status, 400) << url;
    EXPECT_NE(r.body.find("is loopback (127.0.0.0/8)"), std::string::npos) << r.body;
    EXPECT_NE(r.body.find("http.callback_allow"), std::string::npos) << r.body;
  }
  auto r = c.post("/async-function/upper", "x", {{"X-Callback-Url", "http://localhost:" + p + "/"}});
  ASSERT_EQ(r.status, 202) << r.body;
  ASSERT_TRUE(eventually([&] {
    return c.get("/metrics").body.find("sluice_callbacks_total{outcome=\"refused\"} 6") !=
           std::string::npos;
  })) << c.get("/metrics").body;
  EXPECT_EQ(rx.connections(), 0u);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

// Two receivers that accept and never answer: SIGTERM with drain_timeout 1s still
// exits within 2 s, and the two events stay uncommitted, so after a restart they run
// again and their callbacks are delivered.
TEST(InvokeCallbacks, HungReceiversDoNotHoldShutdownAndTheCallbackComesAfterRestart) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml",
            config(port, "", ", callback_allow: [127.0.0.1/32], callback_timeout: 60s",
                   "engine: { drain_timeout: 1s }\n"));
  auto engine = std::make_unique<Engine>(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine->wait_ready(port)) << dir.read("engine.log");
  auto hung1 = std::make_unique<Receiver>(Receiver::Mode::hang);
  auto hung2 = std::make_unique<Receiver>(Receiver::Mode::hang);
  const uint16_t p1 = hung1->port(), p2 = hung2->port();
  std::vector<std::string> ids;
  {
    HttpClient c(port);
    for (const auto& url : {hung1->url("/one"), hung2->url("/two")}) {
      auto r = c.post("/async-function/upper", "late", {{"X-Callback-Url", url}});
      ASSERT_EQ(r.status, 202) << r.body;
      ids.push_back(nlohmann::json::parse(r.body)["id"]);
    }
  }
  ASSERT_TRUE(eventually([&] { return hung1->connections() > 0 && hung2->connections() > 0; }))
      << dir.read("engine.log");
  const auto t0 = std::chrono::steady_clock::now();
  engine->signal(SIGTERM);
  // Exit 3: stopped, but the drain left the two callbacks undelivered.
  EXPECT_EQ(engine->wait_exit(10s), 3) << dir.read("engine.log");
  const auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 2s) << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms\n" << dir.read("engine.log");
  hung1.reset();
  hung2.reset();
  Receiver rx1(Receiver::Mode::answer, p1), rx2(Receiver::Mode::answer, p2);
  engine = std::make_unique<Engine>(dir.file("sluice.yaml"), dir.file("engine2.log"));
  ASSERT_TRUE(engine->wait_ready(port)) << dir.read("engine2.log");
  ASSERT_TRUE(eventually([&] { return !rx1.got().empty() && !rx2.got().empty(); }))
      << dir.read("engine2.log");
  EXPECT_EQ(rx1.got()[0]["X-Call-Id"], ids[0]);
  EXPECT_EQ(rx1.got()[0].target(), "/one");
  EXPECT_EQ(rx1.got()[0].body(), "LATE");
  EXPECT_EQ(rx2.got()[0]["X-Call-Id"], ids[1]);
  engine->signal(SIGTERM);
  EXPECT_EQ(engine->wait_exit(), 0) << dir.read("engine2.log");
}

}  // namespace
}  // namespace sluice::e2e
