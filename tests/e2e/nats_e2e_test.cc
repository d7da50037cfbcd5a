// End-to-end on a real nats-server with JetStream: the engine consumes a durable
// pull consumer, acks only after the function finished, dead-letters into the
// stream, and `sluice dlq` lists and replays from it.
#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>
#include <sstream>

#include "broker-adapters/nats/tests/nats_server.h"
#include "harness.h"

namespace sluice::e2e {
namespace {

TEST(EndToEndNats, JetStreamEventsAreProcessedDeadLetteredAndReplayed) {
  nats::testing::NatsServer server;
  ASSERT_TRUE(server.start()) << "nats-server (Debian package nats-server) did not start";
  TempDir dir;
  uint16_t port = free_port();
  dir.write("sluice.yaml", "brokers:\n"
                           "  nats: { kind: nats, url: \"nats://127.0.0.1:" +
                               std::to_string(server.port()) +
                               "\", jetstream: { stream: EVENTS, subjects: [\"events.>\"], create: true } }\n"
                               "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
                               R"Y(functions:
  - name: rec
    command: [sh, -c, 'd=$(cat); case "$d" in bad*) [ -f ok ] || exit 1;; esac; echo "$CE_ID $d" >> processed.log']
    concurrency: 8
    subscribe: [{ broker: nats, topic: events.in, ordering: none }]
    retry: { max_attempts: 2, initial: 10ms, max: 20ms }
    dead_letter: { broker: nats, topic: events.dlq }
)Y");
  auto v = run_cli({"validate", "-c", dir.file("sluice.yaml")});
  ASSERT_EQ(v.exit_code, 0) << v.err;
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto good = run_cli({"publish", "-c", dir.file("sluice.yaml"), "--broker", "nats", "events.in",
                       "good", "--count", "200"});
  ASSERT_EQ(good.exit_code, 0) << good.err;
  auto bad = run_cli({"publish", "-c", dir.file("sluice.yaml"), "--broker", "nats", "events.in",
                      "bad-one", "--header", "trace=abc"});
  ASSERT_EQ(bad.exit_code, 0) << bad.err;
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 200; }, 120s))
      << lines(dir.file("processed.log")).size() << "\n" << dir.read("engine.log");
  std::vector<std::string> dead;
  ASSERT_TRUE(eventually([&] {
    auto r = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "--json"});
    dead.clear();
    std::istringstream in(r.out);
    for (std::string l; std::getline(in, l);)
      if (!l.empty()) dead.push_back(l);
    return r.exit_code == 0 && dead.size() == 1;
  })) << dead.size() << "\n" << dir.read("engine.log");
  auto j = nlohmann::json::parse(dead[0]);
  EXPECT_EQ(j["function"], "rec");
  EXPECT_EQ(j["attempts"], 2);
  EXPECT_EQ(j["original"]["topic"], "events.in");
  auto show = run_cli({"dlq", "show", "-c", dir.file("sluice.yaml"), j["id"].get<std::string>()});
  EXPECT_EQ(show.exit_code, 0) << show.err;
  EXPECT_NE(show.out.find("\"trace\": \"abc\""), std::string::npos) << show.out;  // headers kept
  EXPECT_NE(show.out.find("\"data\": \"bad-one\""), std::string::npos) << show.out;

  dir.write("ok", "");
  auto replay = run_cli({"dlq", "replay", "-c", dir.file("sluice.yaml")});
  ASSERT_EQ(replay.exit_code, 0) << replay.err;
  ASSERT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() >= 201; }))
      << dir.read("engine.log");
  auto after = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml")});
  EXPECT_NE(after.out.find("(no dead letters)"), std::string::npos) << after.out;
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  // Everything was acked: a restart redelivers nothing.
  size_t before = lines(dir.file("processed.log")).size();
  Engine again(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(again.wait_ready(port));
  auto lag = run_cli({"lag", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(lag.exit_code, 0) << lag.err;
  EXPECT_NE(lag.out.find("sluice_rec"), std::string::npos) << lag.out;  // the durable's name
  again.signal(SIGTERM);
  EXPECT_EQ(again.wait_exit(), 0);
  EXPECT_EQ(lines(dir.file("processed.log")).size(), before);
}

}  // namespace
}  // namespace sluice::e2e
