// End-to-end: the command line as a user meets it — unknown verbs, global options
// anywhere, SLUICE_CONFIG / SLUICE_LOG_LEVEL, -o json, port 0 found through the
// engine's state file, and the exit codes of a drain (3 unfinished, 130 on a second
// signal).
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "harness.h"

namespace sluice::e2e {
namespace {

// The engine's HTTP address from the state file it writes beside its queue.
std::string engine_http(const TempDir& dir, const std::string& db = "data/q.db") {
  std::string at;
  eventually([&] {
    auto j = nlohmann::json::parse(dir.read(db + ".engine.json"), nullptr, false);
    if (!j.is_object() || !j.contains("http")) return false;
    at = j["http"].get<std::string>();
    return true;
  });
  return at;
}

uint16_t port_of(const std::string& host_port) {
  return static_cast<uint16_t>(std::stoi(host_port.substr(host_port.rfind(':') + 1)));
}

TEST(Cli, UnknownVerbIsNamedWithASuggestion) {
  auto r = run_cli({"lga"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command 'lga' (did you mean 'lag'?)"), std::string::npos) << r.err;
  auto far = run_cli({"--log-level", "warn", "bogus"});
  EXPECT_EQ(far.exit_code, 2);
  EXPECT_NE(far.err.find("unknown command 'bogus'"), std::string::npos) << far.err;
}

TEST(Cli, GlobalOptionsAfterTheVerbAndFromTheEnvironment) {
  TempDir dir;
  dir.write("s.yaml", "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: t }] }\n");
  // --log-level after the verb.
  auto after = run_cli({"validate", "-c", dir.file("s.yaml"), "--log-level", "debug"});
  EXPECT_EQ(after.exit_code, 0) << after.err;
  // -c before the verb.
  auto before = run_cli({"-c", dir.file("s.yaml"), "validate"});
  EXPECT_EQ(before.exit_code, 0) << before.err;
  // SLUICE_CONFIG names the file; SLUICE_LOG_LEVEL is checked like the flag.
  auto env = run_cmd({"env", "SLUICE_CONFIG=" + dir.file("s.yaml"), SLUICE_BINARY, "validate"});
  EXPECT_EQ(env.exit_code, 0) << env.err;
  auto missing = run_cmd({"env", "SLUICE_CONFIG=" + dir.file("nope.yaml"), SLUICE_BINARY, "validate"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("nope.yaml"), std::string::npos) << missing.err;
  auto bad_level = run_cmd({"env", "SLUICE_LOG_LEVEL=loud", SLUICE_BINARY, "validate", "-c",
                            dir.file("s.yaml")});
  EXPECT_EQ(bad_level.exit_code, 2) << bad_level.err;
}

// listen: 127.0.0.1:0 — the log names the real ports and the verbs find the engine.
TEST(Cli, PortZeroIsLoggedAndFoundByTheVerbs) {
  TempDir dir;
  dir.write("sluice.yaml",
            "brokers:\n  local: { kind: local, path: ./data/q.db }\n"
            "http: { listen: 127.0.0.1:0 }\nmetrics: { listen: 127.0.0.1:0 }\n"
            "functions:\n  - { name: up, command: [tr, a-z, A-Z], subscribe: [{ topic: words }] }\n");
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  const std::string http = engine_http(dir);
  ASSERT_FALSE(http.empty()) << dir.read("engine.log");
  ASSERT_NE(port_of(http), 0);
  ASSERT_TRUE(engine.wait_ready(port_of(http))) << dir.read("engine.log");
  EXPECT_NE(dir.read("engine.log").find("(port " + std::to_string(port_of(http)) + ")"),
            std::string::npos) << dir.read("engine.log");
  EXPECT_EQ(dir.read("engine.log").find("(port 0)"), std::string::npos) << dir.read("engine.log");

  auto inv = run_cli({"invoke", "-c", dir.file("sluice.yaml"), "up", "quiet"});
  EXPECT_EQ(inv.exit_code, 0) << inv.err;
  EXPECT_EQ(inv.out, "QUIET");
  auto fns = run_cli({"functions", "-c", dir.file("sluice.yaml"), "-o", "json"});
  ASSERT_EQ(fns.exit_code, 0) << fns.err;
  auto j = nlohmann::json::parse(fns.out, nullptr, false);
  ASSERT_TRUE(j.is_array()) << fns.out;
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "up");
  EXPECT_TRUE(j[0].contains("workers_desired")) << fns.out;  // the live view
  // --engine overrides the config.
  auto other = run_cli({"--engine", "http://127.0.0.1:1", "invoke", "-c",
                        dir.file("sluice.yaml"), "up", "x"});
  EXPECT_EQ(other.exit_code, 1);
  EXPECT_NE(other.err.find("127.0.0.1:1"), std::string::npos) << other.err;

  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  EXPECT_FALSE(std::filesystem::exists(dir.file("data/q.db.engine.json")));  // removed at exit
  auto gone = run_cli({"invoke", "-c", dir.file("sluice.yaml"), "up", "x"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("--engine"), std::string::npos) << gone.err;
}

// `sluice functions` shows where flow is shaped: a filter marker per subscription and
// the FLOW column in the table; the filter as written and the settings in -o json
// (here the config's view: no engine runs).
TEST(Cli, FunctionsShowFiltersAndFlowControl) {
  TempDir dir;
  dir.write("sluice.yaml",
            "brokers:\n  local: { kind: local, path: ./data/q.db }\n"
            "http: { listen: 127.0.0.1:1 }\n"
            "functions:\n"
            "  - name: shaped\n    command: [cat]\n"
            "    subscribe:\n"
            "      - { topic: a, ordering: none, filter: { sql: \"int(priority) > 3\" } }\n"
            "      - { topic: b, ordering: none, filter: { all: [{ exact: { type: t } }] } }\n"
            "      - { topic: c, ordering: none }\n"
            "    rate_limit: { per_second: 5, burst: 10 }\n"
            "    max_per_key: 1\n    max_age: 90s\n"
            "  - name: bare\n    command: [cat]\n    subscribe: [{ topic: d }]\n");
  auto table = run_cli({"functions", "-c", dir.file("sluice.yaml")});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  EXPECT_NE(table.out.find("FLOW"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("local/a(none,filter:sql),local/b(none,filter:all),local/c(none)"),
            std::string::npos) << table.out;
  EXPECT_EQ(table.out.find("priority"), std::string::npos) << "a marker, not the expression";
  EXPECT_NE(table.out.find("rate 5/s burst 10 max/key 1 max_age 90s"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("local/d(partition)"), std::string::npos) << table.out;

  auto json = run_cli({"functions", "-c", dir.file("sluice.yaml"), "-o", "json"});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto j = nlohmann::json::parse(json.out, nullptr, false);
  ASSERT_TRUE(j.is_array() && j.size() == 2) << json.out;
  EXPECT_EQ(j[0]["subscriptions"][0]["filter"], (nlohmann::json{{"sql", "int(priority) > 3"}}));
  EXPECT_EQ(j[0]["subscriptions"][1]["filter"],
            nlohmann::json::parse(R"({"all": [{"exact": {"type": "t"}}]})"));
  EXPECT_TRUE(j[0]["subscriptions"][2]["filter"].is_null());
  EXPECT_EQ(j[0]["rate_limit"], nlohmann::json::parse(R"({"per_second": 5, "burst": 10, "by": "function"})"));
  EXPECT_EQ(j[0]["max_per_key"], 1);
  EXPECT_EQ(j[0]["max_age"], "90s");
  EXPECT_TRUE(j[1]["rate_limit"].is_null());
  EXPECT_TRUE(j[1]["max_age"].is_null());
}

TEST(Cli, LagAndDlqSpeakJson) {
  TempDir dir;
  dir.write("sluice.yaml",
            "brokers:\n  local: { kind: local, path: ./data/q.db, partitions: 2 }\n"
            "functions:\n  - { name: no, command: [\"false\"], retry: { max_attempts: 1 },"
            " subscribe: [{ topic: t }] }\n");
  auto pub = run_cli({"publish", "-c", dir.file("sluice.yaml"), "t", "x", "--count", "3"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  auto lag = run_cli({"lag", "-c", dir.file("sluice.yaml"), "-o", "json"});
  ASSERT_EQ(lag.exit_code, 0) << lag.err;
  auto rows = nlohmann::json::parse(lag.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << lag.out;
  ASSERT_EQ(rows.size(), 2u) << lag.out;
  int64_t total = 0;
  for (const auto& r : rows) {
    EXPECT_EQ(r["topic"], "t");
    total += r["lag"].get<int64_t>();
  }
  EXPECT_EQ(total, 3);

  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  std::string listed;
  ASSERT_TRUE(eventually([&] {
    auto r = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "-o", "json"});
    listed = r.out;
    return std::count(listed.begin(), listed.end(), '\n') == 3;
  })) << listed << dir.read("engine.log");
  // One log line per dead letter, naming where it went.
  EXPECT_NE(dir.read("engine.log").find("dead-lettered"), std::string::npos) << dir.read("engine.log");
  EXPECT_NE(dir.read("engine.log").find("no.dlq:"), std::string::npos) << dir.read("engine.log");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  auto first = nlohmann::json::parse(listed.substr(0, listed.find('\n')));
  auto show = run_cli({"dlq", "show", "-c", dir.file("sluice.yaml"), first["id"], "-o", "json"});
  ASSERT_EQ(show.exit_code, 0) << show.err;
  EXPECT_EQ(std::count(show.out.begin(), show.out.end(), '\n'), 1) << show.out;  // one line
  EXPECT_EQ(nlohmann::json::parse(show.out)["function"], "no");
}

// A drain that cannot finish exits 3; a second signal during the drain exits 130 at
// once, saying so.
TEST(Cli, DrainExitCodes) {
  TempDir dir;
  auto config = [&](const std::string& drain) {
    dir.write("sluice.yaml", "brokers:\n  local: { kind: local, path: ./data/q.db }\n"
                             "engine: { drain_timeout: " + drain + " }\n"
                             "functions:\n  - { name: slow, command: [sh, -c, \"touch started; sleep 30\"],"
                             " timeout: 60s,"
                             " subscribe: [{ topic: t }] }\n");
  };
  config("200ms");
  ASSERT_EQ(run_cli({"publish", "-c", dir.file("sluice.yaml"), "t", "x"}).exit_code, 0);
  {
    Engine engine(dir.file("sluice.yaml"), dir.file("one.log"));
    ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir.file("started")); }))
        << dir.read("one.log");  // the event runs
    engine.signal(SIGTERM);
    EXPECT_EQ(engine.wait_exit(), 3) << dir.read("one.log");
    EXPECT_NE(dir.read("one.log").find("drain did not finish"), std::string::npos) << dir.read("one.log");
  }
  config("60s");
  std::filesystem::remove(dir.file("started"));
  Engine engine(dir.file("sluice.yaml"), dir.file("two.log"));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(dir.file("started")); }))
      << dir.read("two.log");  // the uncommitted event runs again
  engine.signal(SIGINT);
  ASSERT_TRUE(eventually([&] { return dir.read("two.log").find("draining") != std::string::npos; }));
  engine.signal(SIGINT);
  EXPECT_EQ(engine.wait_exit(5s), 130) << dir.read("two.log");
  EXPECT_NE(dir.read("two.log").find("second SIGINT"), std::string::npos) << dir.read("two.log");
}

}  // namespace
}  // namespace sluice::e2e
