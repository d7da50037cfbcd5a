// POST /topics/{topic}[?broker=NAME]: publish one event into a broker (PRODUCT.md §5);
// 202 once it is durable; 403 for a reserved topic (reserve()); 404 for a topic the
// broker does not know (refuse_unknown()).
//
// Threads: the handler runs on the HTTP connection strands; a publish is answered from
// the Sink's completion (an adapter thread) through the Responder. No mutable state
// after set-up; the sinks must be callable from any thread and outlive the routes.
#pragma once

#include <functional>
#include <map>
#include <optional>
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
  // Set-up: returns why a publish of `topic` to `broker` is refused with 404, or nullopt
  // to accept it (the engine passes topology::known_topics of its local brokers).
  using UnknownTopic = std::function<std::optional<std::string>(const std::string& broker,
                                                                const std::string& topic)>;
  void refuse_unknown(UnknownTopic check) { unknown_ = std::move(check); }
  // Errors: the default broker is not among the sinks.
  Result<void> check() const;
  void add_to(http::HttpServer& server);

 private:
  void publish(http::Request&& req, http::Responder res);

  std::map<std::string, Sink*> sinks_;
  std::set<std::string> reserved_;
  UnknownTopic unknown_;
  std::string default_broker_;
};

}  // namespace sluice::api
