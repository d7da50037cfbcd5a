#include "cmd/http_get.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <fstream>
#include <limits>

namespace sluice::cmd {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

namespace {

template <class Body>
Result<HttpReply> exchange(const std::string& listen, http::request<Body>& req,
                           const std::string& token, std::chrono::milliseconds timeout) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos) return Error{Errc::invalid_argument, "bad listen " + listen};
  std::string host = listen.substr(0, colon), port = listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  if (host == "0.0.0.0" || host.empty()) host = "127.0.0.1";
  try {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    stream.expires_after(timeout);
    stream.connect(resolver.resolve(host, port));
    req.set(http::field::host, host);
    if (!token.empty()) req.set(http::field::authorization, "Bearer " + token);
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    http::read(stream, buf, parser);
    auto res = parser.release();
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    HttpReply out{static_cast<int>(res.result_int()), std::move(res.body()),
                  std::string(res[http::field::content_type]), {}};
    for (const auto& f : res) {
      std::string name(f.name_string());
      for (auto& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.headers[name] = std::string(f.value());
    }
    return out;
  } catch (const std::exception& e) {
    return Error{Errc::unavailable, "engine not reachable on " + listen + ": " + e.what(), true};
  }
}

}  // namespace

Result<HttpReply> http_get(const std::string& listen, const std::string& path,
                           const std::string& token) {
  http::request<http::string_body> req{http::verb::get, path, 11};
  return exchange(listen, req, token, std::chrono::seconds(3));
}

Result<HttpReply> http_post(const std::string& listen, const std::string& path,
                            const std::string& token, const std::string& body,
                            const std::vector<std::pair<std::string, std::string>>& headers,
                            std::chrono::milliseconds timeout) {
  http::request<http::string_body> req{http::verb::post, path, 11};
  for (const auto& [k, v] : headers) req.set(k, v);
  req.body() = body;
  return exchange(listen, req, token, timeout);
}

std::string first_token(const std::string& file) {
  if (file.empty()) return {};
  std::ifstream in(file);
  std::string line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos || line[b] == '#') continue;
    auto e = line.find_last_not_of(" \t\r");
    return line.substr(b, e - b + 1);
  }
  return {};
}

}  // namespace sluice::cmd
