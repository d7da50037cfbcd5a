#include "cmd/http_get.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace sluice::cli {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

Result<HttpReply> http_get(const std::string& listen, const std::string& path,
                           const std::string& token) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Error{Errc::invalid_argument, "bad listen " + listen};
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(std::chrono::seconds(3));
    stream.connect(resolver.resolve(host, port));
    http::request<http::empty_body> req{http::verb::get, path, 11};
    req.set(http::field::host, host);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    return HttpReply{static_cast<int>(res.result_int()), std::move(res.body())};
  } catch (const std::exception& e) {
    return Error{Errc::unavailable, "engine not reachable on " + listen + ": " + e.what(), true};
  }
}

}  // namespace sluice::cli
