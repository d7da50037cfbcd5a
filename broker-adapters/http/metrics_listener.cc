#include "broker-adapters/http/metrics_listener.h"

namespace sluice::http {

namespace {

HttpConfig server_config(const MetricsConfig& cfg) {
  HttpConfig c;
  c.enabled = true;
  c.listen = cfg.listen;
  c.bearer_tokens_file = cfg.bearer_tokens_file;
  c.max_body = 4096;  // a scrape has no body
  c.max_connections = MetricsListener::kMaxConnections;
  return c;
}

HttpServer::Options server_options(metrics::Metrics& metrics) {
  HttpServer::Options o;
  o.io_threads = 1;
  o.name = "metrics";
  o.metrics = &metrics;
  return o;
}

}  // namespace

MetricsListener::MetricsListener(const MetricsConfig& cfg, metrics::Metrics& metrics)
    : metrics_(metrics), server_(server_config(cfg), server_options(metrics)) {
  server_.route(Verb::get, "/metrics", [this](Request&&, Responder res) {
    Response out{Status::ok, 11};
    out.set(bhttp::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    out.body() = metrics_.text();
    res(std::move(out));
  });
}

Result<void> MetricsListener::start() { return server_.start(); }

void MetricsListener::stop() { server_.stop(); }

}  // namespace sluice::http
