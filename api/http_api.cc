#include "api/http_api.h"

#include "api/system.h"

namespace sluice::api {

HttpApi::HttpApi(const HttpConfig& cfg, std::map<std::string, Sink*> sinks,
                 std::string default_broker, std::function<bool()> ready,
                 std::function<std::string()> metrics_text, http::HttpServer::Options opts)
    : topics_(std::move(sinks), std::move(default_broker)), server_(cfg, opts) {
  topics_.add_to(server_);
  add_health_routes(server_, std::move(ready), std::move(metrics_text));
}

void HttpApi::set_functions(std::unique_ptr<FunctionRoutes> fns) {
  functions_ = std::move(fns);
  functions_->add_to(server_);
}

Result<void> HttpApi::start() {
  if (auto r = topics_.check(); !r) return r;
  return server_.start();
}

void HttpApi::stop() { server_.stop(); }

}  // namespace sluice::api
