// HttpApi: the sluice HTTP API (PRODUCT.md §5) on one HttpServer of the transport
// (broker-adapters/http), whose route table it fills:
//
//   POST /topics/{topic}[?broker=NAME]   publish one event (api/topics.h)
//   GET  /healthz, /readyz, /metrics     health and metrics (api/system.h)
//   POST /function/{name}, /async-function/{name}   when set (api/functions.h)
//   GET  /system/functions               when added (api/system.h) through server()
//
// Lifecycle: construct; set-up (reserve_topics, set_functions, routes on server());
// start() once; stop() once (the destructor stops).
//
// Threads: handlers run on the HTTP connection strands (see the route groups). The
// API holds no mutable state after start(); what it is given must be callable from
// any io thread and outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "api/functions.h"
#include "api/topics.h"
#include "broker-adapters/http/http_server.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/result.h"

namespace sluice::api {

class HttpApi {
 public:
  HttpApi(const HttpConfig& cfg, std::map<std::string, Sink*> sinks, std::string default_broker,
          std::function<bool()> ready, std::function<std::string()> metrics_text,
          http::HttpServer::Options opts = http::HttpServer::Options{});
  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Set-up, before start(): see TopicRoutes::reserve.
  void reserve_topics(std::set<std::string> topics) { topics_.reserve(std::move(topics)); }
  // Set-up, before start(): see TopicRoutes::refuse_unknown.
  void refuse_unknown_topics(TopicRoutes::UnknownTopic check) {
    topics_.refuse_unknown(std::move(check));
  }
  // Set-up, before start(): serves /function and /async-function with `fns`.
  void set_functions(std::unique_ptr<FunctionRoutes> fns);

  // Errors: the default broker is not among the sinks, or HttpServer::start failed.
  Result<void> start();
  void stop();
  uint16_t port() const { return server_.port(); }
  http::HttpServer& server() { return server_; }

 private:
  TopicRoutes topics_;
  std::unique_ptr<FunctionRoutes> functions_;
  http::HttpServer server_;  // last: stopped (threads joined) before the members above go
};

}  // namespace sluice::api
