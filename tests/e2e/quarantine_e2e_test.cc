// End-to-end: event age (max_age -> dead letter class `expired`, on the first turn and
// on a lane retry that falls due too late) and crash quarantine
// (retry.max_crashes -> class `crash`), including an inproc function that kills the
// engine: after restarts, the event is quarantined and the rest processed (local
// queue and JetStream).
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "broker-adapters/nats/tests/nats_server.h"
#include "core/event.h"
#include "harness.h"

namespace sluice::e2e {
namespace {

using nats::testing::NatsServer;

// `sluice dlq list --json`: one JSON object per dead letter (empty when it fails).
std::vector<nlohmann::json> dead_letters(const std::string& config) {
  auto r = run_cli({"dlq", "list", "-c", config, "--json"});
  std::vector<nlohmann::json> out;
  if (r.exit_code != 0) return out;
  std::istringstream in(r.out);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l, nullptr, false));
  return out;
}

std::set<std::string> distinct(const std::vector<std::string>& v) { return {v.begin(), v.end()}; }

std::string local_yaml(uint16_t port, const std::string& functions, int partitions = 2) {
  return "brokers:\n  local: { kind: local, path: ./data/q.db, partitions: " +
         std::to_string(partitions) + " }\nhttp: { listen: 127.0.0.1:" + std::to_string(port) +
         " }\nengine: { drain_timeout: 5s }\nfunctions:\n" + functions;
}

std::string structured(const std::string& id, const std::string& time) {
  return nlohmann::json{{"specversion", "1.0"}, {"id", id},     {"source", "/test"},
                        {"type", "t"},          {"time", time}, {"data", id}}
      .dump();
}

TEST(EndToEndAge, EventsWithAnOldTimeAreDeadLetteredAsExpired) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml", local_yaml(port, R"Y(  - name: fresh
    command: [sh, -c, 'echo "$CE_ID" >> processed.log']
    subscribe: [{ broker: local, topic: in, ordering: none }]
    max_age: 1h
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  HttpClient http(port);
  const std::string now = format_rfc3339(now_unix_ms());
  for (int i = 0; i < 4; ++i) {
    for (auto [id, time] : {std::pair{"old-" + std::to_string(i), std::string("2020-01-01T00:00:00Z")},
                            std::pair{"new-" + std::to_string(i), now}}) {
      auto r = http.post("/topics/in", structured(id, time),
                         {{"Content-Type", "application/cloudevents+json"}});
      ASSERT_EQ(r.status, 202) << r.body;
    }
  }
  std::vector<nlohmann::json> dl;
  ASSERT_TRUE(eventually([&] {
    dl = dead_letters(dir.file("sluice.yaml"));
    return dl.size() >= 4 && lines(dir.file("processed.log")).size() >= 4;
  })) << dl.size() << " dead letters\n" << dir.read("engine.log");
  EXPECT_EQ(distinct(lines(dir.file("processed.log"))),
            (std::set<std::string>{"new-0", "new-1", "new-2", "new-3"}));
  ASSERT_EQ(dl.size(), 4u);
  for (const auto& j : dl) {
    EXPECT_EQ(j["error_class"], "expired") << j.dump();
    EXPECT_EQ(j["attempts"], 0);
    EXPECT_EQ(j["function"], "fresh");
  }
  auto metrics = http.get("/metrics").body;
  EXPECT_NE(metrics.find("sluice_events_expired_total{function=\"fresh\"} 4"), std::string::npos);
  EXPECT_NE(metrics.find("sluice_event_age_seconds_count{function=\"fresh\"} 4"), std::string::npos);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

// A failing function's lane retry that falls due after max_age: the event ran once
// while fresh, failed, and when its backoff (1.5 s) ends it is older than max_age
// (500 ms): dead-lettered as `expired` with the one attempt it had, and not invoked
// again — neither at that turn nor later.
TEST(EndToEndAge, ALaneRetryThatFallsDueAfterMaxAgeIsExpiredNotInvoked) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml", local_yaml(port, R"Y(  - name: failing
    command: [sh, -c, 'echo "$CE_ID" >> invoked.log; exit 1']
    subscribe: [{ broker: local, topic: in, ordering: none }]
    max_age: 500ms
    retry: { max_attempts: 5, backoff: fixed, initial: 1500ms, max: 1500ms, jitter: none }
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  HttpClient http(port);
  auto r = http.post("/topics/in", structured("ev-1", format_rfc3339(now_unix_ms())),
                     {{"Content-Type", "application/cloudevents+json"}});
  ASSERT_EQ(r.status, 202) << r.body;
  std::vector<nlohmann::json> dl;
  ASSERT_TRUE(eventually([&] {
    dl = dead_letters(dir.file("sluice.yaml"));
    return !dl.empty();
  })) << dir.read("engine.log");
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["error_class"], "expired") << dl[0].dump();
  EXPECT_EQ(dl[0]["attempts"], 1) << "the first attempt ran while fresh: " << dl[0].dump();
  EXPECT_EQ(lines(dir.file("invoked.log")), std::vector<std::string>{"ev-1"});
  // Nothing runs after the expiry: the invocation count stays at the one failure.
  const auto metrics = http.get("/metrics").body;
  EXPECT_NE(metrics.find("sluice_invocations_total{function=\"failing\",outcome=\"error\"} 1\n"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sluice_events_expired_total{function=\"failing\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("sluice_dead_letters_total{function=\"failing\",reason=\"expired\"} 1"),
            std::string::npos) << metrics;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  EXPECT_EQ(lines(dir.file("invoked.log")).size(), 1u) << "not invoked again before the exit";
}

// A stdio worker process that dies on one event (workers/tests/stdio_test_worker:
// "crash" aborts): that event is dead-lettered as `crash` after retry.max_crashes (2)
// crashes, not max_attempts (5); the others flow meanwhile (its lane retry frees the
// one worker between attempts). One event in flight per worker: every invocation in
// flight on a worker that dies ends in `crash` and counts (docs/CONFIG.md).
TEST(EndToEndCrash, StdioWorkerThatDiesOnOneEventIsDeadLetteredAsCrash) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml", local_yaml(port, R"Y(  - name: worker
    runtime: stdio
    command: [")Y" SLUICE_STDIO_TEST_WORKER R"Y("]
    concurrency: 1
    subscribe: [{ broker: local, topic: in, ordering: none }]
    retry: { max_attempts: 5, initial: 10ms, max: 20ms }
)Y"));
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  HttpClient http(port);
  for (int i = 0; i < 20; ++i) {
    const std::string data = i == 5 ? "crash" : "echo:ev-" + std::to_string(i);
    ASSERT_EQ(http.post("/topics/in", data, {{"Content-Type", "text/plain"}}).status, 202);
  }
  std::vector<nlohmann::json> dl;
  std::string metrics;
  ASSERT_TRUE(eventually([&] {
    dl = dead_letters(dir.file("sluice.yaml"));
    metrics = http.get("/metrics").body;
    return !dl.empty() &&
           metrics.find("sluice_invocations_total{function=\"worker\",outcome=\"success\"} 19") !=
               std::string::npos;
  })) << dl.size() << " dead letters\n" << metrics << dir.read("engine.log");
  ASSERT_EQ(dl.size(), 1u);
  EXPECT_EQ(dl[0]["error_class"], "crash");
  EXPECT_EQ(dl[0]["attempts"], 2);  // of 5 allowed
  EXPECT_NE(metrics.find("sluice_invocations_total{function=\"worker\",outcome=\"crash\"} 2"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sluice_dead_letters_total{function=\"worker\",reason=\"crash\"} 1"),
            std::string::npos) << metrics;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

// Runs the engine on `config` again and again: each run ends when the engine dies, or
// when `done` holds (then it is stopped with SIGTERM). Returns how many runs died of
// SIGSEGV, or -1 when a run neither died nor finished in time.
int runs_until_done(TempDir& dir, const std::string& config, const std::function<bool()>& done,
                    std::string& logs) {
  int crashes = 0;
  for (int run = 0; run < 6; ++run) {
    const std::string log = "engine-" + std::to_string(run) + ".log";
    Engine engine(config, dir.file(log));
    int code = -1;
    const bool ended = eventually([&] {
      code = engine.wait_exit(1ms);
      return code != -1 || done();
    }, 60s);
    logs += "--- " + log + "\n" + dir.read(log);
    if (!ended) return -1;
    if (code == -1) {  // done: stop it
      engine.signal(SIGTERM);
      code = engine.wait_exit();
      logs += dir.read(log);
      return code == 0 ? crashes : -1;
    }
    if (code != 128 + SIGSEGV) return -1;
    ++crashes;
  }
  return -1;
}

// The engine (an inproc function that kills it on "kill") is run again and again: it
// dies twice on that event, then quarantines it and processes all of `want`.
void expect_quarantined_after_two_deaths(TempDir& dir, const std::string& config,
                                         const std::set<std::string>& want,
                                         const std::string& topic) {
  setenv("SLUICE_TEST_RECORD_FILE", dir.file("processed.log").c_str(), 1);
  std::string logs;
  const int crashes = runs_until_done(dir, config, [&] {
    return distinct(lines(dir.file("processed.log"))).size() >= want.size() &&
           !dead_letters(config).empty();
  }, logs);
  EXPECT_EQ(crashes, 2) << logs;
  EXPECT_EQ(distinct(lines(dir.file("processed.log"))), want) << logs;
  auto dl = dead_letters(config);
  ASSERT_EQ(dl.size(), 1u) << logs;
  EXPECT_EQ(dl[0]["error_class"], "crash");
  EXPECT_EQ(dl[0]["original"]["topic"], topic);
}

// An inline inproc function that segfaults on one event kills the engine. The local
// queue counts that event's deliveries across restarts: after retry.max_crashes (2)
// deaths it is dead-lettered as `crash` before it runs, and every other event (those
// held in flight when the engine died too) is processed.
TEST(EndToEndCrash, InprocSegfaultIsQuarantinedAfterRestartsOnTheLocalQueue) {
  TempDir dir;
  const uint16_t port = free_port();
  const std::string config = dir.file("sluice.yaml");
  dir.write("sluice.yaml", local_yaml(port, R"Y(  - name: fragile
    runtime: inproc
    command: [")Y" SLUICE_CRASH_FN R"Y("]
    inline: true
    concurrency: 1
    subscribe: [{ broker: local, topic: in }]
)Y"));
  std::set<std::string> want;
  for (int i = 0; i < 30; ++i) {
    const std::string data = i == 12 ? "kill" : "ev-" + std::to_string(i);
    if (i != 12) want.insert(data);
    auto r = run_cli({"publish", "-c", config, "in", data, "--key", "k" + std::to_string(i % 3)});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  expect_quarantined_after_two_deaths(dir, config, want, "in");
}

// The same on JetStream, whose num_delivered is the count. The window is pinned to one
// message (max_ack_pending: 1): the server counts a delivery for every message the
// engine holds when it dies, so only then is the one it died on alone to blame
// (docs/CONFIG.md "Crash quarantine").
TEST(EndToEndCrash, InprocSegfaultIsQuarantinedAfterRestartsOnJetStream) {
  NatsServer server;
  ASSERT_TRUE(server.start());
  TempDir dir;
  const uint16_t port = free_port();
  const std::string config = dir.file("sluice.yaml");
  dir.write("sluice.yaml",
            "brokers:\n  nats: { kind: nats, url: \"" + server.url() +
                "\", jetstream: { stream: EVENTS, subjects: [\"events.>\"], create: true }, "
                "options: { reconnect_wait: 100ms, ack_wait: 1s, max_ack_pending: 1 } }\n"
                "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
                "engine: { drain_timeout: 5s }\nfunctions:\n"
                R"Y(  - name: fragile
    runtime: inproc
    command: [")Y" SLUICE_CRASH_FN R"Y("]
    inline: true
    concurrency: 1
    subscribe: [{ broker: nats, topic: events.in }]
    dead_letter: { broker: nats, topic: events.dlq }
)Y");
  std::set<std::string> want;
  for (int i = 0; i < 8; ++i) {
    const std::string data = i == 3 ? "kill" : "ev-" + std::to_string(i);
    if (i != 3) want.insert(data);
    auto r = run_cli({"publish", "-c", config, "events.in", data});
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  expect_quarantined_after_two_deaths(dir, config, want, "events.in");
}

}  // namespace
}  // namespace sluice::e2e
