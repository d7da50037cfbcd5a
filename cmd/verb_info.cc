// `sluice functions` and `sluice lag`.
#include <fmt/core.h>

#include <fstream>
#include <map>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

#include "broker-adapters/registry.h"
#include "cmd/cli.h"
#include "cmd/http_get.h"

namespace sluice::cli {


int functions(const std::string& path) {
  Config cfg = load_or_exit(path);
  nlohmann::json live;
  if (cfg.http.enabled) {
    auto r = http_get(cfg.http.listen, "/system/functions", first_token(cfg.http.bearer_tokens_file));
    if (r && r.value().status == 200) live = nlohmann::json::parse(r.value().body, nullptr, false);
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : cfg.functions) {
    std::string subs;
    for (const auto& s : f.subscribe)
      subs += (subs.empty() ? "" : ",") + s.broker + "/" + s.topic + "(" + to_string(s.ordering) + ")";
    std::string workers = "-", inflight = "-";
    if (live.is_array()) {
      for (const auto& j : live) {
        if (j.value("name", "") != f.name) continue;
        workers = fmt::format("{}/{}", j.value("workers", 0), j.value("workers_desired", 0));
        inflight = std::to_string(j.value("inflight", 0));
      }
    }
    rows.push_back({f.name, to_string(f.runtime), subs.empty() ? "-" : subs, workers, inflight});
  }
  print_table({"FUNCTION", "RUNTIME", "SUBSCRIPTIONS", "WORKERS(now/desired)", "INFLIGHT"}, rows);
  if (!live.is_array())
    std::cout << "(engine not reachable over HTTP: live columns shown as -)\n";
  return kOk;
}

int lag(const std::string& path, bool watch) {
  Config cfg = load_or_exit(path);
  // The subscriptions' sources as `run` opens them (one per broker, topic and group).
  const topology::Plan plan = plan_or_exit(cfg, path);
  std::map<std::string, std::unique_ptr<Broker>> brokers;
  for (const auto& s : plan.sources)
    if (s.role == RouteRole::subscription && !brokers.count(s.broker)) {
      auto b = make_broker(*cfg.broker(s.broker));
      if (!b) throw Exit{kFailure, b.error().message};
      brokers.emplace(s.broker, std::move(b).value());
    }
  do {
    std::vector<std::vector<std::string>> rows;
    for (const auto& s : plan.sources) {
      if (s.role != RouteRole::subscription) continue;
      TopicBrowser* br = brokers.at(s.broker)->browser();
      auto lag = br ? br->lag(s.topic, s.group)
                    : Result<std::vector<PartitionLag>>(
                          Error{Errc::invalid_argument, "broker has no lag view"});
      if (!lag) {
        rows.push_back({s.broker, s.topic, "-", s.group, "?", "?", "unknown", "unknown"});
        std::cerr << "lag of " << s.broker << "/" << s.topic << " unknown: " << lag.error().message << "\n";
        continue;
      }
      for (const auto& p : lag.value())
        rows.push_back({s.broker, s.topic, std::to_string(p.partition), s.group,
                        p.committed < 0 ? "-" : std::to_string(p.committed),
                        std::to_string(p.end), std::to_string(p.lag),
                        p.lag_seconds ? fmt::format("{:.1f}", *p.lag_seconds) : "-"});
    }
    if (watch && isatty(STDOUT_FILENO)) std::cout << "\x1b[H\x1b[2J";
    print_table({"BROKER", "TOPIC", "PARTITION", "GROUP", "COMMITTED", "END", "LAG", "LAG_SECONDS"}, rows);
    if (watch) std::this_thread::sleep_for(std::chrono::seconds(2));
  } while (watch);
  for (auto& [n, b] : brokers) b->stop();
  return kOk;
}

}  // namespace sluice::cli
