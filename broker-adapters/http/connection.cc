#include "broker-adapters/http/connection.h"

#include <spdlog/spdlog.h>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

namespace sluice::http::detail {

namespace net = boost::asio;
namespace beast = boost::beast;

namespace {
constexpr size_t kMaxDrainBytes = 4 << 20;                 // after an error response
constexpr std::chrono::milliseconds kMaxDrainTime{5000};  // idem
constexpr size_t kKeepOutBytes = 16 << 10;  // response buffer kept between requests
}  // namespace

Connection::Connection(net::ip::tcp::socket&& socket, const HttpServer& server,
                       std::shared_ptr<Hub> hub)
    : stream_(std::move(socket)),
      timer_(stream_.get_executor()),
      server_(server),
      hub_(std::move(hub)) {}

void Connection::start() {
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->read_header(); });
}

void Connection::close() {
  net::post(stream_.get_executor(), [self = shared_from_this()] { self->close_now(); });
}

void Connection::read_header() {
  parser_.emplace();
  parser_->body_limit(server_.cfg_.max_body);
  parser_->header_limit(server_.opts_.header_limit);
  expire_after(server_.cfg_.idle_timeout);
  bhttp::async_read_header(
      stream_, buffer_, *parser_,
      [self = shared_from_this()](error_code ec, size_t) { self->on_header(ec); });
}

// Why the request's framing is refused, if it is. Beast 1.74 treats a
// Transfer-Encoding whose last coding is not "chunked" (e.g. "gzip") as no body at
// all, so its body would be read as the next request (a desync); "gzip, chunked"
// would hand over still-encoded bytes. Only exactly one "chunked", without
// Content-Length, is accepted.
namespace {
std::optional<std::string> framing_error(const Request& req) {
  size_t n = 0;
  auto [first, last] = req.equal_range(bhttp::field::transfer_encoding);
  for (auto it = first; it != last; ++it) {
    if (++n > 1) return "Transfer-Encoding given more than once";
    std::string_view v = sv(it->value());
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    if (!iequals(v, "chunked"))
      return "Transfer-Encoding other than 'chunked' is not supported";
  }
  if (n > 0 && req.find(bhttp::field::content_length) != req.end())
    return "Transfer-Encoding and Content-Length together";
  return std::nullopt;
}
}  // namespace

void Connection::on_header(error_code ec) {
  if (ec) return on_read_error(ec);
  const auto& req = parser_->get();
  // Checked before any body byte is read: the connection closes after the 400, and
  // what the client sent after the header is drained, never parsed as a request.
  if (auto why = framing_error(req)) return reject(Status::bad_request, *why);
  if (!parser_->is_done() && iequals(sv(req[bhttp::field::expect]), "100-continue")) {
    continue_ = {Status::continue_, req.version()};
    bhttp::async_write(stream_, continue_, [self = shared_from_this()](error_code ec, size_t) {
      if (ec) return self->close_now();
      self->read_body();
    });
    return;
  }
  read_body();
}

void Connection::read_body() {
  if (parser_->is_done()) return on_body({});
  expire_after(server_.cfg_.idle_timeout);
  bhttp::async_read(stream_, buffer_, *parser_,
                    [self = shared_from_this()](error_code ec, size_t) { self->on_body(ec); });
}

void Connection::on_body(error_code ec) {
  if (ec) return on_read_error(ec);
  deadline_ = Clock::time_point::max();  // the handler's time is not idle time
  dispatch_request();
}

void Connection::on_read_error(error_code ec) {
  if (closed_) return;
  if (ec == bhttp::error::body_limit)
    return reject(Status::payload_too_large, "request body exceeds the limit of " +
                                                 std::to_string(server_.cfg_.max_body) + " bytes");
  if (ec == bhttp::error::header_limit)
    return reject(Status::request_header_fields_too_large,
                  "request headers exceed " + std::to_string(server_.opts_.header_limit) +
                      " bytes");
  bool http_syntax = ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category();
  if (http_syntax && ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message)
    return reject(Status::bad_request, "malformed HTTP request: " + ec.message());
  close_now();  // the client left, timed out or reset: nobody to answer
}

void Connection::dispatch_request() {
  Request req = parser_->release();
  parser_.reset();
  keep_alive_ = req.keep_alive();
  version_ = req.version();
  ++seq_;
  std::string allow;
  const std::string_view path = target_path(sv(req.target()));
  const auto* route = server_.find_route(req.method(), path, &allow);
  const bool auth = !server_.tokens_.empty() && (!route || route->auth == Auth::required);
  if (auth && !bearer_token_ok(sv(req[bhttp::field::authorization]), server_.tokens_)) {
    Response res = json_error(Status::unauthorized, "missing or invalid bearer token");
    res.set(bhttp::field::www_authenticate, "Bearer realm=\"sluice\"");
    return write(std::move(res));
  }
  if (!route && allow.empty())
    return write(json_error(Status::not_found, "no such path: " + std::string(path)));
  if (!route) {
    Response res = json_error(Status::method_not_allowed,
                              std::string(req.method_string()) + " is not allowed here");
    res.set(bhttp::field::allow, allow);
    return write(std::move(res));
  }
  awaiting_ = true;
  try {
    route->handler(std::move(req), Responder(weak_from_this(), hub_, seq_));
  } catch (const std::exception& ex) {
    // The Responder, if still owed, was destroyed on the way out and sends a 500.
    spdlog::error("http: handler for {} threw: {}", route->pattern, ex.what());
  }
}

void Connection::deliver(uint64_t seq, Response&& res) {
  if (closed_ || !awaiting_ || seq != seq_) return;
  awaiting_ = false;
  write(std::move(res));
}

void Connection::reject(Status status, std::string_view message) {
  keep_alive_ = false;
  version_ = 11;
  write(json_error(status, message));
}

// The response as it goes on the wire: status line, fields, blank line, body. What
// Beast's serializer writes for a string body after prepare_payload() (never
// chunked), in one buffer and one write.
namespace {
void serialize_response(const Response& res, std::string& out) {
  const std::string_view reason = sv(res.reason());
  size_t size = 32 + reason.size() + res.body().size();
  for (const auto& f : res) size += f.name_string().size() + f.value().size() + 4;
  out.clear();
  out.reserve(size);
  out += res.version() == 10 ? "HTTP/1.0 " : "HTTP/1.1 ";
  out += std::to_string(res.result_int());
  out += ' ';
  out += reason;
  out += "\r\n";
  for (const auto& f : res) {
    out += sv(f.name_string());
    out += ": ";
    out += sv(f.value());
    out += "\r\n";
  }
  out += "\r\n";
  out += res.body();
}
}  // namespace

void Connection::write(Response&& res) {
  res.version(version_);
  bool keep = keep_alive_ && res.keep_alive();
  res.keep_alive(keep);
  res.prepare_payload();
  serialize_response(res, out_);
  expire_after(server_.cfg_.idle_timeout);
  net::async_write(stream_, net::buffer(out_),
                   [self = shared_from_this(), keep](error_code ec, size_t) {
                     self->on_write(ec, keep);
                   });
}

void Connection::on_write(error_code ec, bool keep_alive) {
  // Kept for the next response of this connection, unless a large one grew it.
  if (out_.capacity() > kKeepOutBytes) std::string().swap(out_);
  if (ec) return close_now();
  if (!keep_alive) return linger();
  read_header();
}

// Graceful close: stop sending, then read (and drop) until the client closes, a byte
// or time bound is hit, or stop() closes us.
void Connection::linger() {
  if (closed_) return;
  error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
  expire_after(std::min<std::chrono::milliseconds>(server_.cfg_.idle_timeout, kMaxDrainTime));
  stream_.async_read_some(net::buffer(drain_buf_),
                          [self = shared_from_this()](error_code ec, size_t n) {
                            self->on_linger(ec, n);
                          });
}

void Connection::on_linger(error_code ec, size_t n) {
  drained_ += n;
  if (ec || closed_ || drained_ > kMaxDrainBytes) return close_now();
  stream_.async_read_some(net::buffer(drain_buf_),
                          [self = shared_from_this()](error_code ec, size_t n) {
                            self->on_linger(ec, n);
                          });
}

// The deadline only moves per request; the timer is re-armed when it fires early or
// when the deadline comes closer, so most requests cost no timer operation at all
// (a tcp_stream expiry starts and cancels a timer wait per read and per write).
void Connection::expire_after(std::chrono::milliseconds d) {
  deadline_ = Clock::now() + d;
  if (closed_ || (timer_armed_ && timer_.expiry() <= deadline_)) return;
  arm_timer();
}

void Connection::arm_timer() {
  timer_armed_ = true;
  timer_.expires_at(deadline_);  // a wait still pending completes as aborted
  timer_.async_wait([self = shared_from_this()](error_code ec) { self->on_timer(ec); });
}

void Connection::on_timer(error_code ec) {
  if (ec || closed_) return;  // aborted: re-armed or closed meanwhile
  timer_armed_ = false;
  if (deadline_ == Clock::time_point::max()) return;  // no deadline now (a handler runs)
  if (Clock::now() < deadline_) return arm_timer();
  close_now();  // timed out: whatever read or write is pending ends as aborted
}

void Connection::close_now() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  error_code ignored;
  stream_.socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
  stream_.close();
  std::shared_ptr<Connection> last;  // released after the lock: never destroyed under it
  std::lock_guard lock(hub_->mu);
  if (auto it = hub_->conns.find(this); it != hub_->conns.end()) {
    last = std::move(it->second);
    hub_->conns.erase(it);
    if (hub_->open_gauge) hub_->open_gauge->Set(static_cast<double>(hub_->conns.size()));
  }
}

}  // namespace sluice::http::detail
