// End-to-end: `sluice pause` / `sluice resume` and `paused: true` on the local queue —
// intake stops, lag grows, nothing runs until the resume, which drains; a kill -9
// while paused loses nothing.
#include <gtest/gtest.h>
#include <signal.h>

#include <sstream>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace sluice::e2e {
namespace {

std::string config_for(uint16_t port, const std::string& function_extra = "") {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db, partitions: 4 }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) +
         ", auth: { bearer_tokens_file: ./tokens } }\n"
         "functions:\n"
         "  - name: rec\n"
         "    runtime: exec\n"
         "    command: [sh, -c, 'echo \"$CE_ID\" >> processed.log']\n"
         "    concurrency: 4\n"
         "    subscribe: [{ broker: local, topic: in, ordering: none }]\n" +
         function_extra;
}

const std::map<std::string, std::string> kAuth = {{"Authorization", "Bearer tok"}};

std::vector<std::string> publish(uint16_t port, int n, const std::string& prefix) {
  std::vector<std::string> ids;
  HttpClient c(port);
  for (int i = 0; i < n; ++i) {
    auto headers = kAuth;
    headers["Content-Type"] = "text/plain";
    auto r = c.post("/topics/in", prefix + std::to_string(i), headers);
    EXPECT_EQ(r.status, 202) << r.body;
    if (r.status == 202) ids.push_back(nlohmann::json::parse(r.body).at("id").get<std::string>());
  }
  return ids;
}

// The lag of topic `in` summed over its partitions (`sluice lag -o json`); -1 unknown.
int64_t lag_of_in(const std::string& config) {
  auto r = run_cli({"lag", "-c", config, "-o", "json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (r.exit_code != 0 || !j.is_array()) return -1;
  int64_t sum = 0;
  for (const auto& row : j)
    if (row.value("topic", "") == "in" && row["lag"].is_number()) sum += row["lag"].get<int64_t>();
  return sum;
}

// `paused` of function rec in `sluice functions -o json`; null when absent.
nlohmann::json paused_in_functions(const std::string& config) {
  auto r = run_cli({"functions", "-c", config, "-o", "json"});
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array() || j.empty() || !j[0].contains("paused")) return nullptr;
  return j[0]["paused"];
}

// The value of sluice_consumer_paused for topic `in` in the engine's /metrics; "" absent.
std::string consumer_paused_of_in(uint16_t port) {
  std::istringstream in(HttpClient(port).get("/metrics", kAuth).body);
  for (std::string l; std::getline(in, l);)
    if (l.rfind("sluice_consumer_paused{", 0) == 0 && l.find("topic=\"in\"") != std::string::npos)
      return l.substr(l.rfind(' ') + 1);
  return "";
}

bool sorted_equal(std::vector<std::string> a, std::vector<std::string> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  return a == b;
}

TEST(PauseE2E, PauseHoldsIntakeLagGrowsAndResumeDrainsEachEventOnce) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("tokens", "tok\n");
  dir.write("sluice.yaml", config_for(port));
  const std::string cfg = dir.file("sluice.yaml");
  Engine engine(cfg, dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto ids = publish(port, 20, "before-");
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() == 20; }))
      << dir.read("engine.log");

  auto p = run_cli({"pause", "-c", cfg, "rec"});
  ASSERT_EQ(p.exit_code, 0) << p.err;
  EXPECT_EQ(p.out, "function 'rec' paused\n");
  EXPECT_EQ(paused_in_functions(cfg), true);
  EXPECT_NE(run_cli({"functions", "-c", cfg}).out.find("paused"), std::string::npos);
  EXPECT_NE(HttpClient(port).get("/metrics", kAuth).body.find("sluice_function_paused{function=\"rec\"} 1"),
            std::string::npos);
  EXPECT_EQ(consumer_paused_of_in(port), "1");  // the lag alerts leave it out
  // Paused: a synchronous call is busy (429), and published events wait in the queue.
  EXPECT_EQ(HttpClient(port).post("/function/rec", "x", kAuth).status, 429);
  auto later = publish(port, 50, "paused-");
  ASSERT_TRUE(eventually([&] { return lag_of_in(cfg) >= 50; })) << dir.read("engine.log");
  EXPECT_EQ(lines(dir.file("processed.log")).size(), 20u);

  // Idempotent; an unknown function and a missing engine are clear errors.
  EXPECT_EQ(run_cli({"pause", "-c", cfg, "rec", "-o", "json"}).out, "{\"name\":\"rec\",\"paused\":true}\n");
  auto unknown = run_cli({"pause", "-c", cfg, "nope"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("no function 'nope'"), std::string::npos) << unknown.err;
  auto nowhere = run_cli({"pause", "-c", cfg, "--engine", "127.0.0.1:" + std::to_string(free_port()), "rec"});
  EXPECT_EQ(nowhere.exit_code, 1);
  EXPECT_NE(nowhere.err.find("is `sluice run` up?"), std::string::npos) << nowhere.err;

  auto r = run_cli({"resume", "-c", cfg, "rec"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "function 'rec' resumed\n");
  EXPECT_EQ(consumer_paused_of_in(port), "0");
  ids.insert(ids.end(), later.begin(), later.end());
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= ids.size(); }))
      << dir.read("engine.log");
  EXPECT_TRUE(sorted_equal(lines(dir.file("processed.log")), ids));
  EXPECT_EQ(paused_in_functions(cfg), false);
  ASSERT_TRUE(eventually([&] { return lag_of_in(cfg) == 0; })) << dir.read("engine.log");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

// `paused: true`: it starts paused, a kill -9 then loses nothing, it starts paused
// again, and the resume runs each event once.
TEST(PauseE2E, PausedInTheConfigSurvivesKillDashNineAndResumeRunsEverythingOnce) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("tokens", "tok\n");
  dir.write("sluice.yaml", config_for(port, "    paused: true\n"));
  const std::string cfg = dir.file("sluice.yaml");
  std::vector<std::string> ids;
  {
    Engine engine(cfg, dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    EXPECT_EQ(paused_in_functions(cfg), true);
    ids = publish(port, 30, "e-");
    ASSERT_TRUE(eventually([&] { return lag_of_in(cfg) == 30; })) << dir.read("engine.log");
    engine.signal(SIGKILL);
    EXPECT_EQ(engine.wait_exit(), 128 + SIGKILL);
  }
  EXPECT_TRUE(lines(dir.file("processed.log")).empty());
  Engine engine(cfg, dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  EXPECT_EQ(paused_in_functions(cfg), true);
  EXPECT_EQ(lag_of_in(cfg), 30);
  ASSERT_EQ(run_cli({"resume", "-c", cfg, "rec"}).exit_code, 0);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 30; }))
      << dir.read("engine.log");
  EXPECT_TRUE(sorted_equal(lines(dir.file("processed.log")), ids));
  ASSERT_TRUE(eventually([&] { return lag_of_in(cfg) == 0; }));
  // SIGTERM while paused does not wait for the waiting events: pause, publish, stop.
  ASSERT_EQ(run_cli({"pause", "-c", cfg, "rec"}).exit_code, 0);
  publish(port, 5, "late-");
  ASSERT_TRUE(eventually([&] { return lag_of_in(cfg) == 5; }));
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(30s), 0) << dir.read("engine.log");
  EXPECT_EQ(lines(dir.file("processed.log")).size(), 30u);
}

}  // namespace
}  // namespace sluice::e2e
