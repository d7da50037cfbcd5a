#include "broker-adapters/http/http_server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <charconv>

#include "broker-adapters/http/connection.h"

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

class HttpServer::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, HttpServer& server)
      : ioc_(ioc), acceptor_(net::make_strand(ioc)), retry_(acceptor_.get_executor()),
        server_(server) {}

  Result<uint16_t> open(const tcp::endpoint& ep) {
    boost::system::error_code ec;
    acceptor_.open(ep.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(ep, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec) return Error{Errc::io, "http: cannot listen on " + server_.cfg_.listen + ": " + ec.message()};
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
    if (ec) {
      // Out of file descriptors and the like: log, wait a little, try again.
      spdlog::warn("http: accept failed: {}", ec.message());
      retry_.expires_after(std::chrono::milliseconds(100));
      retry_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
        if (!ec && self->acceptor_.is_open()) self->accept();
      });
      return;
    }
    auto conn = std::make_shared<detail::Connection>(std::move(socket), server_, server_.hub_);
    {
      std::lock_guard lock(server_.hub_->mu);
      if (!server_.hub_->open) return;  // stopping: the socket closes with `conn`
      server_.hub_->conns.emplace(conn.get(), conn);
    }
    conn->start();
    accept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  net::steady_timer retry_;
  HttpServer& server_;
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

HttpServer::HttpServer(const HttpConfig& cfg, Options opts)
    : cfg_(cfg), opts_(opts), hub_(std::make_shared<detail::Hub>()) {}

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
    SLUICE_TRY(tokens, load_bearer_tokens(cfg_.bearer_tokens_file));  // declares `tokens`
    tokens_ = std::move(tokens);
  }
  SLUICE_TRY(endpoint, resolve_listen(cfg_.listen));
  listener_ = std::make_shared<Listener>(ioc_, *this);
  SLUICE_TRY(port, listener_->open(endpoint));
  port_ = port;
  listener_->accept();
  work_.emplace(ioc_.get_executor());
  int n = std::max(1, opts_.io_threads);
  for (int i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      for (;;) {
        try {
          ioc_.run();
          return;
        } catch (const std::exception& ex) {
          spdlog::error("http: io thread caught: {}", ex.what());
        }
      }
    });
  }
  spdlog::info("http: listening on {} (port {}, {} io threads{})", cfg_.listen, port_, n,
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
