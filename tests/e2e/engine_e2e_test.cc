// End-to-end: the real binary, the embedded queue, HTTP ingress, exec functions.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "harness.h"

namespace sluice::e2e {
namespace {

std::string config_for(uint16_t port, const std::string& functions,
                       const std::string& extra = "") {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db, partitions: 4 }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
         "engine: { drain_timeout: 30s }\n" + extra +
         "functions:\n" + functions;
}

// Publishes `n` events over HTTP from `clients` keep-alive connections; returns ids.
std::vector<std::string> publish_http(uint16_t port, const std::string& topic, int n,
                                      int clients = 4, const std::string& prefix = "event-") {
  std::mutex mu;
  std::vector<std::string> ids;
  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::vector<std::thread> ts;
  for (int c = 0; c < clients; ++c) {
    ts.emplace_back([&] {
      HttpClient client(port);
      for (int i; (i = next++) < n;) {
        auto r = client.post("/topics/" + topic, prefix + std::to_string(i),
                             {{"Content-Type", "text/plain"},
                              {"ce-partitionkey", "k" + std::to_string(i % 100)}});
        if (r.status != 202) {
          ++failures;
          continue;
        }
        auto j = nlohmann::json::parse(r.body);
        std::lock_guard lk(mu);
        ids.push_back(j.at("id").get<std::string>());
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures.load(), 0);
  return ids;
}

std::multiset<std::string> as_multiset(const std::vector<std::string>& v) {
  return {v.begin(), v.end()};
}

// "" when `got` holds each of `want` exactly once; otherwise what is missing/extra.
std::string exactly_once(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  std::multiset<std::string> g(got.begin(), got.end()), w(want.begin(), want.end());
  std::vector<std::string> missing, extra;
  std::set_difference(w.begin(), w.end(), g.begin(), g.end(), std::back_inserter(missing));
  std::set_difference(g.begin(), g.end(), w.begin(), w.end(), std::back_inserter(extra));
  if (missing.empty() && extra.empty()) return "";
  std::string out = std::to_string(missing.size()) + " missing, " + std::to_string(extra.size()) + " extra;";
  for (size_t i = 0; i < missing.size() && i < 5; ++i) out += " missing:" + missing[i];
  for (size_t i = 0; i < extra.size() && i < 5; ++i) out += " extra:" + extra[i];
  return out;
}

TEST(EndToEnd, TenThousandEventsOverHttpAreEachProcessedExactlyOnce) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: rec
    runtime: exec
    command: [sh, -c, 'echo "$CE_ID" >> processed.log']
    concurrency: 8
    subscribe: [{ broker: local, topic: in, ordering: none }]
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto ids = publish_http(port, "in", 10000);
  ASSERT_EQ(ids.size(), 10000u);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 10000; }, 600s))
      << lines(dir.file("processed.log")).size() << " processed";
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  auto processed = lines(dir.file("processed.log"));
  EXPECT_EQ(processed.size(), 10000u);  // exactly once in the happy path
  EXPECT_EQ(exactly_once(processed, ids), "");
}

TEST(EndToEnd, FailingEventsAreDeadLetteredAndReplayBringsThemBack) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: picky
    runtime: exec
    command: [sh, -c, '[ -f ok ] || { echo "not ready for $CE_ID" >&2; exit 1; }; echo "$CE_ID" >> processed.log']
    concurrency: 4
    subscribe: [{ broker: local, topic: jobs, ordering: none }]
    retry: { max_attempts: 3, initial: 10ms, max: 20ms }
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto ids = publish_http(port, "jobs", 20, 2);
  ASSERT_EQ(ids.size(), 20u);
  std::vector<std::string> listed;
  ASSERT_TRUE(eventually([&] {
    auto r = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "--json"});
    if (r.exit_code != 0) return false;
    listed.clear();
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) listed.push_back(l);
    return listed.size() == 20;
  })) << listed.size() << " dead letters\n" << dir.read("engine.log");
  for (const auto& l : listed) {
    auto j = nlohmann::json::parse(l);
    EXPECT_EQ(j["function"], "picky");
    EXPECT_EQ(j["error_class"], "error");
    EXPECT_EQ(j["attempts"], 3);
    EXPECT_NE(j["error_message"].get<std::string>().find("not ready for"), std::string::npos);
    EXPECT_EQ(j["original"]["topic"], "jobs");
  }
  auto first_id = nlohmann::json::parse(listed[0])["id"].get<std::string>();
  auto show = run_cli({"dlq", "show", "-c", dir.file("sluice.yaml"), first_id});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("\"data\": \"event-"), std::string::npos) << show.out;

  auto dry = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--dry-run"});
  EXPECT_EQ(dry.exit_code, 0) << dry.err;
  EXPECT_NE(dry.out.find("20 dead letter(s) would be replayed"), std::string::npos) << dry.out;

  dir.write("ok", "");
  auto replay = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml"), "--function", "picky"});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  EXPECT_NE(replay.out.find("replayed 20 of 20"), std::string::npos) << replay.out;
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 20; }));
  EXPECT_EQ(exactly_once(lines(dir.file("processed.log")), ids), "");
  auto after = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml")});
  EXPECT_NE(after.out.find("(no dead letters)"), std::string::npos) << after.out;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, RetryTopicModeRetriesThroughTheRetryTopicWithoutBlockingTheLane) {
  TempDir dir;
  uint16_t port = free_port();
  // Each event fails on its first attempt; the retry runs from topic `flaky.retry`
  // with its attempt number, topic and offset of the original restored.
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: flaky
    runtime: exec
    command: [sh, -c, 'if [ ! -f "seen.$CE_ID" ]; then touch "seen.$CE_ID"; exit 1; fi; echo "$CE_ID $SLUICE_ATTEMPT $SLUICE_TOPIC" >> processed.log']
    concurrency: 4
    subscribe: [{ broker: local, topic: jobs, ordering: partition }]
    retry: { max_attempts: 3, initial: 200ms, max: 200ms, jitter: none, mode: topic }
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto ids = publish_http(port, "jobs", 40, 2);
  ASSERT_EQ(ids.size(), 40u);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 40; }))
      << dir.read("engine.log");
  std::vector<std::string> got;
  for (const auto& l : lines(dir.file("processed.log"))) {
    std::istringstream in(l);
    std::string id, attempt, topic;
    in >> id >> attempt >> topic;
    EXPECT_EQ(attempt, "2") << l;
    EXPECT_EQ(topic, "jobs") << l;  // the origin, not flaky.retry
    got.push_back(id);
  }
  EXPECT_EQ(exactly_once(got, ids), "");
  auto dl = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml")});
  EXPECT_NE(dl.out.find("(no dead letters)"), std::string::npos) << dl.out;
  auto m = HttpClient(port).get("/metrics");
  EXPECT_NE(m.body.find("sluice_published_total{broker=\"local\",topic=\"flaky.retry\"} 40"),
            std::string::npos)
      << m.body;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, AutoscaledPoolGrowsWithABacklogAndFallsBackToZero) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: scaled
    runtime: exec
    command: [sh, -c, 'sleep 0.05; echo "$CE_ID" >> processed.log']
    concurrency: 8
    workers: { min: 0, max: 8, target_lag: 20, idle_after: 2s }
    subscribe: [{ broker: local, topic: backlog, ordering: none }]
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto desired = [&] {
    auto r = HttpClient(port).get("/system/functions");
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return j.is_array() && !j.empty() ? j[0].value("workers_desired", -1) : -1;
  };
  EXPECT_EQ(desired(), 0);  // min: 0 and nothing to do yet
  auto ids = publish_http(port, "backlog", 600, 4);
  ASSERT_EQ(ids.size(), 600u);
  int peak = 0;
  ASSERT_TRUE(eventually([&] {
    peak = std::max(peak, desired());
    return peak > 1;
  })) << dir.read("engine.log");
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 600; }, 180s))
      << dir.read("engine.log");
  EXPECT_EQ(exactly_once(lines(dir.file("processed.log")), ids), "");
  // Idle: back to zero after idle_after and the scale-down window.
  ASSERT_TRUE(eventually([&] { return desired() == 0; }, 120s)) << dir.read("engine.log");
  auto m = HttpClient(port).get("/metrics");
  EXPECT_NE(m.body.find("sluice_workers_desired{function=\"scaled\"} 0"), std::string::npos);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
  EXPECT_NE(dir.read("engine.log").find("[fn scaled] workers 0 -> "), std::string::npos);
}

TEST(EndToEnd, KillDashNineLosesNoAcknowledgedEvent) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: rec
    runtime: exec
    command: [sh, -c, 'echo "$CE_ID" >> processed.log']
    concurrency: 4
    subscribe: [{ broker: local, topic: in, ordering: key }]
)Y"));
  std::vector<std::string> ids;
  {
    Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
    ids = publish_http(port, "in", 3000);
    ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 300; }));
    engine.signal(SIGKILL);
    EXPECT_EQ(engine.wait_exit(), 128 + SIGKILL);
  }
  size_t before_restart = lines(dir.file("processed.log")).size();
  ASSERT_LT(before_restart, ids.size()) << "the kill came too late to test anything";
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  std::set<std::string> want(ids.begin(), ids.end());
  ASSERT_TRUE(eventually([&] {
    auto got = lines(dir.file("processed.log"));
    std::set<std::string> have(got.begin(), got.end());
    return std::includes(have.begin(), have.end(), want.begin(), want.end());
  }, 600s)) << "not every acknowledged event was processed after restart";
  auto all = lines(dir.file("processed.log"));
  // Duplicates come only from work in flight at the kill: bounded, not the backlog.
  EXPECT_LE(all.size() - ids.size(), 2000u);
  RecordProperty("duplicates_after_kill", static_cast<int>(all.size() - ids.size()));
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, SigtermDrainsInFlightWorkAndCommitsIt) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: slow
    runtime: exec
    command: [sh, -c, 'echo "$CE_ID" >> started.log; sleep 1; echo "$CE_ID" >> processed.log']
    concurrency: 4
    subscribe: [{ broker: local, topic: in, ordering: none }]
)Y"));
  {
    Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
    ASSERT_TRUE(engine.wait_ready(port));
    publish_http(port, "in", 4, 1);
    ASSERT_TRUE(eventually([&] { return lines(dir.file("started.log")).size() == 4; }));
    engine.signal(SIGTERM);
    EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
    EXPECT_EQ(lines(dir.file("processed.log")).size(), 4u);  // drained, not killed
  }
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port));
  publish_http(port, "in", 1, 1);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() == 5; }));
  EXPECT_EQ(lines(dir.file("started.log")).size(), 5u);  // nothing redelivered: it was committed
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, TwoStepPipelineDeliversItsOutputs) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: upper
    runtime: exec
    command: [tr, a-z, A-Z]
    subscribe: [{ broker: local, topic: words, ordering: key }]
    output: { broker: local, topic: loud }
  - name: sink
    runtime: exec
    command: [sh, -c, 'printf "%s %s\n" "$CE_TYPE" "$(cat)" >> out.log']
    subscribe: [{ broker: local, topic: loud, ordering: partition }]
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port));
  publish_http(port, "words", 50, 2, "hello-");
  ASSERT_TRUE(eventually([&] { return lines(dir.file("out.log")).size() >= 50; }))
      << dir.read("engine.log");
  std::set<std::string> got;
  for (auto& l : lines(dir.file("out.log"))) got.insert(l);
  for (int i = 0; i < 50; ++i)
    EXPECT_TRUE(got.count("io.sluice.function.result HELLO-" + std::to_string(i))) << i;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, BadHttpRequestsStoreNothing) {
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: rec
    runtime: exec
    command: [sh, -c, 'cat >> processed.log; echo >> processed.log']
    subscribe: [{ broker: local, topic: in, ordering: partition }]
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port));
  HttpClient c(port);
  const std::map<std::string, std::string> same_key{{"ce-partitionkey", "k"}};
  auto bad1 = c.post("/topics/in", "{not json", {{"Content-Type", "application/cloudevents+json"}});
  EXPECT_EQ(bad1.status, 400);
  EXPECT_NE(bad1.body.find("\"error\""), std::string::npos);
  auto bad2 = c.post("/topics/in", "x", {{"ce-specversion", "1.0"}, {"ce-partitionkey", "k"}});
  EXPECT_EQ(bad2.status, 400);  // binary mode without ce-id/ce-source/ce-type
  auto bad3 = c.post("/topics/bad%20topic", "x");
  EXPECT_EQ(bad3.status / 100, 4);
  auto good = c.post("/topics/in", "good", {{"ce-partitionkey", "k"}});
  EXPECT_EQ(good.status, 202);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 1; }));
  EXPECT_EQ(lines(dir.file("processed.log")), std::vector<std::string>{"good"});
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0);
}

TEST(EndToEnd, BadConfigAndBadUsageExitWithTwoAndOneLine) {
  TempDir dir;
  dir.write("bad.yaml", "functions:\n  - name: f\n    runtime: exec\n    timeout: soon\n    command: [true]\n");
  auto v = run_cli({"validate", "-c", dir.file("bad.yaml")});
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find(":4"), std::string::npos) << v.err;  // names the line
  EXPECT_NE(v.err.find("timeout"), std::string::npos) << v.err;
  auto r = run_cli({"run", "-c", dir.file("bad.yaml")});
  EXPECT_EQ(r.exit_code, 2);
  auto missing = run_cli({"validate", "-c", dir.file("nope.yaml")});
  EXPECT_EQ(missing.exit_code, 2);
  auto usage = run_cli({"publish"});
  EXPECT_EQ(usage.exit_code, 2);
  auto hdr = run_cli({"publish", "-c", dir.file("bad.yaml"), "t", "x", "--header", "novalue"});
  EXPECT_EQ(hdr.exit_code, 2);
  dir.write("good.yaml", "functions:\n  - name: f\n    command: [cat]\n    subscribe: [{topic: t}]\n");
  auto ok = run_cli({"validate", "-c", dir.file("good.yaml")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  auto hdr2 = run_cli({"publish", "-c", dir.file("good.yaml"), "t", "x", "--header", "novalue"});
  EXPECT_EQ(hdr2.exit_code, 2);
  EXPECT_NE(hdr2.err.find("NAME=VALUE"), std::string::npos);
  // Every flag's bad forms: exit 2 and one line that says what is wrong.
  const std::string good = dir.file("good.yaml");
  struct Bad {
    std::vector<std::string> args;
    const char* says;
  };
  for (const Bad& b : std::vector<Bad>{
           {{"publish", "-c", good, "t", "x", "--count", "0"}, "count"},
           {{"publish", "-c", good, "t", "@" + dir.file("missing.bin")}, "cannot read"},
           {{"publish", "-c", good, "--broker", "nope", "t", "x"}, "nope"},
           {{"dlq", "list", "-c", good, "--limit", "0"}, "limit"},
           {{"dlq", "list", "-c", good, "--function", "nope"}, "nope"},
           {{"dlq", "show", "-c", good, "not-an-id"}, "TOPIC:PARTITION:OFFSET"},
           {{"dlq", "show", "-c", good, "other.dlq:0:1"}, "not the dead-letter topic"},
           {{"dlq", "replay", "-c", good, "--id", "x:y:z"}, "TOPIC:PARTITION:OFFSET"},
           {{"dlq"}, "subcommand"},
           {{"lag", "-c", dir.file("bad.yaml")}, "timeout"},
           {{"run", "--bogus"}, "bogus"},
       }) {
    auto res = run_cli(b.args);
    EXPECT_EQ(res.exit_code, 2) << b.args.back() << ": " << res.err;
    EXPECT_NE(res.err.find(b.says), std::string::npos) << b.args.back() << ": " << res.err;
  }
  auto show_missing = run_cli({"dlq", "show", "-c", good, "f.dlq:0:99"});
  EXPECT_EQ(show_missing.exit_code, 1) << show_missing.err;  // well-formed, but not there

  for (const auto* out : {&v.err, &r.err, &usage.err}) {
    EXPECT_EQ(out->find("terminate called"), std::string::npos);
    EXPECT_EQ(out->find("what():"), std::string::npos);
  }
}

TEST(EndToEnd, CliPublishIsConsumedAndCountedInMetrics) {
  TempDir dir;
  uint16_t port = free_port(), mport = free_port();
  dir.write("sluice.yaml", config_for(port, R"Y(  - name: rec
    runtime: exec
    command: [sh, -c, 'echo "$CE_TYPE $SLUICE_TOPIC $(cat)" >> processed.log']
    subscribe: [{ broker: local, topic: in }]
)Y", "metrics: { listen: 127.0.0.1:" + std::to_string(mport) + " }\n"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port));
  auto p = run_cli({"publish", "-c", dir.file("sluice.yaml"), "in", "-", "--type", "my.type",
                    "--count", "3"}, "from-stdin");
  ASSERT_EQ(p.exit_code, 0) << p.err;
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 3; }));
  EXPECT_EQ(lines(dir.file("processed.log"))[0], "my.type in from-stdin");
  std::string text;
  ASSERT_TRUE(eventually([&] {
    HttpClient m(mport);
    text = m.get("/metrics").body;
    return text.find("sluice_invocations_total{function=\"rec\",outcome=\"success\"} 3") !=
               std::string::npos &&
           text.find("sluice_consumer_lag{") != std::string::npos;  // polled every 2 s
  }, 30s)) << text;
  EXPECT_NE(text.find("sluice_events_received_total{broker=\"local\",topic=\"in\"} 3"), std::string::npos);
  EXPECT_NE(text.find("sluice_workers_desired{function=\"rec\"} 4"), std::string::npos);
  // The broker's probe is exported from the start (no degraded mode here).
  EXPECT_NE(text.find("sluice_broker_errors_total{broker=\"local\",kind=\"decode\"} 0"),
            std::string::npos);
  auto fns = run_cli({"functions", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(fns.exit_code, 0);
  EXPECT_NE(fns.out.find("rec"), std::string::npos);
  EXPECT_EQ(fns.out.find("not reachable"), std::string::npos) << fns.out;
  auto lag = run_cli({"lag", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(lag.exit_code, 0) << lag.err;
  EXPECT_NE(lag.out.find("LAG_SECONDS"), std::string::npos);
  engine.signal(SIGINT);
  EXPECT_EQ(engine.wait_exit(), 0);
}

}  // namespace
}  // namespace sluice::e2e
