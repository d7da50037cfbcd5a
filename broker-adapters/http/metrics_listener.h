// MetricsListener: the `metrics.listen` port. Serves GET /metrics (Metrics::text(),
// Prometheus text format) and nothing else, on an HttpServer of its own, so it has
// the same bearer-token auth (`metrics.auth.bearer_tokens_file`), connection cap,
// idle timeout and framing checks as the HTTP API.
//
// Threads: start() and stop() from the engine's thread; requests are answered on
// the server's one io thread.
#pragma once

#include <cstdint>

#include "broker-adapters/http/http_server.h"
#include "config/config.h"
#include "core/result.h"
#include "metrics/metrics.h"

namespace sluice::http {

class MetricsListener {
 public:
  // Connections a metrics listener holds at once (a few scrapers, keep-alive).
  static constexpr uint32_t kMaxConnections = 64;

  MetricsListener(const MetricsConfig& cfg, metrics::Metrics& metrics);
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  // Errors: the port is taken or the address is bad ("metrics: cannot listen on
  // ADDRESS: ..."), the token file is missing or empty.
  Result<void> start();
  void stop();
  uint16_t port() const { return server_.port(); }

 private:
  metrics::Metrics& metrics_;
  HttpServer server_;  // last: stopped (threads joined) before `metrics_` could go
};

}  // namespace sluice::http
