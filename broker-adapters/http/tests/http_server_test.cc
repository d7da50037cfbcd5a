#include "broker-adapters/http/http_server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <mutex>
#include <thread>
#include <nlohmann/json.hpp>

#include "broker-adapters/http/tests/test_support.h"
#include "core/fd_limit.h"
#include "metrics/metrics.h"
#include "tests/support/support.h"

namespace sluice::http::testing {
namespace {


HttpConfig local_config() {
  HttpConfig cfg;
  cfg.listen = "127.0.0.1:0";
  return cfg;
}

Response text(std::string body) {
  Response res{Status::ok, 11};
  res.body() = std::move(body);
  return res;
}

TEST(HttpServer, ResponderAnswersLaterFromAnotherThread) {
  std::vector<std::thread> threads;
  HttpServer server(local_config());
  server.route(Verb::get, "/later", [&](Request&& req, Responder res) {
    threads.emplace_back([res = std::move(res)]() mutable { res(text("from a thread")); });
  });
  ASSERT_TRUE(server.start());
  Client client(server.port());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(client.get("/later").body(), "from a thread");
  server.stop();
  for (auto& t : threads) t.join();
}

TEST(HttpServer, UnansweredOrThrowingHandlerGets500) {
  HttpServer server(local_config());
  server.route(Verb::get, "/drop", [](Request&&, Responder) {});
  server.route(Verb::get, "/throw", [](Request&&, Responder) { throw std::runtime_error("boom"); });
  ASSERT_TRUE(server.start());
  Client client(server.port());
  for (auto path : {"/drop", "/throw", "/drop"}) {
    auto res = client.get(path);
    EXPECT_EQ(res.result(), Status::internal_server_error) << path;
    EXPECT_EQ(res[bhttp::field::content_type], "application/json");
    EXPECT_TRUE(json_of(res)["error"].is_string());
  }
}

TEST(HttpServer, LongestPatternWinsAndQueryIsNotPartOfThePath) {
  HttpServer server(local_config());
  server.route(Verb::get, "/a/", [](Request&&, Responder res) { res(text("prefix")); });
  server.route(Verb::get, "/a/b/", [](Request&&, Responder res) { res(text("longer")); });
  server.route(Verb::get, "/a/exact", [](Request&&, Responder res) { res(text("exact")); });
  ASSERT_TRUE(server.start());
  Client client(server.port());
  EXPECT_EQ(client.get("/a/x").body(), "prefix");
  EXPECT_EQ(client.get("/a/b/c?x=1").body(), "longer");
  EXPECT_EQ(client.get("/a/exact?q").body(), "exact");
  EXPECT_EQ(client.get("/a").result(), Status::not_found);
}

TEST(HttpServer, MalformedRequestGets400AndClose) {
  HttpServer server(local_config());
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.write_raw("NOT HTTP AT ALL\r\n\r\n");
  auto res = client.read();
  EXPECT_EQ(res.result(), Status::bad_request);
  EXPECT_TRUE(json_of(res)["error"].is_string());
  EXPECT_TRUE(client.server_closed());
}

TEST(HttpServer, HeadersOverTheLimitGet431) {
  HttpServer::Options opts;
  opts.header_limit = 1024;
  HttpServer server(local_config(), opts);
  server.route(Verb::get, "/", [](Request&&, Responder res) { res(text("ok")); });
  ASSERT_TRUE(server.start());
  Client client(server.port());
  auto res = client.get("/", {{"X-Big", std::string(2000, 'b')}});
  EXPECT_EQ(res.result(), Status::request_header_fields_too_large);
  EXPECT_TRUE(client.server_closed());
}

TEST(HttpServer, ExpectContinueIsAnswered) {
  HttpServer server(local_config());
  server.route(Verb::post, "/echo", [](Request&& req, Responder res) { res(text(req.body())); });
  ASSERT_TRUE(server.start());
  Client client(server.port());
  client.write_raw(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(client.read_until("\r\n\r\n").rfind("HTTP/1.1 100 Continue\r\n", 0), 0u);
  client.write_raw("hello");
  EXPECT_EQ(client.read().body(), "hello");
}

size_t count_of(std::string_view haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string_view::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// A body Beast would not frame as one (Transfer-Encoding: gzip means "no body" to
// it) must not be read as a second request: 400, closed, nothing handled.
TEST(HttpServer, TransferEncodingOtherThanChunkedGets400AndClose) {
  std::atomic<int> handled{0};
  HttpConfig cfg = local_config();
  cfg.idle_timeout = std::chrono::seconds(2);  // a server that keeps the connection: read_all ends
  HttpServer server(cfg);
  server.route(Verb::post, "/p", [&](Request&&, Responder res) {
    ++handled;
    res(text("handled"));
  });
  ASSERT_TRUE(server.start());
  const std::string smuggled = "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
  const std::vector<std::string> framings = {
      "Transfer-Encoding: gzip\r\n",
      "Transfer-Encoding: chunked, gzip\r\n",
      "Transfer-Encoding: gzip, chunked\r\n",
      "Transfer-Encoding: identity\r\n",
      "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
      "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
      "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
  };
  for (const auto& framing : framings) {
    Client client(server.port());
    client.write_raw("POST /p HTTP/1.1\r\nHost: x\r\n" + framing + "\r\n" + smuggled);
    std::string all = client.read_all();
    EXPECT_EQ(all.rfind("HTTP/1.1 400 ", 0), 0u) << framing << all;
    EXPECT_EQ(count_of(all, "HTTP/1.1 "), 1u) << framing << all;
    EXPECT_NE(all.find("{\"error\":"), std::string::npos) << framing << all;
  }
  EXPECT_EQ(handled.load(), 0);
  // Exactly "chunked" (any case) still works, and the connection stays open.
  Client client(server.port());
  client.write_raw(
      "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n");
  EXPECT_EQ(client.read().body(), "handled");
  EXPECT_EQ(client.post("/p", "again").body(), "handled");
  EXPECT_EQ(handled.load(), 2);
}

double value_of(prometheus::Family<prometheus::Counter>& f, const std::string& listener) {
  return f.Add({{"listener", listener}}).Value();
}
double value_of(prometheus::Family<prometheus::Gauge>& f, const std::string& listener) {
  return f.Add({{"listener", listener}}).Value();
}

// Over max_connections a new connection gets a canned 503 and is closed, counted;
// once one closes, a new one is served again.
TEST(HttpServer, ConnectionsOverTheCapAreRefusedCheaplyAndCounted) {
  metrics::Metrics metrics;
  HttpConfig cfg = local_config();
  cfg.max_connections = 2;
  HttpServer::Options opts;
  opts.metrics = &metrics;
  HttpServer server(cfg, opts);
  server.route(Verb::get, "/", [](Request&&, Responder res) { res(text("ok")); });
  ASSERT_TRUE(server.start());
  EXPECT_EQ(server.max_connections(), 2u);
  auto a = std::make_unique<Client>(server.port());
  Client b(server.port());
  EXPECT_EQ(a->get("/").body(), "ok");  // both accepted and held (keep-alive)
  EXPECT_EQ(b.get("/").body(), "ok");
  EXPECT_EQ(value_of(metrics.http_connections, "http"), 2);

  for (int i = 1; i <= 3; ++i) {
    Client over(server.port());
    std::string all = over.read_all();  // without sending a byte
    EXPECT_EQ(all.rfind("HTTP/1.1 503 ", 0), 0u) << all;
    EXPECT_NE(all.find("Retry-After: 1"), std::string::npos) << all;
    EXPECT_EQ(value_of(metrics.http_connections_refused, "http"), i);
  }
  EXPECT_EQ(b.get("/").body(), "ok");  // the held ones are unaffected

  a.reset();  // one leaves: room for one more
  ASSERT_TRUE(testsupport::eventually(
      [&] { return value_of(metrics.http_connections, "http") == 1; }));
  Client c(server.port());
  EXPECT_EQ(c.get("/").body(), "ok");
  EXPECT_EQ(value_of(metrics.http_connections_refused, "http"), 3);
}

TEST(HttpServer, DefaultCapIsDerivedFromTheFdLimit) {
  HttpServer server(local_config());
  ASSERT_TRUE(server.start());
  EXPECT_EQ(server.max_connections(), default_max_connections(fd_soft_limit()));
  EXPECT_EQ(default_max_connections(1024), 768u);  // 256 kept back
  EXPECT_EQ(default_max_connections(65536), 49152u);
  EXPECT_EQ(default_max_connections(1 << 20), 65536u);  // capped
  EXPECT_EQ(default_max_connections(256), 128u);  // at most half kept back
  EXPECT_EQ(default_max_connections(20), 16u);
}

// http.idle_timeout closes a keep-alive connection that went quiet, and one that
// never sent a request.
TEST(HttpServer, IdleConnectionsAreClosedAfterIdleTimeout) {
  metrics::Metrics metrics;
  HttpConfig cfg = local_config();
  cfg.idle_timeout = std::chrono::milliseconds(200);
  HttpServer::Options opts;
  opts.metrics = &metrics;
  HttpServer server(cfg, opts);
  server.route(Verb::get, "/", [](Request&&, Responder res) { res(text("ok")); });
  ASSERT_TRUE(server.start());
  Client used(server.port());
  EXPECT_EQ(used.get("/").body(), "ok");
  Client silent(server.port());
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(used.server_closed());
  EXPECT_TRUE(silent.server_closed());
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(150));
  ASSERT_TRUE(testsupport::eventually(
      [&] { return value_of(metrics.http_connections, "http") == 0; }));
}

// The deadline runs from the start of the request, not from the last byte: a client
// trickling header lines is cut off although it never falls silent.
TEST(HttpServer, SlowHeaderIsCutOffAtTheDeadline) {
  HttpConfig cfg = local_config();
  cfg.idle_timeout = std::chrono::milliseconds(200);
  HttpServer server(cfg);
  server.route(Verb::get, "/", [](Request&&, Responder res) { res(text("ok")); });
  ASSERT_TRUE(server.start());
  Client slow(server.port());
  slow.write_raw("GET / HTTP/1.1\r\n");
  bool cut_off = false;
  for (int i = 0; i < 200 && !cut_off; ++i) {  // 10 s of trickling at most
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the client's pace
    try {
      slow.write_raw("X-Trickle: " + std::to_string(i) + "\r\n");
    } catch (const std::exception&) {
      cut_off = true;
    }
  }
  EXPECT_TRUE(cut_off);
}

// A handler may take longer than the idle timeout: its time is not idle time.
TEST(HttpServer, SlowHandlerIsAnsweredDespiteIdleTimeout) {
  HttpConfig cfg = local_config();
  cfg.idle_timeout = std::chrono::milliseconds(100);
  HttpServer server(cfg);
  std::mutex mu;
  std::vector<std::thread> workers;
  server.route(Verb::get, "/", [&](Request&&, Responder res) {
    std::lock_guard lock(mu);
    workers.emplace_back([res = std::move(res)]() mutable {
      std::this_thread::sleep_for(std::chrono::milliseconds(250));  // the slow work
      res(text("late"));
    });
  });
  ASSERT_TRUE(server.start());
  Client c(server.port());
  EXPECT_EQ(c.get("/").body(), "late");
  EXPECT_EQ(c.get("/").body(), "late");  // still open: keep-alive after the slow answer
  std::lock_guard lock(mu);
  for (auto& w : workers) w.join();
}

TEST(HttpServer, StopWithARequestInFlightAndALateResponder) {
  std::promise<Responder> held;
  auto server = std::make_unique<HttpServer>(local_config());
  server->route(Verb::get, "/hold", [&](Request&&, Responder res) { held.set_value(std::move(res)); });
  ASSERT_TRUE(server->start());
  Client client(server->port());
  client.write_raw("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n");
  auto reader = std::async(std::launch::async, [&] { return client.server_closed(); });
  Responder late = held.get_future().get();
  server->stop();             // does not wait for the Responder
  EXPECT_TRUE(reader.get());  // the client sees the connection closed, not a hang
  server.reset();
  EXPECT_TRUE(late);
  late(text("too late"));  // outliving the server: a no-op
  EXPECT_FALSE(late);
}

TEST(HttpServer, StartErrors) {
  for (auto listen : {"nohost", "127.0.0.1:99999", "127.0.0.1:http", "127.0.0.1:"}) {
    HttpConfig cfg;
    cfg.listen = listen;
    HttpServer server(cfg);
    auto r = server.start();
    ASSERT_FALSE(r) << listen;
    EXPECT_NE(r.error().message.find(listen), std::string::npos) << r.error().message;
  }
  HttpServer first(local_config());
  ASSERT_TRUE(first.start());
  HttpConfig cfg;
  cfg.listen = "127.0.0.1:" + std::to_string(first.port());
  HttpServer second(cfg);
  auto r = second.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::io);
}

TEST(HttpUtil, QueryAndPath) {
  EXPECT_EQ(target_path("/topics/x?broker=a"), "/topics/x");
  EXPECT_EQ(query_param("/t?a=1&broker=my%20b&c", "broker").value(), "my b");
  EXPECT_EQ(query_param("/t?a=1+2", "a").value(), "1 2");
  EXPECT_EQ(query_param("/t?a=1", "broker").value(), "");
  EXPECT_EQ(query_param("/t", "broker").value(), "");
  EXPECT_FALSE(query_param("/t?broker=%G1", "broker"));
  EXPECT_EQ(url_decode("a%2Eb+c").value(), "a.b+c");
  EXPECT_FALSE(url_decode("a%2"));
}

// The shortcut for plain strings writes what nlohmann::json writes, and everything
// else (quotes, backslashes, control bytes, UTF-8, invalid UTF-8) goes through it.
TEST(HttpUtil, JsonStringMatchesNlohmann) {
  for (std::string s : {std::string(""), std::string("d24bf12f-2d8c-4bc4-a9f3-4635ee3bb6b1"),
                        std::string("a.b_c-D"), std::string("say \"hi\""),
                        std::string("back\\slash"), std::string("tab\tnl\n"),
                        std::string("\x01\x7f"), std::string("caf\xc3\xa9"),
                        std::string("bad \xff utf8"), std::string("nul\0in", 6)}) {
    std::string out;
    append_json_string(out, s);
    EXPECT_EQ(out, nlohmann::json(s).dump(-1, ' ', false,
                                          nlohmann::json::error_handler_t::replace))
        << s;
  }
}

TEST(HttpUtil, BearerTokens) {
  std::vector<std::string> tokens = {"alpha", "beta-token"};
  EXPECT_TRUE(bearer_token_ok("Bearer alpha", tokens));
  EXPECT_TRUE(bearer_token_ok("BEARER   beta-token ", tokens));
  EXPECT_FALSE(bearer_token_ok("Bearer alph", tokens));
  EXPECT_FALSE(bearer_token_ok("Bearer alphaa", tokens));
  EXPECT_FALSE(bearer_token_ok("Bearer ", tokens));
  EXPECT_FALSE(bearer_token_ok("alpha", tokens));
  EXPECT_FALSE(bearer_token_ok("", tokens));
  EXPECT_FALSE(bearer_token_ok("Bearer alpha", {}));
}

}  // namespace
}  // namespace sluice::http::testing
