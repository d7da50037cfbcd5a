#include "workers/http_runtime.h"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <unordered_map>

#include "core/cloudevents.h"
#include "workers/child_process.h"
#include "workers/logger.h"

namespace sluice::workers {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

struct HttpRuntime::Conn {
  explicit Conn(asio::io_context& io) : socket(io) {}
  void close() {
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }
  tcp::socket socket;
  beast::flat_buffer buf;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::string_body>> parser;
};

struct HttpRuntime::Worker final : PoolWorker {
  Worker(asio::io_context& io, uint16_t port_) : PoolWorker(io), port(port_), poll_timer(io) {
    open_pipes = 2;  // stdout is logged too
  }
  size_t load() const override { return calls.size(); }
  bool holds_calls() const override { return !calls.empty(); }

  uint16_t port;
  std::unordered_map<uint64_t, CallPtr> calls;
  std::vector<std::shared_ptr<Conn>> idle;
  std::shared_ptr<Conn> probe;
  std::string probe_result = "no answer yet";
  asio::steady_timer poll_timer;  // readiness polling
  std::optional<OutputLines> out_log;
  std::array<char, 4096> obuf{};
};

struct HttpRuntime::Call {
  Call(asio::io_context& io, uint64_t id_, const Event& e, InvokeCallback d)
      : id(id_), ev(&e), done(std::move(d)), timer(io) {}
  uint64_t id;
  const Event* ev;
  InvokeCallback done;  // empty once reported
  asio::steady_timer timer;
  std::shared_ptr<Conn> conn;
};

namespace {

PoolOptions pool_options(const HttpOptions& o) {
  return PoolOptions{o.kill_grace, o.restart_initial, o.restart_max, o.output_budget,
                     o.initial_workers, std::chrono::microseconds{0}};
}

// A loopback port free right now (the process binds it a moment later).
Result<uint16_t> pick_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    const int e = errno;
    const bool exhausted = resource_exhausted(e);  // retriable like a spawn error
    if (exhausted) count_exhaustion(e);
    return Error{Errc::io, std::string("choosing a port: socket: ") + ::strerror(e), exhausted};
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    int e = errno;
    ::close(fd);
    return Error{Errc::io, std::string("choosing a port: ") + ::strerror(e)};
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

// Event headers that must not be forwarded: hop-by-hop ones and those the request
// sets itself; names that are not HTTP tokens and values with CR, LF or NUL.
bool forwardable(const Header& h) {
  static constexpr std::string_view kDrop[] = {"host",    "content-length", "transfer-encoding",
                                               "connection", "keep-alive", "upgrade",
                                               "te",      "trailer",        "proxy-connection"};
  if (h.name.empty()) return false;
  for (char c : h.name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || std::string_view("\"(),/:;<=>?@[\\]{}").find(c) != std::string_view::npos)
      return false;
  }
  if (h.value.find_first_of(std::string_view("\r\n\0", 3)) != std::string::npos) return false;
  for (auto d : kDrop)
    if (h.name.size() == d.size() &&
        std::equal(d.begin(), d.end(), h.name.begin(), [](char a, char b) {
          return a == (b >= 'A' && b <= 'Z' ? b - 'A' + 'a' : b);
        }))
      return false;
  return true;
}

std::string body_line(std::string_view body) {
  if (body.size() > 512) body = body.substr(0, 512);
  std::string out;
  for (char c : body) out += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::optional<Millis> parse_retry_after(std::string_view v, int64_t now_unix_ms) {
  while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
  while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
  if (v.empty()) return std::nullopt;
  if (std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    if (v.size() > 9) return Millis{int64_t{999999999} * 1000};
    return Millis{std::stoll(std::string(v)) * 1000};
  }
  struct tm tm{};
  std::string s(v);
  const char* end = ::strptime(s.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (!end || *end != '\0') return std::nullopt;
  const int64_t at = static_cast<int64_t>(::timegm(&tm)) * 1000;
  return Millis{std::max<int64_t>(0, at - now_unix_ms)};
}

HttpRuntime::HttpRuntime(const FunctionConfig& fn, std::string base_dir, HttpOptions opts)
    : name_(fn.name),
      timeout_(fn.timeout),
      ready_path_(fn.ready_path),
      opts_(opts),
      pool_("http", fn, std::move(base_dir), pool_options(opts), *this) {}

HttpRuntime::~HttpRuntime() { stop(Millis{0}); }

void HttpRuntime::share_loop(std::shared_ptr<asio::io_context> loop) {
  pool_.share_loop(std::move(loop));
}

Result<void> HttpRuntime::start() { return pool_.start(); }

void HttpRuntime::on_starting() { redispatch_timer_.emplace(io()); }

void HttpRuntime::invoke(const Event& ev, InvokeCallback done) {
  const char* refusal = pool_.admit(done);
  if (!refusal) {
    asio::post(io(), [this, ev = &ev, done = std::move(done), h = hold()]() mutable {
      submit(std::make_shared<Call>(io(), next_call_++, *ev, std::move(done)));
    });
    return;
  }
  if (*refusal) done(failure(Outcome::error, refusal));
}

void HttpRuntime::submit(CallPtr c) {
  if (timeout_.count() > 0) {
    c->timer.expires_after(timeout_);
    c->timer.async_wait([this, c, h = hold()](error_code ec) {
      if (!ec) on_call_timeout(c);
    });
  }
  waiting_.push_back(std::move(c));
  dispatch();
}

void HttpRuntime::dispatch() {
  while (!waiting_.empty()) {
    if (!waiting_.front()->done) {  // timed out while waiting
      waiting_.pop_front();
      continue;
    }
    const PoolWorkerPtr* pick = nullptr;
    for (const PoolWorkerPtr& w : pool_.workers())
      if (w->st == Worker::St::ready && (!pick || w->load() < (*pick)->load())) pick = &w;
    if (!pick) break;
    WorkerPtr best = std::static_pointer_cast<Worker>(*pick);
    CallPtr c = std::move(waiting_.front());
    waiting_.pop_front();
    best->calls.emplace(c->id, c);
    std::shared_ptr<Conn> conn;
    bool fresh = best->idle.empty();
    if (fresh) {
      conn = std::make_shared<Conn>(io());
    } else {
      conn = std::move(best->idle.back());
      best->idle.pop_back();
    }
    send(best, c, std::move(conn), fresh);
  }
  pool_.maintain();
}

Result<PoolWorkerPtr> HttpRuntime::make_worker(Environment& env) {
  auto port = pick_port();
  if (!port) return port.error();
  env.set("PORT", std::to_string(port.value()));
  return PoolWorkerPtr(std::make_shared<Worker>(io(), port.value()));
}

void HttpRuntime::on_spawn(const PoolWorkerPtr& pw) {
  auto w = std::static_pointer_cast<Worker>(pw);
  w->out_log.emplace(w->prefix, "stdout", opts_.output_budget, pool_.output_dropped());
  read_stdout(w);
  poll_ready(w);
}

std::string HttpRuntime::not_ready(const PoolWorker& pw) {
  auto& w = static_cast<const Worker&>(pw);
  return "not ready within " + std::to_string(pool_.start_timeout().count()) + "ms: GET " +
         ready_path_ + " on port " + std::to_string(w.port) + ": " + w.probe_result +
         " (does it listen on $PORT?)";
}

void HttpRuntime::read_stdout(const WorkerPtr& w) {
  w->child->stdout_pipe().async_read_some(
      asio::buffer(w->obuf), [this, w, h = hold()](error_code ec, size_t n) {
        if (n > 0) w->out_log->feed(std::string_view(w->obuf.data(), n));
        if (ec) {
          w->out_log->finish();
          if (--w->open_pipes == 0 && w->exited) w->timer.cancel();
          return;
        }
        read_stdout(w);
      });
}

void HttpRuntime::poll_ready(const WorkerPtr& w) {
  if (w->st != Worker::St::starting) return;
  auto conn = std::make_shared<Conn>(io());
  w->probe = conn;
  auto again = [this, w] {
    if (w->probe) w->probe->close();
    w->probe.reset();
    if (w->st != Worker::St::starting) return;
    w->poll_timer.expires_after(opts_.ready_poll);
    w->poll_timer.async_wait([this, w, h = hold()](error_code ec) {
      if (!ec) poll_ready(w);
    });
  };
  tcp::endpoint ep(asio::ip::address_v4::loopback(), w->port);
  conn->socket.async_connect(ep, [this, w, conn, again, h = hold()](error_code ec) {
    if (ec) {
      w->probe_result = ec.message();
      again();
      return;
    }
    conn->req = {http::verb::get, ready_path_, 11};
    conn->req.set(http::field::host, "127.0.0.1:" + std::to_string(w->port));
    conn->req.set(http::field::user_agent, "sluice");
    http::async_write(conn->socket, conn->req, [this, w, conn, again,
                                                h = hold()](error_code ec, size_t) {
      if (ec) {
        w->probe_result = ec.message();
        again();
        return;
      }
      conn->parser.emplace();
      conn->parser->body_limit(64 * 1024);
      http::async_read(conn->socket, conn->buf, *conn->parser,
                       [this, w, conn, again, h = hold()](error_code ec, size_t) {
                         if (ec) {
                           w->probe_result = ec.message();
                           again();
                           return;
                         }
                         const unsigned code = conn->parser->get().result_int();
                         if (code < 200 || code > 299 || w->st != Worker::St::starting) {
                           w->probe_result = "HTTP " + std::to_string(code);
                           again();
                           return;
                         }
                         conn->close();
                         w->probe.reset();
                         pool_.ready(*w);
                         log().info("[fn {}] [worker {}] ready on port {}", name_,
                                    w->child->pid(), w->port);
                         dispatch();
                       });
    });
  });
}

void HttpRuntime::send(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn,
                       bool fresh) {
  c->conn = conn;
  const Event& ev = *c->ev;
  conn->req = {http::verb::post, opts_.path, 11};
  conn->req.set(http::field::host, "127.0.0.1:" + std::to_string(w->port));
  for (const Header& h : cloudevents::to_binary(ev, "ce-"))
    if (forwardable(h)) conn->req.insert(h.name, h.value);
  conn->req.keep_alive(true);
  conn->req.body() = ev.data;
  conn->req.prepare_payload();

  // A transport failure: on a reused connection before any answer, retry once on a
  // fresh one (the server may have closed it while idle); otherwise the worker is
  // broken: crash, and it is restarted.
  auto broken = [this, w, c, fresh](const std::string& what, bool before_answer) {
    if (!c->done || w->st == Worker::St::dying) {
      if (c->done) complete(c, failure(Outcome::crash, "worker crashed: " + what));
      return;
    }
    if (!fresh && before_answer) {
      send(w, c, std::make_shared<Conn>(io()), true);
      return;
    }
    complete(c, failure(Outcome::crash, "worker connection failed: " + what));
    pool_.fail_worker(w, what);
  };
  auto write = [this, w, c, conn, broken] {
    http::async_write(conn->socket, conn->req, [this, w, c, conn, broken,
                                                 h = hold()](error_code ec, size_t) {
      if (!c->done) return conn->close();
      if (ec) return broken("sending the event: " + ec.message(), true);
      conn->parser.emplace();
      conn->parser->body_limit(opts_.max_output_bytes);
      conn->parser->header_limit(64 * 1024);
      // Header first: Boost 1.74's parser skips body_limit for a Content-Length
      // body in eager mode (what async_read uses), so that case is checked here.
      http::async_read_header(conn->socket, conn->buf, *conn->parser,
                              [this, w, c, conn, broken, h = hold()](error_code ec, size_t n) {
        if (!c->done) return conn->close();
        auto read_body = [this, w, c, conn, broken] {
          http::async_read(conn->socket, conn->buf, *conn->parser,
                           [this, w, c, conn, broken, h = hold()](error_code ec, size_t n) {
            if (!c->done) return conn->close();
            if (ec) return on_read_error(w, c, conn, ec, false, broken);
            on_response(w, c, conn);
          });
        };
        if (ec) return on_read_error(w, c, conn, ec, n == 0, broken);
        auto len = conn->parser->content_length();
        if (len && *len > opts_.max_output_bytes)
          return on_read_error(w, c, conn, http::error::body_limit, false, broken);
        read_body();
      });
    });
  };
  if (!fresh) return write();
  tcp::endpoint ep(asio::ip::address_v4::loopback(), w->port);
  conn->socket.async_connect(ep, [this, w, c, conn, write, broken, h = hold()](error_code ec) {
    if (!c->done) return conn->close();
    if (ec && ec.category() == boost::system::system_category() &&
        resource_exhausted(ec.value()))
      return requeue_exhausted(w, c, ec);  // no socket for it: not the worker's fault
    if (ec) return broken("connecting: " + ec.message(), false);
    error_code ignored;
    conn->socket.set_option(tcp::no_delay(true), ignored);
    write();
  });
}

// A connection that could not be opened for want of fds (or ports, or memory): the
// worker is fine. The call goes back to the front of the queue and is dispatched
// again a moment later; its timeout runs meanwhile.
void HttpRuntime::requeue_exhausted(const WorkerPtr& w, const CallPtr& c, error_code ec) {
  w->calls.erase(c->id);
  c->conn.reset();
  waiting_.push_front(c);
  count_exhaustion(ec.value());
  if (auto quiet = exhausted_log_.allow())
    log().warn("[fn {}] cannot open a connection to worker {}: {}; the invocation waits{}",
               name_, w->child->pid(), ec.message(), suppressed_note(*quiet));
  if (redispatch_pending_) return;
  redispatch_pending_ = true;
  redispatch_timer_->expires_after(Millis{50});
  redispatch_timer_->async_wait([this, h = hold()](error_code ec) {
    redispatch_pending_ = false;
    if (!ec) dispatch();
  });
}

template <class Broken>
void HttpRuntime::on_read_error(const WorkerPtr& w, const CallPtr& c,
                                const std::shared_ptr<Conn>& conn, error_code ec,
                                bool nothing_read, const Broken& broken) {
  conn->close();
  if (ec == http::error::body_limit) {
    w->calls.erase(c->id);
    complete(c, failure(Outcome::error, "output exceeds " +
                                            std::to_string(opts_.max_output_bytes) + " bytes"));
    dispatch();
    return;
  }
  const bool before_answer =
      nothing_read && (ec == http::error::end_of_stream || ec == asio::error::eof ||
                       ec == asio::error::connection_reset);
  const bool not_http =
      ec.category() == http::make_error_code(http::error::end_of_stream).category() &&
      ec != http::error::end_of_stream && ec != http::error::partial_message;
  broken((not_http ? "not an HTTP response: " : "reading the answer: ") + ec.message(),
         before_answer);
}

void HttpRuntime::on_response(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn) {
  auto& res = conn->parser->get();
  const unsigned code = res.result_int();
  InvocationResult r;
  if (code >= 200 && code <= 299) {
    r.outcome = Outcome::success;
    r.output = std::move(res.body());
    if (auto it = res.find(http::field::content_type); it != res.end())
      r.content_type = std::string(it->value());
  } else {
    r.outcome = Outcome::error;
    std::string body = body_line(res.body());
    if (code == 429 || code == 503) {
      r.message = "HTTP " + std::to_string(code) + " (busy, retry later)";
      if (auto it = res.find(http::field::retry_after); it != res.end())
        r.retry_after = parse_retry_after(std::string_view(it->value().data(), it->value().size()),
                                          now_unix_ms());
    } else {
      r.message = "HTTP " + std::to_string(code);
    }
    if (!body.empty()) r.message += ": " + body;
  }
  const bool keep = res.keep_alive();
  conn->parser.reset();
  conn->buf.consume(conn->buf.size());
  c->conn.reset();
  if (keep && w->st == Worker::St::ready)
    w->idle.push_back(std::move(conn));
  else
    conn->close();
  w->calls.erase(c->id);
  pool_.answered();
  complete(c, std::move(r));
  if (w->st == Worker::St::retiring && w->calls.empty()) pool_.retire(w);
  dispatch();
}

void HttpRuntime::on_call_timeout(const CallPtr& c) {
  if (!c->done) return;
  if (c->conn) c->conn->close();  // its handlers end with operation_aborted
  for (const PoolWorkerPtr& w : pool_.workers()) static_cast<Worker&>(*w).calls.erase(c->id);
  complete(c, failure(Outcome::timeout, "timed out after " + std::to_string(timeout_.count()) +
                                            "ms"));
  dispatch();
}

void HttpRuntime::complete(const CallPtr& c, InvocationResult&& r) {
  if (!c->done) return;
  c->timer.cancel();
  InvokeCallback done = std::move(c->done);
  c->done = nullptr;
  pool_.call_done();
  done(std::move(r));
}

void HttpRuntime::on_exit(const PoolWorkerPtr& pw, const std::string& reason) {
  auto w = std::static_pointer_cast<Worker>(pw);
  w->poll_timer.cancel();
  if (w->probe) w->probe->close();
  for (auto& conn : w->idle) conn->close();
  w->idle.clear();
  auto held = std::move(w->calls);
  w->calls.clear();
  for (auto& [id, c] : held) {
    if (c->conn) c->conn->close();
    complete(c, failure(Outcome::crash, "worker crashed: " + reason));
  }
}

void HttpRuntime::fail_waiting(Outcome o, const std::string& why) {
  auto calls = std::move(waiting_);
  waiting_.clear();
  for (auto& c : calls) complete(c, failure(o, why));
}

void HttpRuntime::on_retire(const PoolWorkerPtr& pw) {
  auto& w = static_cast<Worker&>(*pw);
  for (auto& conn : w.idle) conn->close();
  w.idle.clear();
}

void HttpRuntime::goodbye(const PoolWorkerPtr& pw) {
  static_cast<Worker&>(*pw).poll_timer.cancel();
  pw->child->signal_group(SIGTERM);
}

void HttpRuntime::resize(size_t workers) { pool_.resize(workers); }

void HttpRuntime::shutdown() {
  redispatch_timer_->cancel();
  fail_waiting(Outcome::crash, "stopped");
  for (const PoolWorkerPtr& pw : pool_.workers()) {
    auto& w = static_cast<Worker&>(*pw);
    auto held = std::move(w.calls);
    w.calls.clear();
    for (auto& [id, c] : held) {
      if (c->conn) c->conn->close();
      complete(c, failure(Outcome::crash, "stopped"));
    }
  }
}

void HttpRuntime::teardown() {
  redispatch_timer_->cancel();
  for (const PoolWorkerPtr& pw : pool_.workers()) {
    auto& w = static_cast<Worker&>(*pw);
    w.poll_timer.cancel();
    if (w.probe) w.probe->close();
  }
}

void HttpRuntime::stop(std::chrono::milliseconds grace) { pool_.stop(grace); }

PoolStats HttpRuntime::stats() const { return pool_.stats(); }

std::vector<pid_t> HttpRuntime::worker_pids() const { return pool_.pids(); }

}  // namespace sluice::workers
