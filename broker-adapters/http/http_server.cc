#include "broker-adapters/http/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <algorithm>
#include <charconv>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include "broker-adapters/http/connection.h"
#include "core/fd_limit.h"
#include "core/log_limit.h"
#include "core/thread_guard.h"

namespace sluice::http {

namespace net = boost::asio;
using tcp = net::ip::tcp;

// ---- Responder ----

Responder::Responder(Responder&& o) noexcept
    : conn_(std::move(o.conn_)), hub_(std::move(o.hub_)), seq_(o.seq_) {}

Responder& Responder::operator=(Responder&& o) noexcept {
  if (this != &o) {
    if (hub_) (*this)(json_error(Status::internal_server_error, "request was not answered"));
    conn_ = std::move(o.conn_);
    hub_ = std::move(o.hub_);
    seq_ = o.seq_;
  }
  return *this;
}

Responder::~Responder() {
  if (hub_) (*this)(json_error(Status::internal_server_error, "request was not answered"));
}

void Responder::operator()(Response res) {
  if (!hub_) return;
  std::shared_ptr<detail::Hub> hub = std::move(hub_);
  // Under the hub lock so that stop() cannot close the gate between the check and
  // the post (a post after stop() would never run).
  std::lock_guard lock(hub->mu);
  if (!hub->open) return;
  auto conn = conn_.lock();
  if (!conn) return;
  net::post(conn->get_executor(), [conn, seq = seq_, res = std::move(res)]() mutable {
    conn->deliver(seq, std::move(res));
  });
}

// ---- Listener: owns the acceptor; runs on its own strand ----

namespace {

// What a connection over the cap (or shed for want of fds) is told before it is
// closed. Sent with one non-blocking send, never waited for.
constexpr std::string_view kBusy =
    "HTTP/1.1 503 Service Unavailable\r\n"
    "Content-Type: application/json\r\n"
    "Retry-After: 1\r\n"
    "Connection: close\r\n"
    "Content-Length: 43\r\n"
    "\r\n"
    "{\"error\":\"too many connections, try later\"}";
static_assert(kBusy.size() - kBusy.find("\r\n\r\n") - 4 == 43);

void send_busy_and_close(int fd) {
  (void)::send(fd, kBusy.data(), kBusy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(fd, SHUT_RDWR);
}

int open_reserve_fd() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

class HttpServer::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, HttpServer& server)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), retry_(acceptor_.get_executor()),
        server_(server), reserve_fd_(open_reserve_fd()) {}
  ~Listener() {
    if (reserve_fd_ >= 0) ::close(reserve_fd_);
  }

  Result<uint16_t> open(const tcp::endpoint& ep) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
      // Name the likely cause, so the fix is obvious.
      std::string hint;
      if (ec == boost::system::errc::address_in_use)
        hint = " (another process listens there: stop it, or pick another port, or port 0 "
               "for any free one)";
      else if (ec == boost::system::errc::permission_denied)
        hint = " (ports below 1024 need privileges: pick a port from 1024 up)";
      else if (ec == boost::system::errc::address_not_available)
        hint = " (no interface of this machine has that address)";
      return Error{Errc::io, server_.opts_.name + ": cannot listen on " + server_.cfg_.listen +
                                 ": " + ec.message() + hint};
    }
    return acceptor_.local_endpoint().port();
  }

  void accept() {
    acceptor_.async_accept(net::make_strand(ioc_),
                           [self = shared_from_this()](boost::system::error_code ec,
                                                       tcp::socket s) {
                             self->on_accept(ec, std::move(s));
                           });
  }

  void close() {
    net::post(acceptor_.get_executor(), [self = shared_from_this()] {
      boost::system::error_code ignored;
      self->acceptor_.close(ignored);
      self->retry_.cancel();
    });
  }

 private:
  void on_accept(boost::system::error_code ec, tcp::socket socket) {
    if (!acceptor_.is_open()) return;
    if (ec == net::error::no_descriptors || ec.value() == ENFILE) return out_of_fds(ec);
    if (ec) {
      // A connection reset before it was accepted and the like: try again shortly.
      if (auto n = accept_log_.allow())
        spdlog::warn("{}: accept failed: {}{}", server_.opts_.name, ec.message(),
                     suppressed_note(*n));
      return accept_later();
    }
    std::shared_ptr<detail::Connection> conn;
    {
      std::lock_guard lock(server_.hub_->mu);
      if (!server_.hub_->open) return;  // stopping: the socket closes on the way out
      if (server_.hub_->conns.size() < server_.max_connections_) {
        conn = std::make_shared<detail::Connection>(std::move(socket), server_, server_.hub_);
        server_.hub_->conns.emplace(conn.get(), conn);
        if (server_.open_) server_.open_->Set(static_cast<double>(server_.hub_->conns.size()));
      }
    }
    if (conn) {
      conn->start();
    } else {
      refuse(socket.native_handle(), [&] {
        return "the limit of " + std::to_string(server_.max_connections_) +
               " open connections (" + server_.opts_.name + ".max_connections) is reached";
      });
      boost::system::error_code ignored;
      socket.close(ignored);
    }
    accept();
  }

  // accept() found no free fd: give back the reserve fd, accept and shed the
  // waiting connection with it, take the reserve again. Waits a little before the
  // next accept when nothing could be shed (else the ready listener would spin).
  void out_of_fds(boost::system::error_code ec) {
    bool shed = false;
    if (reserve_fd_ >= 0) {
      ::close(reserve_fd_);
      reserve_fd_ = -1;
      int fd = ::accept4(acceptor_.native_handle(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (fd >= 0) {
        refuse(fd, [&] { return "no file descriptor is free (" + ec.message() + ")"; });
        ::close(fd);
        shed = true;
      }
    }
    if (reserve_fd_ < 0) reserve_fd_ = open_reserve_fd();
    if (!shed) {
      if (auto n = accept_log_.allow())
        spdlog::warn("{}: accept failed: {}; retrying{}", server_.opts_.name, ec.message(),
                     suppressed_note(*n));
      return accept_later();
    }
    accept();
  }

  // Tells a connection it is not served (canned 503) and counts it; `why()` makes
  // the log line's reason, only when a line is logged.
  template <class Why>
  void refuse(int fd, Why&& why) {
    if (server_.refused_) server_.refused_->Increment();  // first: counted before seen
    send_busy_and_close(fd);
    if (auto n = refuse_log_.allow())
      spdlog::warn("{}: refusing new connections: {}{}", server_.opts_.name, why(),
                   suppressed_note(*n));
  }

  void accept_later() {
    retry_.expires_after(std::chrono::milliseconds(100));
    retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec && self->acceptor_.is_open()) self->accept();
    });
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  HttpServer& server_;
  int reserve_fd_;  // an fd held back for shedding a connection when none is free
  LogLimit refuse_log_;
  LogLimit accept_log_;
};

// ---- HttpServer ----

namespace {

Result<tcp::endpoint> resolve_listen(const std::string& listen) {
  auto bad = [&](std::string why) {
    return Error{Errc::invalid_argument, "http.listen '" + listen + "': " + why};
  };
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return bad("expected host:port");
  std::string host = listen.substr(0, colon);
  std::string_view port_text = std::string_view(listen).substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  auto [end, ec] = std::from_chars(port_text.begin(), port_text.end(), port);
  if (port_text.empty() || ec != std::errc() || end != port_text.end() || port > 65535)
    return bad("port must be a number from 0 to 65535");
  if (host.empty()) host = "0.0.0.0";
  boost::system::error_code aec;
  auto addr = net::ip::make_address(host, aec);
  if (!aec) return tcp::endpoint(addr, static_cast<uint16_t>(port));
  net::io_context ioc;  // start-up only: a name such as "localhost"
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(host, std::string(port_text), aec);
  if (aec || results.empty()) return bad("cannot resolve host: " + aec.message());
  return results.begin()->endpoint();
}

bool matches(std::string_view pattern, std::string_view path) {
  if (!pattern.empty() && pattern.back() == '/')
    return path.size() >= pattern.size() && path.substr(0, pattern.size()) == pattern;
  return path == pattern;
}

}  // namespace

int default_io_threads() {
  const unsigned cpus = std::thread::hardware_concurrency();  // 0 when unknown
  return std::clamp(static_cast<int>(cpus / 2), 2, 4);
}

namespace {
int io_threads_of(const HttpConfig& cfg, const HttpServer::Options& opts) {
  if (cfg.io_threads > 0) return static_cast<int>(cfg.io_threads);
  return opts.io_threads > 0 ? opts.io_threads : default_io_threads();
}
}  // namespace

// One io thread: asio may then skip some locking and wake-ups (concurrency hint 1);
// other threads (Responders) still post safely.
HttpServer::HttpServer(const HttpConfig& cfg, Options opts)
    : cfg_(cfg),
      opts_(opts),
      io_threads_(io_threads_of(cfg, opts)),
      ioc_(io_threads_),
      hub_(std::make_shared<detail::Hub>()) {}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(Verb verb, std::string pattern, Handler handler, Auth auth) {
  routes_.push_back({verb, std::move(pattern), std::move(handler), auth});
}

const HttpServer::Route* HttpServer::find_route(Verb verb, std::string_view path,
                                                std::string* allow) const {
  const Route* best = nullptr;
  allow->clear();
  for (const auto& r : routes_) {
    if (!matches(r.pattern, path)) continue;
    if (r.verb == verb) {
      if (!best || r.pattern.size() > best->pattern.size()) best = &r;
    } else {
      if (!allow->empty()) *allow += ", ";
      *allow += std::string(bhttp::to_string(r.verb));
    }
  }
  return best;
}

Result<void> HttpServer::start() {
  if (started_) return Error{Errc::internal, "http: server started twice"};
  started_ = true;
  if (!cfg_.bearer_tokens_file.empty()) {
    SLUICE_TRY(tokens, load_bearer_tokens(cfg_.bearer_tokens_file,
                                          opts_.name + ".auth.bearer_tokens_file"));
    tokens_ = std::move(tokens);
  }
  const uint64_t fds = fd_soft_limit();
  max_connections_ = cfg_.max_connections ? cfg_.max_connections : default_max_connections(fds);
  if (max_connections_ > default_max_connections(fds))
    spdlog::warn("{}: max_connections {} leaves less than the reserve of {} of the {} file "
                 "descriptors for workers and brokers; when they run out, new connections "
                 "are refused (503)",
                 opts_.name, max_connections_, fd_reserve(fds), fds);
  if (opts_.metrics) {
    refused_ = &opts_.metrics->http_connections_refused.Add({{"listener", opts_.name}});
    open_ = &opts_.metrics->http_connections.Add({{"listener", opts_.name}});
    hub_->open_gauge = open_;
  }
  SLUICE_TRY(endpoint, resolve_listen(cfg_.listen));
  listener_ = std::make_shared<Listener>(ioc_, *this);
  SLUICE_TRY(port, listener_->open(endpoint));
  port_ = port;
  listener_->accept();
  work_.emplace(ioc_.get_executor());
  const int n = io_threads_;
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] { run_guarded(opts_.name + " io", [this] { ioc_.run(); }); });
  }
  spdlog::info("{}: listening on {} (port {}, {} io threads, at most {} connections{})",
               opts_.name, cfg_.listen, port_, n, max_connections_,
               tokens_.empty() ? "" : ", bearer auth");
  return ok();
}

void HttpServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  std::vector<std::shared_ptr<detail::Connection>> conns;
  {
    std::lock_guard lock(hub_->mu);
    hub_->open = false;
    for (auto& [raw, conn] : hub_->conns) conns.push_back(conn);
  }
  if (listener_) listener_->close();
  for (auto& c : conns) c->close();
  conns.clear();
  work_.reset();  // now the threads may run out of work
  for (auto& t : threads_) t.join();  // they return once every socket is closed
  threads_.clear();
  std::unordered_map<detail::Connection*, std::shared_ptr<detail::Connection>> left;
  std::lock_guard lock(hub_->mu);
  left.swap(hub_->conns);  // destroyed after the lock is released
}

}  // namespace sluice::http
