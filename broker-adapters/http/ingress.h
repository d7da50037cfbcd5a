// HttpIngress: the sluice HTTP API (PRODUCT.md section 5) on an HttpServer.
//
//   POST /topics/{topic}[?broker=NAME]   publish one event; 202 once it is durable;
//                                         403 for a reserved topic (reserve_topics)
//   GET  /healthz                         200 {"status":"ok"}            (no auth)
//   GET  /readyz                          200, or 503 while not ready    (no auth)
//   GET  /metrics                         Prometheus text from metrics_text()
// Later code adds its routes (/function/{name}, ...) through server() before start().
//
// Threads: handlers run on the HTTP connection strands; a publish is answered from
// the Sink's completion (an adapter thread) through the Responder. The ingress
// itself holds no mutable state after construction; the sinks, `ready` and
// `metrics_text` must be callable from any io thread and outlive the ingress.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>

#include "broker-adapters/http/http_server.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/result.h"

namespace sluice::http {

class HttpIngress {
 public:
  HttpIngress(const HttpConfig& cfg, std::map<std::string, Sink*> sinks,
              std::string default_broker, std::function<bool()> ready,
              std::function<std::string()> metrics_text,
              HttpServer::Options opts = HttpServer::Options{});
  HttpIngress(const HttpIngress&) = delete;
  HttpIngress& operator=(const HttpIngress&) = delete;

  // Set-up, before start(): topic names POST /topics refuses with 403 on every broker
  // (the engine passes each function's retry and dead-letter topic: only sluice
  // writes there).
  void reserve_topics(std::set<std::string> topics) { reserved_ = std::move(topics); }

  // Errors: the default broker is not among the sinks, or HttpServer::start failed.
  Result<void> start();
  void stop();
  uint16_t port() const { return server_.port(); }
  HttpServer& server() { return server_; }

 private:
  void publish(Request&& req, Responder res);

  std::map<std::string, Sink*> sinks_;
  std::set<std::string> reserved_;
  std::string default_broker_;
  std::function<bool()> ready_;
  std::function<std::string()> metrics_text_;
  HttpServer server_;  // last: stopped (threads joined) before the members above go
};

// [A-Za-z0-9._-]{1,249} and a topic name by core/topic.h (so not "." or "..").
bool is_valid_topic_name(std::string_view topic);

// The event of a request: CloudEvents structured or binary mode, or a plain body
// (sluice fills in id, source, type, time). On failure `*status` says 415 (content
// type not accepted) or 400, and the error message says why.
Result<Event> event_of_request(Request& req, Status* status);

}  // namespace sluice::http
