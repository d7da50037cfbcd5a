// A small asynchronous HTTP/1.1 server (Boost.Beast on Boost.Asio): keep-alive,
// idle timeout, body and header limits, bearer-token auth and one routing table.
//
// Overload: at most `HttpConfig::max_connections` connections are open at once; a
// connection accepted over the cap gets a canned 503 (one non-blocking send) and is
// closed at once, counted in sluice_http_connections_refused_total{listener} and
// logged at most every few seconds. When accept() itself fails for want of file
// descriptors (EMFILE/ENFILE), the listener gives back one fd it holds in reserve,
// accepts and sheds the waiting connection the same way, takes its reserve again and
// goes on; it never spins and never stops listening.
//
// Lifecycle: construct, register routes with route(), start() once, stop() once
// (the destructor stops). route() is not thread-safe and must happen before start().
//
// Threads: `HttpConfig::io_threads` (else `Options::io_threads`, else
// default_io_threads()) threads run one io_context. The acceptor lives on
// its own strand; every connection lives on its own strand and is only touched
// there. Handlers run on their connection's strand and must not block: they answer
// through the Responder, at once or later from any thread. The one lock (Hub::mu,
// in http_server.cc) guards the set of live connections and the "still running"
// flag, so that stop() can close every connection and a late Responder never posts
// into a stopped server.
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "broker-adapters/http/http_util.h"
#include "config/config.h"
#include "core/result.h"
#include "metrics/metrics.h"

namespace sluice::http {

namespace detail {
class Connection;
struct Hub;
}  // namespace detail

// The promise of one response. Move-only; call it once, from any thread (it posts
// to the connection's strand). Destroyed without being called, it sends
// 500 {"error": ...}, so a client never hangs on a forgotten request. After the
// connection closed or the server stopped, calling it does nothing.
class Responder {
 public:
  Responder() = default;
  Responder(Responder&& o) noexcept;
  Responder& operator=(Responder&& o) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  ~Responder();

  // Sends `res`; version, keep-alive and Content-Length are filled in.
  void operator()(Response res);
  // True while a response is still owed.
  explicit operator bool() const { return hub_ != nullptr; }

 private:
  friend class detail::Connection;
  Responder(std::weak_ptr<detail::Connection> conn, std::shared_ptr<detail::Hub> hub,
            uint64_t seq)
      : conn_(std::move(conn)), hub_(std::move(hub)), seq_(seq) {}

  std::weak_ptr<detail::Connection> conn_;
  std::shared_ptr<detail::Hub> hub_;  // null once answered or moved from
  uint64_t seq_ = 0;                  // which request of the connection this answers
};

using Handler = std::function<void(Request&&, Responder)>;

// Whether a route needs `Authorization: Bearer <token>` (when tokens are configured).
enum class Auth { required, none };

// Half the CPUs, at least 2, at most 4: the io threads share the machine with the
// local broker's writer thread, the dispatcher and the functions; one thread alone
// falls behind when other processes compete for the CPUs (BENCHMARKS.md).
int default_io_threads();

class HttpServer {
 public:
  struct Options {
    int io_threads = 0;  // used when HttpConfig::io_threads is 0; 0 = default_io_threads()
    uint32_t header_limit = 16 * 1024;  // bytes of request line + headers
    // Names the listener in logs, errors and the {listener} metric label, and the
    // config key of its token file ("<name>.auth.bearer_tokens_file").
    std::string name = "http";
    metrics::Metrics* metrics = nullptr;  // null: no connection metrics
  };

  HttpServer(const HttpConfig& cfg, Options opts);
  explicit HttpServer(const HttpConfig& cfg) : HttpServer(cfg, Options{}) {}
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // `pattern` ending in '/' matches every path that starts with it; otherwise the
  // path must equal it. The query string is not part of the path. Longest match wins.
  // Unknown path -> 404, known path with another method -> 405 (with Allow).
  void route(Verb verb, std::string pattern, Handler handler, Auth auth = Auth::required);

  // Loads the token file, binds and starts the io threads. Errors: bad listen address,
  // bind failure, missing/empty/unreadable token file. Call once.
  Result<void> start();
  // Closes the listener and every connection and joins the io threads. Idempotent.
  // Must not be called from an io thread (a handler).
  void stop();
  // The bound port (after start(); useful with port 0).
  uint16_t port() const { return port_; }
  // The connection cap in force (after start()).
  uint32_t max_connections() const { return max_connections_; }

 private:
  friend class detail::Connection;
  class Listener;
  struct Route {
    Verb verb;
    std::string pattern;
    Handler handler;
    Auth auth;
  };
  // The route for (verb, path); null with *allow = the verbs the path has (405) or
  // empty (404).
  const Route* find_route(Verb verb, std::string_view path, std::string* allow) const;

  HttpConfig cfg_;
  Options opts_;
  std::vector<Route> routes_;
  std::vector<std::string> tokens_;
  int io_threads_;  // before ioc_: its concurrency hint
  boost::asio::io_context ioc_;
  // Keeps run() going until stop() has posted every close (else the threads could
  // leave as soon as the acceptor closes, with connection closes still unposted).
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  std::shared_ptr<detail::Hub> hub_;
  std::shared_ptr<Listener> listener_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  uint32_t max_connections_ = 0;
  prometheus::Counter* refused_ = nullptr;  // null without Options::metrics
  prometheus::Gauge* open_ = nullptr;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace sluice::http
