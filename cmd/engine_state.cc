#include "cmd/engine_state.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cmd/remembered_topics.h"


namespace sluice::cmd {

namespace fs = std::filesystem;

namespace {

std::string g_engine_url;

// "host:port" with the port replaced.
std::string with_port(const std::string& listen, uint16_t port) {
  const auto colon = listen.rfind(':');
  return (colon == std::string::npos ? listen : listen.substr(0, colon)) + ":" +
         std::to_string(port);
}

bool port_is_zero(const std::string& listen) {
  const auto colon = listen.rfind(':');
  return colon != std::string::npos && listen.substr(colon + 1) == "0";
}

}  // namespace

std::string engine_state_file(const Config& cfg) { return state_file(cfg, "engine.json"); }

Result<void> write_engine_state(const Config& cfg, uint16_t http_port, uint16_t metrics_port) {
  nlohmann::json j = {{"pid", static_cast<int64_t>(::getpid())}};
  if (cfg.http.enabled) j["http"] = with_port(cfg.http.listen, http_port);
  if (cfg.metrics.enabled) j["metrics"] = with_port(cfg.metrics.listen, metrics_port);
  const std::string path = engine_state_file(cfg);
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  fs::create_directories(fs::path(path).parent_path(), ec);
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << j.dump() << "\n";
    if (!out) return Error{Errc::io, "cannot write the engine state file " + tmp};
  }
  fs::rename(tmp, path, ec);
  if (ec) return Error{Errc::io, "cannot write the engine state file " + path + ": " + ec.message()};
  return ok();
}

void remove_engine_state(const Config& cfg) {
  std::error_code ec;
  fs::remove(engine_state_file(cfg), ec);
}

void set_engine_url(const std::string& url) { g_engine_url = url; }

Result<std::string> engine_address(const Config& cfg) {
  if (!g_engine_url.empty()) {
    std::string a = g_engine_url;
    if (a.rfind("http://", 0) == 0) a = a.substr(7);
    if (const auto slash = a.find('/'); slash != std::string::npos) a.resize(slash);
    if (a.rfind(':') == std::string::npos || a.starts_with("https://"))
      return Error{Errc::invalid_argument,
                   "--engine '" + g_engine_url + "': expected http://HOST:PORT or HOST:PORT"};
    return a;
  }
  if (!cfg.http.enabled)
    return Error{Errc::invalid_argument,
                 "the config has no `http:` section, so the engine serves no API to ask; add "
                 "`http: { listen: 127.0.0.1:8080 }` or pass --engine URL"};
  if (!port_is_zero(cfg.http.listen)) return cfg.http.listen;
  const std::string path = engine_state_file(cfg);
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in, nullptr, false);
  const bool alive = j.is_object() && j.value("pid", int64_t{0}) > 0 &&
                     (::kill(static_cast<pid_t>(j.value("pid", int64_t{0})), 0) == 0 || errno == EPERM);
  if (!alive || !j.contains("http") || !j["http"].is_string())
    return Error{Errc::unavailable,
                 "http.listen has port 0 and no running engine wrote " + path +
                     " (is `sluice run` up?); pass --engine URL",
                 true};
  return j["http"].get<std::string>();
}

}  // namespace sluice::cmd
