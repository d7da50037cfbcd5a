// HttpReceiver: a small HTTP server on 127.0.0.1 standing in for a callback receiver
// (the callback sender's unit tests and the e2e tests). It can answer (with a status
// the test sets), hang (accept and never read nor answer), or trickle (read the
// request, then send its answer one byte every 100 ms, never finishing). It records
// each request and counts connections.
//
// Header-only (needs Boost.Beast); threads: one io thread of its own; every method may
// be called from any thread.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sluice::testsupport {

class HttpReceiver {
 public:
  enum class Mode { answer, hang, trickle };
  using Request = boost::beast::http::request<boost::beast::http::string_body>;

  // port 0: any free port (see port()); otherwise that port, reused at once.
  explicit HttpReceiver(Mode mode = Mode::answer, uint16_t port = 0)
      : mode_(mode), acceptor_(io_) {
    namespace ip = boost::asio::ip;
    const ip::tcp::endpoint at(ip::make_address("127.0.0.1"), port);
    acceptor_.open(at.protocol());
    acceptor_.set_option(boost::asio::socket_base::reuse_address(true));
    acceptor_.bind(at);
    acceptor_.listen();
    port_ = acceptor_.local_endpoint().port();
    accept();
    thread_ = std::thread([this] { io_.run(); });
  }
  ~HttpReceiver() {
    boost::asio::post(io_, [this] {
      boost::system::error_code ec;
      acceptor_.close(ec);
      for (auto& c : conns_) c->socket.close(ec);
      conns_.clear();
      io_.stop();
    });
    thread_.join();
  }
  HttpReceiver(const HttpReceiver&) = delete;
  HttpReceiver& operator=(const HttpReceiver&) = delete;

  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  void set_status(int status) { status_ = status; }
  size_t connections() const { return connections_.load(); }
  std::vector<Request> got() const {
    std::lock_guard lk(mu_);
    return got_;
  }

 private:
  struct Conn {
    explicit Conn(boost::asio::io_context& io) : socket(io), timer(io) {}
    boost::asio::ip::tcp::socket socket;
    boost::asio::steady_timer timer;
    boost::beast::flat_buffer buf;
    Request req;
    std::string out;
    size_t sent = 0;
  };

  void accept() {
    auto c = std::make_shared<Conn>(io_);
    acceptor_.async_accept(c->socket, [this, c](const boost::system::error_code& ec) {
      if (ec) return;
      ++connections_;
      conns_.push_back(c);
      if (mode_ != Mode::hang) read(c);
      accept();
    });
  }
  void read(const std::shared_ptr<Conn>& c) {
    namespace bhttp = boost::beast::http;
    bhttp::async_read(c->socket, c->buf, c->req, [this, c](const boost::system::error_code& ec, size_t) {
      if (ec) return;
      {
        std::lock_guard lk(mu_);
        got_.push_back(c->req);
      }
      bhttp::response<bhttp::string_body> res{static_cast<bhttp::status>(status_.load()), 11};
      if (status_ != 204 && status_ != 304) res.body() = "thanks";
      res.prepare_payload();
      res.keep_alive(false);
      if (mode_ == Mode::trickle) return trickle(c);
      std::ostringstream os;
      os << res;
      c->out = os.str();
      boost::asio::async_write(c->socket, boost::asio::buffer(c->out),
                               [c](const boost::system::error_code&, size_t) {
                                 boost::system::error_code ignored;
                                 c->socket.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
                               });
    });
  }
  // The answer's status line, then one byte of a header field every 100 ms: the
  // header never ends.
  void trickle(const std::shared_ptr<Conn>& c) {
    c->out = c->sent++ == 0 ? "HTTP/1.1 200 OK\r\nX-Slow: " : "a";
    boost::asio::async_write(c->socket, boost::asio::buffer(c->out),
                             [this, c](const boost::system::error_code& ec, size_t) {
                               if (ec) return;
                               c->timer.expires_after(std::chrono::milliseconds(100));
                               c->timer.async_wait([this, c](const boost::system::error_code& ec) {
                                 if (!ec) trickle(c);
                               });
                             });
  }

  const Mode mode_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::atomic<int> status_{200};
  std::atomic<size_t> connections_{0};
  mutable std::mutex mu_;
  std::vector<Request> got_;
  std::vector<std::shared_ptr<Conn>> conns_;  // io thread
  std::thread thread_;
};

}  // namespace sluice::testsupport
