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
#include <stdexcept>
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

struct HttpRuntime::Worker {
  enum class St { starting, ready, retiring, dying };
  Worker(asio::io_context& io, std::unique_ptr<ChildProcess> c, const std::string& fn,
         LogBudgetOptions budget, std::atomic<uint64_t>* dropped, uint16_t port_)
      : child(std::move(c)),
        port(port_),
        timer(io),
        poll_timer(io),
        out_log(prefix(fn), "stdout", budget, dropped),
        err_log(prefix(fn), "stderr", budget, dropped) {}
  std::string prefix(const std::string& fn) const {
    return "[fn " + fn + "] [worker " + std::to_string(child->pid()) + "]";
  }

  std::unique_ptr<ChildProcess> child;
  uint16_t port;
  St st = St::starting;
  bool retired = false, ever_ready = false, exited = false;
  std::unordered_map<uint64_t, CallPtr> calls;
  std::vector<std::shared_ptr<Conn>> idle;
  std::shared_ptr<Conn> probe;
  std::string probe_result = "no answer yet";
  asio::steady_timer timer;       // start deadline, then the kill grace
  asio::steady_timer poll_timer;  // readiness polling
  OutputLines out_log, err_log;
  std::array<char, 4096> obuf{}, ebuf{};
  int open_pipes = 2;
  std::string death;
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
      command_(fn.command),
      base_dir_(std::move(base_dir)),
      timeout_(fn.timeout),
      start_timeout_(fn.start_timeout),
      ready_path_(fn.ready_path),
      limits_(limits_of(fn.limits)),
      opts_(opts),
      backoff_(opts.restart_initial, opts.restart_max) {
  env_ = function_environment(fn);
  env_.set("SLUICE_FUNCTION", name_);
  target_ = opts.initial_workers ? opts.initial_workers : std::max<size_t>(fn.workers.min, 1);
}

HttpRuntime::~HttpRuntime() { stop(Millis{0}); }

void HttpRuntime::share_loop(std::shared_ptr<asio::io_context> loop) {
  std::lock_guard lk(mu_);
  if (state_ == State::created) loop_.lend(std::move(loop));
}

Result<void> HttpRuntime::start() {
  std::lock_guard lk(mu_);
  if (auto checked = check_start("http", state_ == State::created, name_, command_, base_dir_);
      !checked)
    return checked;
  ::signal(SIGPIPE, SIG_IGN);
  restart_timer_.emplace(io());
  redispatch_timer_.emplace(io());
  loop_.start([this] { io().run(); });
  state_ = State::running;
  asio::post(io(), [this, h = hold()] { maintain(); });
  return ok();
}

void HttpRuntime::invoke(const Event& ev, InvokeCallback done) {
  const char* refusal = "runtime stopped";
  {
    std::lock_guard lk(mu_);
    if (state_ == State::running) {
      ++inflight_;
      asio::post(io(), [this, ev = &ev, done = std::move(done), h = hold()]() mutable {
        submit(std::make_shared<Call>(io(), next_call_++, *ev, std::move(done)));
      });
      return;
    }
    if (state_ == State::created) refusal = "runtime not started";
    if (state_ == State::stopping) {
      asio::post(io(), [done = std::move(done), h = hold()]() mutable {
        done(failure(Outcome::error, "runtime stopped"));
      });
      return;
    }
  }
  done(failure(Outcome::error, refusal));
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

size_t HttpRuntime::live_workers() const {
  size_t n = 0;
  for (const WorkerPtr& w : workers_)
    if (w->st == Worker::St::starting || w->st == Worker::St::ready) ++n;
  return n;
}

void HttpRuntime::dispatch() {
  while (!waiting_.empty()) {
    if (!waiting_.front()->done) {  // timed out while waiting
      waiting_.pop_front();
      continue;
    }
    WorkerPtr best;
    for (const WorkerPtr& w : workers_)
      if (w->st == Worker::St::ready && (!best || w->calls.size() < best->calls.size())) best = w;
    if (!best) break;
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
  maintain();
}

void HttpRuntime::maintain() {
  {
    std::lock_guard lk(mu_);
    if (state_ != State::running) return;
  }
  const size_t want = std::max(target_, waiting_.empty() ? size_t{0} : size_t{1});
  while (!restart_pending_ && live_workers() < want) spawn_worker();
}

void HttpRuntime::schedule_restart() {
  if (restart_pending_) return;
  restart_pending_ = true;
  restart_timer_->expires_after(backoff_.next());
  restart_timer_->async_wait([this, h = hold()](error_code ec) {
    if (ec) return;
    restart_pending_ = false;
    maintain();
  });
}

void HttpRuntime::spawn_worker() {
  auto port = pick_port();
  Result<std::unique_ptr<ChildProcess>> child = Error{Errc::internal, ""};
  if (port) {
    Environment env = env_;
    env.set("PORT", std::to_string(port.value()));
    child = ChildProcess::spawn(io().get_executor(),
                                SpawnOptions{command_, base_dir_, env.to_list(), limits_});
  }
  if (!port || !child) {
    const Error& err = !port ? port.error() : child.error();
    if (err.retriable) {
      // Out of fds, processes or memory: the waiting invocations keep waiting (their
      // timeouts run) and the start is tried again after the backoff.
      if (auto quiet = exhausted_log_.allow())
        log().warn("[fn {}] {}; trying again with backoff{}", name_, err.message,
                   suppressed_note(*quiet));
    } else {
      if (err.message != last_start_error_) log().error("[fn {}] {}", name_, err.message);
      last_start_error_ = err.message;
      fail_waiting(Outcome::error, err.message);
    }
    schedule_restart();
    return;
  }
  auto w = std::make_shared<Worker>(io(), std::move(child).value(), name_, opts_.output_budget,
                                    &output_dropped_, port.value());
  ++alive_;
  {
    std::lock_guard lk(mu_);
    pids_.push_back(w->child->pid());
  }
  workers_.push_back(w);
  w->timer.expires_after(start_timeout_);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (ec || w->st != Worker::St::starting) return;
    fail_worker(w, "not ready within " + std::to_string(start_timeout_.count()) + "ms: GET " +
                       ready_path_ + " on port " + std::to_string(w->port) + ": " +
                       w->probe_result + " (does it listen on $PORT?)");
  });
  w->child->async_wait_exit([this, w, h = hold()](const ExitStatus&) { on_worker_exit(w); });
  read_output(w, false);
  read_output(w, true);
  poll_ready(w);
}

void HttpRuntime::read_output(const WorkerPtr& w, bool err) {
  auto& pipe = err ? w->child->stderr_pipe() : w->child->stdout_pipe();
  auto& buf = err ? w->ebuf : w->obuf;
  pipe.async_read_some(asio::buffer(buf), [this, w, err, h = hold()](error_code ec, size_t n) {
    auto& lines = err ? w->err_log : w->out_log;
    if (n > 0) lines.feed(std::string_view((err ? w->ebuf : w->obuf).data(), n));
    if (ec) {
      lines.finish();
      if (--w->open_pipes == 0 && w->exited) w->timer.cancel();
      return;
    }
    read_output(w, err);
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
                         w->st = Worker::St::ready;
                         w->ever_ready = true;
                         w->timer.cancel();
                         last_start_error_.clear();
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
    fail_worker(w, what);
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
  backoff_.reset();
  complete(c, std::move(r));
  if (w->st == Worker::St::retiring && w->calls.empty()) retire(w);
  dispatch();
}

void HttpRuntime::on_call_timeout(const CallPtr& c) {
  if (!c->done) return;
  if (c->conn) c->conn->close();  // its handlers end with operation_aborted
  for (const WorkerPtr& w : workers_) w->calls.erase(c->id);
  complete(c, failure(Outcome::timeout, "timed out after " + std::to_string(timeout_.count()) +
                                            "ms"));
  dispatch();
}

void HttpRuntime::complete(const CallPtr& c, InvocationResult&& r) {
  if (!c->done) return;
  c->timer.cancel();
  InvokeCallback done = std::move(c->done);
  c->done = nullptr;
  if (--inflight_ == 0) {  // as exec: out of the count before the callback runs
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
  done(std::move(r));
}

void HttpRuntime::fail_worker(const WorkerPtr& w, const std::string& why) {
  if (w->st == Worker::St::dying) return;
  w->st = Worker::St::dying;
  w->death = why;
  log().error("[fn {}] [worker {}] {}; killing it ({} invocation(s) held)", name_,
              w->child->pid(), why, w->calls.size());
  w->child->signal_group(SIGKILL);
}

void HttpRuntime::on_worker_exit(const WorkerPtr& w) {
  const std::string status = w->child->status()->describe();
  const std::string reason = w->death.empty() ? status : w->death + " (" + status + ")";
  if (w->death.empty() && !w->retired)
    log().error("[fn {}] [worker {}] exited: {}", name_, w->child->pid(), status);
  w->st = Worker::St::dying;
  w->exited = true;
  w->timer.cancel();
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
  if (w->open_pipes > 0) {  // read what it said last, but not forever
    w->timer.expires_after(Millis{2000});
    w->timer.async_wait([w](error_code ec) {
      if (!ec) w->child->close_pipes();
    });
  }
  std::erase(workers_, w);
  {
    std::lock_guard lk(mu_);
    std::erase(pids_, w->child->pid());
    --alive_;
    cv_.notify_all();
    if (state_ != State::running) return;
  }
  if (w->retired) {
    maintain();
    return;
  }
  bool any_ready = false;
  for (const WorkerPtr& o : workers_) any_ready |= o->st == Worker::St::ready;
  if (!w->ever_ready && !any_ready) {
    last_start_error_ = reason;
    fail_waiting(Outcome::error, "worker failed to start: " + reason);
  }
  schedule_restart();
}

void HttpRuntime::fail_waiting(Outcome o, const std::string& why) {
  auto calls = std::move(waiting_);
  waiting_.clear();
  for (auto& c : calls) complete(c, failure(o, why));
}

void HttpRuntime::retire(const WorkerPtr& w) {
  if (w->st == Worker::St::dying) return;
  w->retired = true;
  w->st = Worker::St::retiring;
  for (auto& conn : w->idle) conn->close();
  w->idle.clear();
  if (!w->calls.empty()) return;  // when its last answer arrives
  w->poll_timer.cancel();
  w->child->signal_group(SIGTERM);
  w->timer.expires_after(opts_.kill_grace);
  w->timer.async_wait([w](error_code ec) {
    if (!ec) w->child->signal_group(SIGKILL);
  });
}

void HttpRuntime::resize(size_t workers) {
  asio::post(io(), [this, workers, h = hold()] {
    target_ = workers;
    const size_t keep = std::max(target_, waiting_.empty() && inflight_ == 0 ? 0 : size_t{1});
    size_t live = live_workers();
    while (live > keep) {
      WorkerPtr pick;
      for (const WorkerPtr& w : workers_) {
        if (w->st != Worker::St::starting && w->st != Worker::St::ready) continue;
        if (!pick || (w->st == Worker::St::starting && pick->st != Worker::St::starting) ||
            (w->st == pick->st && w->calls.size() < pick->calls.size()))
          pick = w;
      }
      if (!pick) break;
      retire(pick);
      --live;
    }
    maintain();
  });
}

void HttpRuntime::shutdown_workers() {
  restart_timer_->cancel();
  redispatch_timer_->cancel();
  fail_waiting(Outcome::crash, "stopped");
  for (const WorkerPtr& w : std::vector<WorkerPtr>(workers_)) {
    auto held = std::move(w->calls);
    w->calls.clear();
    for (auto& [id, c] : held) {
      if (c->conn) c->conn->close();
      complete(c, failure(Outcome::crash, "stopped"));
    }
    retire(w);
  }
}

void HttpRuntime::stop(std::chrono::milliseconds grace) {
  if (loop_.on_loop_thread())
    throw std::logic_error("HttpRuntime::stop() called on its loop's thread");
  {
    std::unique_lock lk(mu_);
    if (state_ == State::created) state_ = State::stopped;
    if (state_ == State::stopping) cv_.wait(lk, [&] { return state_ == State::stopped; });
    if (state_ == State::stopped) return;
    state_ = State::stopping;
    cv_.wait_for(lk, grace, [&] { return inflight_ == 0; });
  }
  asio::post(io(), [this, h = hold()] { shutdown_workers(); });
  {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, opts_.kill_grace + Millis{5000}, [&] { return alive_ == 0; })) {
      lk.unlock();
      asio::post(io(), [this, h = hold()] {
        for (const WorkerPtr& w : workers_) w->child->signal_group(SIGKILL);
      });
      lk.lock();
      cv_.wait_for(lk, Millis{10000}, [&] { return alive_ == 0; });
    }
  }
  asio::post(io(), [this, h = hold()] {
    for (const WorkerPtr& w : workers_) {
      w->timer.cancel();
      w->poll_timer.cancel();
      if (w->probe) w->probe->close();
      w->child.reset();
    }
    workers_.clear();
  });
  loop_.finish("[fn " + name_ + "]");
  std::lock_guard lk(mu_);
  state_ = State::stopped;
  cv_.notify_all();
}

PoolStats HttpRuntime::stats() const {
  PoolStats s{alive_.load(), inflight_.load()};
  s.stderr_dropped_bytes = output_dropped_.load(std::memory_order_relaxed);
  return s;
}

std::vector<pid_t> HttpRuntime::worker_pids() const {
  std::lock_guard lk(mu_);
  return pids_;
}

}  // namespace sluice::workers
