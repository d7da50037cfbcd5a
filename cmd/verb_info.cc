// `sluice functions` and `sluice lag`.
#include <fmt/core.h>

#include <fstream>
#include <map>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>
#include <unistd.h>

#include "api/system.h"
#include "broker-adapters/registry.h"
#include "cmd/cli.h"
#include "cmd/engine_state.h"
#include "cmd/http_get.h"
#include "cmd/remembered_topics.h"
#include "config/values.h"

namespace sluice::cmd {


// The FLOW column of `sluice functions`: "rate 5/s burst 10", "rate 2/s/key burst 2",
// "max/key 1", "max_age 15m" (",drop" with on_expired: drop), joined by spaces; "-" for none.
std::string flow_control(const FunctionConfig& f) {
  std::vector<std::string> parts;
  if (f.rate_limit)
    parts.push_back(fmt::format("rate {}/s{} burst {}", f.rate_limit->per_second,
                                f.rate_limit->by_key ? "/key" : "", f.rate_limit->burst));
  if (f.max_per_key > 0) parts.push_back(fmt::format("max/key {}", f.max_per_key));
  if (f.max_age.count() > 0)
    parts.push_back("max_age " + config::format_duration(f.max_age) +
                    (f.on_expired == OnExpired::drop ? ",drop" : ""));
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : " ") + p;
  return out.empty() ? "-" : out;
}

int functions(const std::string& path, bool json) {
  Config cfg = load_or_exit(path);
  nlohmann::json live;
  std::string unreachable;
  if (auto at = engine_address(cfg); !at) {
    unreachable = at.error().message;
  } else if (auto r = http_get(at.value(), "/system/functions",
                               first_token(cfg.http.bearer_tokens_file));
             !r) {
    unreachable = r.error().message;
  } else if (r.value().status != 200) {
    unreachable = "GET /system/functions answered HTTP " + std::to_string(r.value().status);
  } else {
    live = nlohmann::json::parse(r.value().body, nullptr, false);
  }
  if (json) {
    // The engine's own view when it answers, else the config's (without live fields).
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : cfg.functions) {
      nlohmann::json entry;
      if (live.is_array())
        for (const auto& j : live)
          if (j.value("name", "") == f.name) entry = j;
      if (entry.is_null()) entry = api::function_config_json(f);
      out.push_back(std::move(entry));
    }
    std::cout << out.dump(2) << "\n";
    if (!live.is_array()) std::cerr << "engine not reachable (" << unreachable << "): live fields left out\n";
    return kOk;
  }
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : cfg.functions) {
    std::string subs;
    for (const auto& s : f.subscribe)
      subs += (subs.empty() ? "" : ",") + s.broker + "/" + s.topic + "(" + to_string(s.ordering) +
              (s.filter ? std::string(",filter:") + filter::to_string(s.filter.dialect()) : "") + ")";
    std::string workers = "-", inflight = "-", state = "-";
    if (live.is_array()) {
      for (const auto& j : live) {
        if (j.value("name", "") != f.name) continue;
        workers = fmt::format("{}/{}", j.value("workers", 0), j.value("workers_desired", 0));
        inflight = std::to_string(j.value("inflight", 0));
        state = j.value("paused", false) ? "paused" : "running";
      }
    }
    rows.push_back({f.name, to_string(f.runtime), subs.empty() ? "-" : subs, flow_control(f), workers,
                    inflight, state});
  }
  print_table({"FUNCTION", "RUNTIME", "SUBSCRIPTIONS", "FLOW", "WORKERS(now/desired)", "INFLIGHT",
               "STATE"},
              rows);
  if (!live.is_array())
    std::cerr << "engine not reachable (" << unreachable << "): live columns shown as -\n";
  return kOk;
}

namespace {
// `sluice lag` rows of a topic that holds events and has no subscriber: this GROUP.
constexpr const char* kNoSubscriber = "(no subscriber)";
// At most this many such topics per broker, and this long to count them.
constexpr size_t kMaxUnreadTopics = 1000;
constexpr std::chrono::seconds kCountBudget{5}, kListBudget{10};

// The topics of `bc` that may hold events nothing reads, counted: every topic where
// the broker lists them cheaply (the local queue) or with --all; else those sluice
// knows of — outputs and the names published there without a subscriber
// (RememberedTopics). `subs` are the broker's subscriptions.
Result<Holdings> unread_topics(const Config& cfg, const BrokerConfig& bc, TopicBrowser& br,
                               const topology::KnownTopics& subs, bool all) {
  if (all || brokers::broker_capabilities(bc).lists_topics_cheaply)
    return br.all_holdings(kMaxUnreadTopics, kListBudget);
  std::set<std::string> names = topology::known_topics(cfg, bc.name).topics;
  for (std::string& t : RememberedTopics(cfg).topics_of(bc.name)) names.insert(std::move(t));
  const std::set<std::string> internal = topology::internal_topics(cfg);  // `sluice dlq` shows those
  std::vector<std::string> candidates;
  for (const std::string& t : names)
    if (!subs.knows(t) && !internal.count(t) &&
        !(subs.wildcards && t.find_first_of("*>") != std::string::npos))
      candidates.push_back(t);
  if (candidates.empty()) return Holdings{};
  return br.holdings(candidates, kCountBudget);
}
}  // namespace

int lag(const std::string& path, bool watch, bool json, bool all) {
  Config cfg = load_or_exit(path);
  // The subscriptions' sources as `run` opens them (one per broker, topic and group).
  const topology::Plan plan = plan_or_exit(cfg, path);
  // Every broker: its subscriptions' lag, and the topics that hold events nothing reads
  // (most often a mistyped publish). One that cannot be opened is a note, not a failure.
  std::map<std::string, std::unique_ptr<Broker>> brokers;
  std::map<std::string, std::string> unopened;
  for (const BrokerConfig& b : cfg.brokers) {
    auto br = brokers::make_broker(b);
    if (br) brokers.emplace(b.name, std::move(br).value());
    else unopened.emplace(b.name, br.error().message);
  }
  auto browser = [&](const std::string& name) -> TopicBrowser* {
    return brokers.count(name) ? brokers.at(name)->browser() : nullptr;
  };
  const std::set<std::string> internal = topology::internal_topics(cfg);
  do {
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;
    for (const auto& [name, why] : unopened) notes.push_back("broker " + name + " not opened: " + why);
    for (const auto& s : plan.sources) {
      if (s.role != RouteRole::subscription) continue;
      TopicBrowser* br = browser(s.broker);
      auto lag = br ? br->lag(s.topic, s.group)
                    : Result<std::vector<PartitionLag>>(Error{
                          Errc::invalid_argument, unopened.count(s.broker) ? "broker not opened"
                                                                           : "broker has no lag view"});
      if (!lag) {
        rows.push_back({s.broker, s.topic, "-", s.group, "?", "?", "unknown", "unknown"});
        notes.push_back("lag of " + s.broker + "/" + s.topic + " unknown: " + lag.error().message);
        continue;
      }
      for (const auto& p : lag.value())
        rows.push_back({s.broker, s.topic, std::to_string(p.partition), s.group,
                        p.committed < 0 ? "-" : std::to_string(p.committed),
                        std::to_string(p.end), std::to_string(p.lag),
                        p.lag_seconds ? fmt::format("{:.1f}", *p.lag_seconds) : "-"});
    }
    for (const BrokerConfig& bc : cfg.brokers) {
      TopicBrowser* br = browser(bc.name);
      if (!br) continue;  // keeps no events (core NATS) or not opened (noted above)
      const topology::KnownTopics subs = topology::subscribed_topics(cfg, bc.name);
      auto held = unread_topics(cfg, bc, *br, subs, all);
      if (!held) {
        notes.push_back("topics of broker " + bc.name + " not counted: " + held.error().message);
        continue;
      }
      if (!held.value().incomplete.empty())
        notes.push_back("broker " + bc.name + ": not every topic was counted (" +
                        held.value().incomplete + ")");
      for (const TopicHolding& t : held.value().topics) {
        if (internal.count(t.topic) || subs.knows(t.topic)) continue;
        rows.push_back({bc.name, t.topic, "-", kNoSubscriber, "-", "-", std::to_string(t.events), "-"});
      }
    }
    static const std::vector<std::string> kHeaders = {"BROKER", "TOPIC", "PARTITION", "GROUP",
                                                      "COMMITTED", "END", "LAG", "LAG_SECONDS"};
    if (json) {
      // One array per refresh (one line each with --watch: JSON Lines).
      nlohmann::json out = nlohmann::json::array();
      for (const auto& r : rows) {
        nlohmann::json o;
        for (size_t i = 0; i < kHeaders.size(); ++i) {
          std::string k = kHeaders[i];
          for (auto& c : k) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
          const std::string& v = r[i];
          const bool number = !v.empty() && v.find_first_not_of("0123456789.-") == std::string::npos && v != "-";
          if (number && i != 1 && i != 3) o[k] = nlohmann::json::parse(v, nullptr, false);
          else if (v == "-" || v == "?" || v == "unknown") o[k] = nullptr;
          else o[k] = v;
        }
        out.push_back(std::move(o));
      }
      std::cout << (watch ? out.dump() : out.dump(2)) << "\n";
    } else {
      if (watch && isatty(STDOUT_FILENO)) std::cout << "\x1b[H\x1b[2J";
      print_table(kHeaders, rows);
    }
    for (const std::string& n : notes) std::cerr << "note: " << n << "\n";
    std::cout.flush();  // each refresh reaches a pipe at once (`lag --watch | head`)
    if (!std::cout) break;  // the reader went away (EPIPE: SIGPIPE is ignored)
    if (watch) std::this_thread::sleep_for(std::chrono::seconds(2));
  } while (watch);
  for (auto& [n, b] : brokers) b->stop();
  return kOk;
}

}  // namespace sluice::cmd
