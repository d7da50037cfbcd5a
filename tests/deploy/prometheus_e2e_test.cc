// End-to-end: a real Prometheus (Debian package `prometheus`) scrapes a running sluice
// under load, with deploy/prometheus/alerts.yml loaded, and every PromQL expression of
// deploy/grafana/dashboards/*.json and of the alert rules is run through its HTTP API
// (/api/v1/query).
//
// - Dashboard expressions (template variables set to "All") must return data.
// - Template variables (label_values(metric, label)) must list the real functions/topics.
// - Alert expressions must evaluate without error, every sluice_* selector in them must
//   match exported series, and every label they group by must exist on those series.
//   The dead-letter alert must fire (the test dead-letters events); the others need
//   minutes of history and are exercised by `promtool test rules` (alerts_test.yml).
// - Prometheus itself must report every rule as evaluated with health "ok".
// - Several pods: a second scrape job reads the same sluice, as a second pod exports
//   the same partitions' lag; every dashboard expression on the lag must give what it
//   gives over one job alone (one figure per partition, not one per pod). A third
//   target that does not answer must make the target-down alert's expression fire.
// - HTTP ingress counts in sluice_published_total; sluice_build_info and process_*
//   are exported.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "tests/e2e/harness.h"

extern char** environ;

namespace sluice::e2e {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string kSource = SLUICE_SOURCE_DIR;

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// A `prometheus` server on a loopback port, stopped (SIGTERM, then SIGKILL) on scope exit.
class Prometheus {
 public:
  Prometheus(const TempDir& dir, const std::string& config, uint16_t port) : port_(port) {
    std::vector<std::string> args{"prometheus",
                                  "--config.file=" + config,
                                  "--storage.tsdb.path=" + dir.file("prom-data"),
                                  "--web.listen-address=127.0.0.1:" + std::to_string(port),
                                  "--log.level=warn"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    log_ = dir.file("prometheus.log");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&pid_, "prometheus", &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
      throw std::runtime_error("cannot start `prometheus` (Debian package prometheus): " +
                               std::string(std::strerror(rc)));
  }
  ~Prometheus() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    bool gone = eventually([&] { return ::waitpid(pid_, nullptr, WNOHANG) == pid_; }, 20s);
    if (!gone) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  bool running() { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
  std::string log() const {
    std::ifstream in(log_);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // GET on the API; a JSON document, or null when unreachable / not JSON.
  json get(const std::string& target) {
    try {
      HttpClient c(port_);
      auto r = c.get(target);
      return json::parse(r.body, nullptr, false);
    } catch (const std::exception&) {
      return nullptr;
    }
  }
  json query(const std::string& expr) { return get("/api/v1/query?query=" + url_encode(expr)); }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
  std::string log_;
};

bool has_data(const json& r) {
  return r.is_object() && r.value("status", "") == "success" && r["data"]["result"].is_array() &&
         !r["data"]["result"].empty();
}
bool succeeded(const json& r) { return r.is_object() && r.value("status", "") == "success"; }

// The dashboard's template variables (Grafana sends "All" as the allValue ".*") and
// Grafana's interval macros.
std::string substitute(std::string expr, const std::string& function = ".*",
                       const std::string& topic = ".*") {
  expr = std::regex_replace(expr, std::regex(R"(\$__rate_interval|\$__interval|\$\{__rate_interval\})"), "30s");
  expr = std::regex_replace(expr, std::regex(R"(\$\{?function\}?)"), function);
  return std::regex_replace(expr, std::regex(R"(\$\{?topic\}?)"), topic);
}

struct Expr {
  std::string where;  // "panel 'Retries per second' A"
  std::string expr;
};

void collect_panels(const json& panels, std::vector<Expr>& out) {
  for (const auto& p : panels) {
    if (p.contains("panels")) collect_panels(p["panels"], out);
    if (!p.contains("targets")) continue;
    for (const auto& t : p["targets"])
      out.push_back({"panel '" + p.value("title", "?") + "' " + t.value("refId", "?"),
                     t.at("expr").get<std::string>()});
  }
}

// sluice_* (and `up`) metric selectors of an expression: `name` or `name{...}`.
std::vector<std::string> selectors(const std::string& expr) {
  static const std::regex re(R"((sluice_[a-z_]+|\bup\b)(\{[^}]*\})?)");
  std::vector<std::string> out;
  for (std::sregex_iterator it(expr.begin(), expr.end(), re), end; it != end; ++it)
    out.push_back((*it)[0]);
  return out;
}

// Label names in `by (a, b)` clauses.
std::set<std::string> grouping_labels(const std::string& expr) {
  static const std::regex by(R"(by\s*\(([^)]*)\))");
  std::set<std::string> out;
  for (std::sregex_iterator it(expr.begin(), expr.end(), by), end; it != end; ++it) {
    std::stringstream ss((*it)[1].str());
    for (std::string l; std::getline(ss, l, ',');) {
      l.erase(0, l.find_first_not_of(" \n"));
      l.erase(l.find_last_not_of(" \n") + 1);
      if (!l.empty()) out.insert(l);
    }
  }
  return out;
}

// `expr` over the series of job="sluice" only: each sluice_* selector restricted.
std::string one_job(const std::string& expr) {
  std::string out = std::regex_replace(expr, std::regex(R"((sluice_[a-z_]+)\{)"), "$1{job=\"sluice\",");
  return std::regex_replace(out, std::regex(R"((sluice_[a-z_]+)(?![a-z_{]))"), "$1{job=\"sluice\"}");
}

// The samples of an instant query by their labels; empty when it failed.
std::map<std::string, double> samples(const json& r) {
  std::map<std::string, double> out;
  if (!succeeded(r)) return out;
  for (const auto& s : r["data"]["result"])
    out[s["metric"].dump()] = std::stod(s["value"][1].get<std::string>());
  return out;
}

// The expression of the alert rule `name`; empty when there is none.
std::string alert_expr(const YAML::Node& rules, const std::string& name) {
  for (const auto& g : rules["groups"])
    for (const auto& rule : g["rules"])
      if (rule["alert"] && rule["alert"].as<std::string>() == name)
        return rule["expr"].as<std::string>();
  return "";
}

std::string config_for(uint16_t http, uint16_t metrics) {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db, partitions: 2 }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(http) + " }\n"
         "metrics: { listen: 127.0.0.1:" + std::to_string(metrics) + " }\n"
         "engine: { drain_timeout: 5s }\n"
         "functions:\n"
         "  - name: relay\n"
         "    runtime: exec\n"
         "    command: [cat]\n"
         "    concurrency: 4\n"
         "    subscribe: [{ broker: local, topic: orders, ordering: none }]\n"
         "    output: { broker: local, topic: relayed }\n"
         "  - name: failing\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'exit 1']\n"
         "    concurrency: 2\n"
         "    retry: { max_attempts: 2, initial: 10ms, max: 20ms }\n"
         "    subscribe: [{ broker: local, topic: payments, ordering: partition }]\n"
         // Fails once, then waits 10 minutes to retry: its retry topic holds a lag
         // that stays put for the test (the multi-pod lag checks need one above 0).
         "  - name: later\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'exit 1']\n"
         "    concurrency: 2\n"
         "    retry: { max_attempts: 2, initial: 10m, max: 10m, jitter: none, mode: topic }\n"
         "    subscribe: [{ broker: local, topic: someday, ordering: partition }]\n";
}

TEST(DeployE2E, EveryDashboardAndAlertExpressionRunsAgainstARealPrometheus) {
  TempDir dir;
  const uint16_t http_port = free_port(), metrics_port = free_port(), prom_port = free_port();
  dir.write("sluice.yaml", config_for(http_port, metrics_port));
  Engine engine(dir.file("sluice.yaml"), dir.file("sluice.log"));
  ASSERT_TRUE(engine.wait_ready(http_port)) << dir.read("sluice.log");

  // Load: 200 events for `relay` (succeeds, publishes to `relayed`), 20 for `failing`
  // (retried once, then dead-lettered with reason `error`).
  {
    HttpClient c(http_port);
    for (int i = 0; i < 200; ++i)
      ASSERT_EQ(c.post("/topics/orders", "order-" + std::to_string(i),
                       {{"Content-Type", "text/plain"}}).status, 202);
    for (int i = 0; i < 20; ++i)
      ASSERT_EQ(c.post("/topics/payments", "payment-" + std::to_string(i),
                       {{"Content-Type", "text/plain"}}).status, 202);
    for (int i = 0; i < 10; ++i)
      ASSERT_EQ(c.post("/topics/someday", "later-" + std::to_string(i),
                       {{"Content-Type", "text/plain"}}).status, 202);
  }

  // What sluice exports itself: ingress publishes counted, its build, its process.
  {
    const std::string text = HttpClient(metrics_port).get("/metrics").body;
    for (const char* want : {"sluice_published_total{broker=\"local\",topic=\"orders\"} 200\n",
                             "sluice_published_total{broker=\"local\",topic=\"payments\"} 20\n",
                             "sluice_published_total{broker=\"local\",topic=\"someday\"} 10\n",
                             "\nsluice_build_info{commit=\"", "\nprocess_cpu_seconds_total ",
                             "\nprocess_resident_memory_bytes ", "\nprocess_virtual_memory_bytes ",
                             "\nprocess_open_fds ", "\nprocess_max_fds ",
                             "\nprocess_start_time_seconds "})
      EXPECT_NE(text.find(want), std::string::npos) << want << "\n" << text;
  }

  // Job `sluice`: the engine and a target that does not answer (down). Job
  // `sluice-replica`: the same engine again, standing in for a second pod.
  const std::string down_target = "127.0.0.1:" + std::to_string(free_port());
  const std::string target = "127.0.0.1:" + std::to_string(metrics_port);
  dir.write("prometheus.yml",
            "global: { scrape_interval: 1s, evaluation_interval: 1s }\n"
            "rule_files: ['" + kSource + "/deploy/prometheus/alerts.yml']\n"
            "scrape_configs:\n"
            "  - job_name: sluice\n"
            "    static_configs: [{ targets: ['" + target + "', '" + down_target + "'] }]\n"
            "  - job_name: sluice-replica\n"
            "    static_configs: [{ targets: ['" + target + "'] }]\n");
  Prometheus prom(dir, dir.file("prometheus.yml"), prom_port);
  ASSERT_TRUE(eventually([&] {
    if (!prom.running()) throw std::runtime_error("prometheus exited: " + prom.log());
    return has_data(prom.query("up{job=\"sluice\"} == 1"));
  }, 60s)) << prom.log();

  // Wait until the whole load is visible and at least 5 scrapes of it exist, so
  // rate() over 30 s has points on both sides.
  ASSERT_TRUE(eventually([&] {
    auto r = prom.query(
        "sum(sluice_invocations_total{function=\"relay\",outcome=\"success\"}) >= 200 "
        "and on() sum(sluice_dead_letters_total{function=\"failing\"}) >= 20");
    return has_data(r);
  }, 120s)) << dir.read("sluice.log");
  ASSERT_TRUE(eventually([&] {
    return has_data(prom.query("count_over_time(sluice_dead_letters_total[1m]) >= 5"));
  }, 60s));
  // `later`'s ten events wait in its retry topic, seen by both jobs.
  ASSERT_TRUE(eventually([&] {
    return has_data(prom.query(
        "sum(sluice_consumer_lag{job=\"sluice\",topic=\"later.retry\"}) == 10 and on() "
        "sum(sluice_consumer_lag{job=\"sluice-replica\",topic=\"later.retry\"}) == 10"));
  }, 60s)) << prom.query("sluice_consumer_lag").dump() << dir.read("sluice.log");

  // --- The dashboard.
  std::vector<Expr> dashboard;
  std::vector<json> variables;
  int dashboards = 0;
  for (const auto& f : fs::directory_iterator(kSource + "/deploy/grafana/dashboards")) {
    if (f.path().extension() != ".json") continue;
    ++dashboards;
    std::ifstream in(f.path());
    json d = json::parse(in);
    collect_panels(d.at("panels"), dashboard);
    for (const auto& v : d["templating"]["list"]) variables.push_back(v);
  }
  ASSERT_GE(dashboards, 1);
  ASSERT_GE(dashboard.size(), 15u);

  for (const auto& e : dashboard) {
    std::string q = substitute(e.expr);
    json last;
    bool ok = eventually([&] { return has_data(last = prom.query(q)); }, 30s);
    EXPECT_TRUE(ok) << e.where << ": " << q << "\n-> " << last.dump();
    // One function picked: the panels filtered by function still have data for the
    // function that did everything (ran, retried, dead-lettered), and only its series.
    if (e.expr.find("$function") != std::string::npos &&
        e.expr.find("$topic") == std::string::npos) {
      q = substitute(e.expr, "failing");
      ok = has_data(last = prom.query(q));
      EXPECT_TRUE(ok) << e.where << ": " << q << "\n-> " << last.dump();
      if (ok)
        for (const auto& series : last["data"]["result"])
          if (series["metric"].contains("function"))
            EXPECT_EQ(series["metric"]["function"], "failing") << e.where;
    }
  }

  // Two jobs export the same partitions: the lag panels show one figure per
  // partition, what they show over one job alone.
  int lag_panels = 0;
  for (const auto& e : dashboard) {
    if (e.expr.find("sluice_consumer_lag") == std::string::npos) continue;
    ++lag_panels;
    const std::string both = substitute(e.expr), one = substitute(one_job(e.expr));
    std::map<std::string, double> a, b;
    bool same = eventually([&] {
      a = samples(prom.query(both));
      b = samples(prom.query(one));
      if (a.empty() || a.size() != b.size()) return false;
      for (const auto& [labels, v] : a) {
        auto it = b.find(labels);
        // lag_seconds grows between the two jobs' scrapes: a second or two apart.
        if (it == b.end() || std::abs(it->second - v) > 2.5) return false;
      }
      return true;
    }, 15s);
    EXPECT_TRUE(same) << e.where << " over two pods differs from one pod:\n  " << both << "\n  "
                      << one << "\n-> " << json(a).dump() << " vs " << json(b).dump();
  }
  EXPECT_GE(lag_panels, 5);
  {
    // The figure itself: later.retry's 10 events once, not twice.
    const json total = prom.query(substitute(
        "sum(max by (broker, topic, partition, group) (sluice_consumer_lag{topic=\"later.retry\"}))"));
    auto v = samples(total);
    ASSERT_EQ(v.size(), 1u) << total.dump();
    EXPECT_EQ(v.begin()->second, 10);
  }

  // Template variables: label_values(metric, label) must list what the load created.
  std::map<std::string, std::set<std::string>> want{{"function", {"relay", "failing"}},
                                                    {"topic", {"orders", "payments"}}};
  int query_vars = 0;
  for (const auto& v : variables) {
    if (v.value("type", "") != "query") continue;
    ++query_vars;
    std::string def = v["query"].is_object() ? v["query"].value("query", "")
                                             : v["query"].get<std::string>();
    std::smatch m;
    ASSERT_TRUE(std::regex_match(def, m, std::regex(R"(label_values\((\w+),\s*(\w+)\))")))
        << "variable " << v["name"] << ": " << def;
    json r = prom.get("/api/v1/label/" + m[2].str() + "/values?match[]=" + url_encode(m[1]));
    ASSERT_TRUE(succeeded(r)) << def << " -> " << r.dump();
    std::set<std::string> got;
    for (const auto& x : r["data"]) got.insert(x.get<std::string>());
    for (const auto& w : want[v.value("name", "")])
      EXPECT_TRUE(got.contains(w)) << "variable " << v["name"] << " lacks " << w;
  }
  EXPECT_EQ(query_vars, 2) << "a function and a topic variable";

  // --- The alert rules.
  YAML::Node rules = YAML::LoadFile(kSource + "/deploy/prometheus/alerts.yml");
  int alerts = 0;
  for (const auto& g : rules["groups"]) {
    for (const auto& rule : g["rules"]) {
      ++alerts;
      std::string name = rule["alert"] ? rule["alert"].as<std::string>() : "record";
      std::string expr = rule["expr"].as<std::string>();
      json r = prom.query(expr);
      EXPECT_TRUE(succeeded(r)) << name << ": " << expr << "\n-> " << r.dump();
      auto sels = selectors(expr);
      EXPECT_FALSE(sels.empty()) << name << " uses no sluice_* metric";
      std::set<std::string> labels_seen;
      for (const auto& s : sels) {
        json sr = prom.query(s);
        EXPECT_TRUE(has_data(sr)) << name << ": selector " << s << " matches nothing";
        if (has_data(sr))
          for (const auto& series : sr["data"]["result"])
            for (const auto& [k, _] : series["metric"].items()) labels_seen.insert(k);
      }
      for (const auto& l : grouping_labels(expr))
        EXPECT_TRUE(labels_seen.contains(l)) << name << " groups by '" << l
                                             << "', which its metrics do not carry";
    }
  }
  EXPECT_GE(alerts, 4);

  // The dead-letter alert fires for the function that dead-lettered, and only for it.
  {
    const std::string expr = alert_expr(rules, "SluiceDeadLetters");
    ASSERT_FALSE(expr.empty());
    json r = prom.query(expr);
    ASSERT_TRUE(has_data(r)) << r.dump();
    for (const auto& s : r["data"]["result"]) {
      EXPECT_EQ(s["metric"].value("function", ""), "failing");
      EXPECT_EQ(s["metric"].value("reason", ""), "error");
    }
  }

  // The target-down alert fires for the target that does not answer, and only it.
  {
    const std::string expr = alert_expr(rules, "SluiceTargetDown");
    ASSERT_FALSE(expr.empty());
    json r;
    ASSERT_TRUE(eventually([&] { return has_data(r = prom.query(expr)); }, 30s)) << r.dump();
    ASSERT_EQ(r["data"]["result"].size(), 1u) << r.dump();
    EXPECT_EQ(r["data"]["result"][0]["metric"].value("instance", ""), down_target);
  }

  // Prometheus evaluated every rule, without an error.
  json last;
  bool evaluated = eventually([&] {
    last = prom.get("/api/v1/rules");
    if (!succeeded(last)) return false;
    int n = 0;
    for (const auto& g : last["data"]["groups"])
      for (const auto& rule : g["rules"]) {
        if (rule.value("health", "") != "ok") return false;
        ++n;
      }
    return n == alerts;
  }, 30s);
  EXPECT_TRUE(evaluated) << last.dump(2);

  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("sluice.log");
}

}  // namespace
}  // namespace sluice::e2e
