// An upstream for the http runtime tests: serves HTTP/1.1 with keep-alive on
// 127.0.0.1:$PORT (one thread per connection).
//
//   http_test_server [mode]   mode: normal | never-ready | exit-at-start | no-listen
// GET /healthz: 200 (never-ready: 503). POST /: the body is a command:
//   echo:X        200, body X, Content-Type text/plain
//   status:N      N with body "status N"
//   busy:S        503 with Retry-After: S      busy-date   429 with an HTTP-date 120 s ahead
//   sleep:MS      200 "slept" after MS ms      crash       abort()
//   huge:N        200 with N bytes             garbage     raw non-HTTP bytes, then close
//   close         closes the connection without answering
//   pid           200 with its pid             env:NAME    getenv(NAME) or "<unset>"
//   header:NAME   the request header NAME or "<none>"
//   conn          how many connections this process accepted so far
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <ctime>
#include <string>
#include <thread>

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::atomic<int> accepted{0};
std::string mode;

bool starts(const std::string& s, const char* p, std::string* rest) {
  size_t n = std::strlen(p);
  if (s.compare(0, n, p) != 0) return false;
  *rest = s.substr(n);
  return true;
}

void serve(tcp::socket sock) {
  beast::flat_buffer buf;
  beast::error_code ec;
  while (true) {
    http::request<http::string_body> req;
    http::read(sock, buf, req, ec);
    if (ec) return;
    http::response<http::string_body> res{http::status::ok, req.version()};
    res.keep_alive(req.keep_alive());
    res.set(http::field::content_type, "text/plain");
    std::string cmd = req.body(), arg;
    if (req.method() == http::verb::get) {
      if (req.target() == "/healthz" && mode != "never-ready") {
        res.body() = "ok";
      } else {
        res.result(http::status::service_unavailable);
      }
    } else if (starts(cmd, "echo:", &arg)) {
      res.body() = arg;
    } else if (starts(cmd, "status:", &arg)) {
      res.result(static_cast<unsigned>(std::stoi(arg)));
      res.body() = "status " + arg;
    } else if (starts(cmd, "busy:", &arg)) {
      res.result(http::status::service_unavailable);
      res.set(http::field::retry_after, arg);
    } else if (cmd == "busy-date") {
      res.result(http::status::too_many_requests);
      std::time_t t = std::time(nullptr) + 120;
      char date[64];
      std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", std::gmtime(&t));
      res.set(http::field::retry_after, date);
    } else if (starts(cmd, "sleep:", &arg)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(std::stoi(arg)));
      res.body() = "slept";
    } else if (cmd == "crash") {
      std::abort();
    } else if (starts(cmd, "huge:", &arg)) {
      res.body() = std::string(std::stoul(arg), 'x');
    } else if (cmd == "garbage") {
      asio::write(sock, asio::buffer(std::string("\x01\x02 this is not HTTP\r\n\r\n")), ec);
      return;
    } else if (cmd == "close") {
      return;
    } else if (cmd == "pid") {
      res.body() = std::to_string(::getpid());
    } else if (starts(cmd, "env:", &arg)) {
      const char* v = std::getenv(arg.c_str());
      res.body() = v ? v : "<unset>";
    } else if (starts(cmd, "header:", &arg)) {
      auto it = req.find(arg);
      res.body() = it == req.end() ? "<none>" : std::string(it->value());
    } else if (cmd == "conn") {
      res.body() = std::to_string(accepted.load());
    } else {
      res.result(http::status::bad_request);
      res.body() = "unknown command";
    }
    res.prepare_payload();
    http::write(sock, res, ec);
    if (ec || !res.keep_alive()) return;
  }
}

}  // namespace

int main(int argc, char** argv) {
  mode = argc > 1 ? argv[1] : "normal";
  if (mode == "exit-at-start") return 9;
  if (mode == "no-listen") {
    ::pause();
    return 0;
  }
  const char* port = std::getenv("PORT");
  if (!port) return 2;
  asio::io_context io;
  tcp::acceptor acc(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"),
                                      static_cast<unsigned short>(std::atoi(port))));
  while (true) {
    tcp::socket s(io);
    acc.accept(s);
    ++accepted;
    std::thread(serve, std::move(s)).detach();
  }
}
