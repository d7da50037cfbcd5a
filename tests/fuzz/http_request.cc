// HTTP ingress without a server: raw bytes of one connection go through Beast's
// request parser with the limits the server sets, and each complete request through
// what `POST /topics/{topic}` does with it before publishing (target, topic name,
// `?broker=`, event_of_request: CloudEvents structured, binary or plain mode);
// no credential or connection header is ever kept in the event.
#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>

#include "api/request_event.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;
using namespace sluice::http;
using sluice::api::event_of_request;
using sluice::api::is_valid_topic_name;

namespace {

void publish_route(Request& req) {
  const std::string_view path = target_path(sv(req.target()));
  if (path.substr(0, 8) == "/topics/") {
    auto topic = url_decode(path.substr(8));
    if (topic) (void)is_valid_topic_name(topic.value());
  }
  (void)query_param(sv(req.target()), "broker");
  Status status = Status::ok;
  auto ev = event_of_request(req, &status);
  if (!ev) {
    SLUICE_FUZZ_CHECK(status == Status::bad_request || status == Status::unsupported_media_type);
    return;
  }
  // Credentials and connection headers never land in a topic.
  for (const Header& h : ev.value().headers)
    for (std::string_view dropped : {"authorization", "proxy-authorization", "cookie", "host",
                                     "content-length", "transfer-encoding", "connection"})
      SLUICE_FUZZ_CHECK(!iequals(h.name, dropped));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in = fuzz::as_text(data, size);
  // Requests one after the other on a keep-alive connection.
  while (!in.empty()) {
    bhttp::request_parser<bhttp::string_body> parser;
    parser.body_limit(uint64_t{1} << 20);  // http.max_body's default
    parser.header_limit(16 * 1024);        // HttpServer::Options::header_limit
    boost::system::error_code ec;
    while (!in.empty() && !parser.is_done()) {
      const size_t used = parser.put(boost::asio::buffer(in.data(), in.size()), ec);
      SLUICE_FUZZ_CHECK(used <= in.size());
      in.remove_prefix(used);
      if (ec == bhttp::error::need_more) {
        if (used == 0) break;  // the rest is an incomplete request: the peer went away
        ec = {};
        continue;
      }
      if (ec) return 0;  // the server answers 4xx and closes the connection
    }
    if (!parser.is_done()) {
      parser.put_eof(ec);
      if (ec || !parser.is_done()) return 0;
    }
    Request req = parser.release();
    publish_route(req);
  }
  return 0;
}
