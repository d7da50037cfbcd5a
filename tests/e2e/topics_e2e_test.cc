// Mistakes that used to pass silently: a publish to a topic nothing reads (404 / exit 2
// with "did you mean" on the local queue, listed by `sluice lag`), and the config's
// ${VAR} substitution, `<option>_file` secrets and friendlier errors as the CLI shows them.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "harness.h"

namespace {

using namespace sluice::e2e;

std::string local_config(uint16_t port, const std::string& broker_extra) {
  return "brokers:\n  local: { kind: local, path: ./data/q.db, partitions: 1" + broker_extra +
         " }\n" + (port ? "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n" : "") +
         "functions:\n"
         "  - name: shout\n"
         "    command: [cat]\n"
         "    subscribe: [{ topic: greetings }]\n"
         "    output: { topic: shouted }\n";
}

// A running engine with HTTP ingress on the config above.
struct RunningEngine {
  explicit RunningEngine(const std::string& broker_extra) : port(free_port()) {
    dir.write("sluice.yaml", local_config(port, broker_extra));
    engine.emplace(dir.file("sluice.yaml"), dir.file("engine.log"));
  }
  TempDir dir;
  uint16_t port;
  std::optional<Engine> engine;
};

TEST(UnknownTopics, HttpPublishToAnUnsubscribedLocalTopicIs404WithASuggestion) {
  RunningEngine e(", topics: [audit]");
  ASSERT_TRUE(e.engine->wait_ready(e.port)) << e.dir.read("engine.log");
  HttpClient c(e.port);
  auto typo = c.post("/topics/greetngs", "x");
  EXPECT_EQ(typo.status, 404) << typo.body;
  auto body = nlohmann::json::parse(typo.body, nullptr, false);
  ASSERT_TRUE(body.is_object()) << typo.body;
  const std::string error = body.value("error", "");
  EXPECT_NE(error.find("no function subscribes to topic 'greetngs'"), std::string::npos) << error;
  EXPECT_NE(error.find("did you mean 'greetings'?"), std::string::npos) << error;
  EXPECT_NE(error.find("brokers.local.topics"), std::string::npos) << error;
  EXPECT_EQ(c.post("/topics/greetings", "x").status, 202);
  EXPECT_EQ(c.post("/topics/shouted", "x").status, 202);  // an output: results go there
  EXPECT_EQ(c.post("/topics/audit", "x").status, 202);    // declared in `topics`
  EXPECT_EQ(c.post("/topics/shout.dlq", "x").status, 403);  // internal stays 403
}

TEST(UnknownTopics, AcceptAnyTopicLetsHttpPublishAnywhere) {
  RunningEngine e(", accept_any_topic: true");
  ASSERT_TRUE(e.engine->wait_ready(e.port)) << e.dir.read("engine.log");
  EXPECT_EQ(HttpClient(e.port).post("/topics/anything", "x").status, 202);
}

TEST(UnknownTopics, CliPublishRefusesAnUnsubscribedLocalTopicUnlessDeclared) {
  TempDir dir;
  dir.write("sluice.yaml", local_config(0, ", topics: [audit]"));
  const std::string cfg = dir.file("sluice.yaml");
  auto typo = run_cli({"publish", "-c", cfg, "greetngs", "x"});
  EXPECT_EQ(typo.exit_code, 2) << typo.out << typo.err;
  EXPECT_NE(typo.err.find("did you mean 'greetings'?"), std::string::npos) << typo.err;
  EXPECT_EQ(run_cli({"publish", "-c", cfg, "greetings", "x"}).exit_code, 0);
  EXPECT_EQ(run_cli({"publish", "-c", cfg, "shouted", "x"}).exit_code, 0);
  EXPECT_EQ(run_cli({"publish", "-c", cfg, "audit", "x"}).exit_code, 0);
  EXPECT_EQ(run_cli({"publish", "-c", cfg, "--internal", "shout.retry", "x"}).exit_code, 0);
  dir.write("any.yaml", local_config(0, ", accept_any_topic: true"));
  auto any = run_cli({"publish", "-c", dir.file("any.yaml"), "greetngs", "x"});
  EXPECT_EQ(any.exit_code, 0) << any.err;
}

TEST(UnknownTopics, LagListsLocalTopicsThatHoldEventsAndHaveNoSubscriber) {
  TempDir dir;
  dir.write("sluice.yaml", local_config(0, ", topics: [audit]"));
  const std::string cfg = dir.file("sluice.yaml");
  ASSERT_EQ(run_cli({"publish", "-c", cfg, "audit", "x", "--count", "3"}).exit_code, 0);
  ASSERT_EQ(run_cli({"publish", "-c", cfg, "greetings", "x"}).exit_code, 0);
  auto lag = run_cli({"lag", "-c", cfg, "-o", "json"});
  ASSERT_EQ(lag.exit_code, 0) << lag.err;
  auto rows = nlohmann::json::parse(lag.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << lag.out;
  bool audit = false, greetings = false;
  for (const auto& r : rows) {
    if (r.value("topic", "") == "audit") {
      audit = true;
      EXPECT_EQ(r.value("group", ""), "(no subscriber)") << r.dump();
      EXPECT_EQ(r.value("lag", -1), 3) << r.dump();
    }
    if (r.value("topic", "") == "greetings") {
      greetings = true;
      EXPECT_EQ(r.value("group", ""), "sluice") << r.dump();
    }
  }
  EXPECT_TRUE(audit) << lag.out;
  EXPECT_TRUE(greetings) << lag.out;
}

TEST(ConfigFriendliness, ValidateExpandsVariablesAndNamesAnUnsetOneWithItsLine) {
  TempDir dir;
  dir.write("sluice.yaml", "functions:\n  - name: f\n    command: [cat]\n"
                           "    subscribe: [{ topic: \"${SLUICE_E2E_TOPIC}\" }]\n");
  ::unsetenv("SLUICE_E2E_TOPIC");
  auto unset = run_cli({"validate", "-c", dir.file("sluice.yaml")});
  EXPECT_EQ(unset.exit_code, 2);
  EXPECT_NE(unset.err.find("sluice.yaml:4"), std::string::npos) << unset.err;
  EXPECT_NE(unset.err.find("SLUICE_E2E_TOPIC is not set"), std::string::npos) << unset.err;
  ::setenv("SLUICE_E2E_TOPIC", "orders", 1);
  auto set = run_cli({"validate", "-c", dir.file("sluice.yaml")});
  ::unsetenv("SLUICE_E2E_TOPIC");
  EXPECT_EQ(set.exit_code, 0) << set.err;
}

TEST(ConfigFriendliness, EmptyFileStringCommandAndMissingSecretFileAreErrors) {
  TempDir dir;
  dir.write("empty.yaml", "");
  auto empty = run_cli({"validate", "-c", dir.file("empty.yaml")});
  EXPECT_EQ(empty.exit_code, 2);
  EXPECT_NE(empty.err.find("the config file is empty"), std::string::npos) << empty.err;

  dir.write("cat.yaml", "functions:\n  - { name: f, command: cat, subscribe: [{ topic: t }] }\n");
  auto cat = run_cli({"validate", "-c", dir.file("cat.yaml")});
  EXPECT_EQ(cat.exit_code, 2);
  EXPECT_NE(cat.err.find("write it as a list: [cat]"), std::string::npos) << cat.err;

  dir.write("secret.yaml", "brokers:\n  k:\n    kind: kafka\n    bootstrap: 127.0.0.1:1\n"
                           "    options:\n      sasl.password_file: ./missing\n"
                           "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: t }] }\n");
  auto secret = run_cli({"validate", "-c", dir.file("secret.yaml")});
  EXPECT_EQ(secret.exit_code, 2);
  EXPECT_NE(secret.err.find("secret.yaml:6"), std::string::npos) << secret.err;
  EXPECT_NE(secret.err.find("no such file"), std::string::npos) << secret.err;
}

}  // namespace
