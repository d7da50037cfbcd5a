// POST /topics/{topic}[?broker=NAME]: publish one event into a broker (PRODUCT.md §5);
// 202 once it is durable; 403 for a reserved topic (reserve()).
//
// Threads: the handler runs on the HTTP connection strands; a publish is answered from
// the Sink's completion (an adapter thread) through the Responder. No mutable state
// after set-up; the sinks must be callable from any thread and outlive the routes.
#pragma once

#include <map>
#include <set>
#include <string>

#include "broker-adapters/http/http_server.h"
#include "core/broker.h"
#include "core/result.h"

namespace sluice::api {

class TopicRoutes {
 public:
  TopicRoutes(std::map<std::string, Sink*> sinks, std::string default_broker);
  TopicRoutes(const TopicRoutes&) = delete;
  TopicRoutes& operator=(const TopicRoutes&) = delete;

  // Set-up, before the routes serve: topic names POST /topics refuses with 403 on every
  // broker (the engine passes each function's retry and dead-letter topic: only sluice
  // writes there).
  void reserve(std::set<std::string> topics) { reserved_ = std::move(topics); }
  // Errors: the default broker is not among the sinks.
  Result<void> check() const;
  void add_to(http::HttpServer& server);

 private:
  void publish(http::Request&& req, http::Responder res);

  std::map<std::string, Sink*> sinks_;
  std::set<std::string> reserved_;
  std::string default_broker_;
};

}  // namespace sluice::api
