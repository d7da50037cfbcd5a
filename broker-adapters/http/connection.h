// One accepted HTTP/1.1 connection of an HttpServer (internal to the server).
//
// Ownership: shared — by the server's Hub while the connection is open (so that a
// request waiting for its Responder stays alive without any pending I/O), and by
// every pending async operation and posted response. Responders hold only a weak
// reference. Everything below runs on the connection's strand (the executor of
// `stream_`), including the route handlers.
//
// One request at a time: read header (answer "100 Continue" when asked), read body,
// hand the request to its handler, wait for the Responder, write, then read the
// next request (keep-alive) or close. After an error response the connection
// shuts down its sending side and drains what the client still sends for a short
// while before closing, so the client reads the response instead of a reset.
#pragma once

#include <array>
#include <chrono>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>

#include "broker-adapters/http/http_server.h"

namespace sluice::http::detail {

// The server state that Connections and Responders share; it may outlive the server.
// `mu` guards both fields: `open` turns false once in stop(), after which nothing is
// posted to the io_context any more; `conns` holds every open connection.
struct Hub {
  std::mutex mu;
  bool open = true;
  std::unordered_map<Connection*, std::shared_ptr<Connection>> conns;
  prometheus::Gauge* open_gauge = nullptr;  // conns.size(), when metrics are kept
};

class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(boost::asio::ip::tcp::socket&& socket, const HttpServer& server,
             std::shared_ptr<Hub> hub);

  boost::beast::tcp_stream::executor_type get_executor() { return stream_.get_executor(); }
  void start();                                 // any thread: begins reading
  void close();                                 // any thread: closes (server stop)
  void deliver(uint64_t seq, Response&& res);   // strand: the Responder's answer

 private:
  using error_code = boost::beast::error_code;

  void read_header();
  void on_header(error_code ec);
  void read_body();
  void on_body(error_code ec);
  void on_read_error(error_code ec);
  void dispatch_request();
  void reject(Status status, std::string_view message);
  void write(Response&& res);
  void on_write(error_code ec, bool keep_alive);
  void linger();
  void on_linger(error_code ec, size_t n);
  void close_now();
  // Idle and slow-client timeouts: the connection closes when `deadline_` passes
  // during a read, a write or the linger (never while a handler runs).
  void expire_after(std::chrono::milliseconds d);
  void arm_timer();
  void on_timer(error_code ec);

  using Clock = std::chrono::steady_clock;
  boost::beast::tcp_stream stream_;  // without expiry: timer_ enforces the deadlines
  boost::asio::steady_timer timer_;
  Clock::time_point deadline_ = Clock::time_point::max();
  bool timer_armed_ = false;  // a wait on timer_ is pending (not counting aborted ones)
  boost::beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  bhttp::response<bhttp::empty_body> continue_;
  std::string out_;  // the response being written, serialized
  const HttpServer& server_;  // outlives every strand handler (stop() joins the threads)
  std::shared_ptr<Hub> hub_;
  uint64_t seq_ = 0;        // number of the current request
  bool awaiting_ = false;   // a Responder for request seq_ is out
  bool keep_alive_ = true;  // of the current request
  unsigned version_ = 11;
  bool closed_ = false;
  size_t drained_ = 0;
  std::array<char, 4096> drain_buf_{};
};

}  // namespace sluice::http::detail
