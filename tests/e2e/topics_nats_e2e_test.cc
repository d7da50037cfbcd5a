// `sluice publish` to a NATS subject no function subscribes to: published, with a
// warning (NATS may have readers other than sluice); a matching wildcard is no warning.
// With JetStream, `sluice lag` lists such subjects while the stream holds messages.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "broker-adapters/nats/tests/nats_server.h"
#include "harness.h"

namespace sluice::e2e {
namespace {

TEST(UnknownTopicsNats, PublishToAnUnsubscribedSubjectWarnsAndPublishes) {
  nats::testing::NatsServer server;
  ASSERT_TRUE(server.start()) << "nats-server (Debian package nats-server) did not start";
  TempDir dir;
  dir.write("sluice.yaml", "brokers:\n  nats: { kind: nats, url: \"nats://127.0.0.1:" +
                               std::to_string(server.port()) + "\" }\n" +
                               "functions:\n  - { name: f, command: [cat],"
                               " subscribe: [{ topic: \"events.>\" }] }\n");
  auto typo = run_cli({"publish", "-c", dir.file("sluice.yaml"), "evnets.in", "x"});
  EXPECT_EQ(typo.exit_code, 0) << typo.err;
  EXPECT_NE(typo.err.find("warning: no function subscribes to topic 'evnets.in'"),
            std::string::npos)
      << typo.err;
  EXPECT_NE(typo.err.find("`sluice lag` lists the topic"), std::string::npos) << typo.err;
  auto ok = run_cli({"publish", "-c", dir.file("sluice.yaml"), "events.in", "x"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err.find("warning"), std::string::npos) << ok.err;
  // Core NATS keeps nothing: there is nothing to list, and that is no error.
  std::string rows;
  EXPECT_TRUE(unsubscribed_topics(dir.file("sluice.yaml"), {}, &rows).empty()) << rows;
}

TEST(UnknownTopicsNats, LagListsJetStreamSubjectsThatHoldMessagesAndHaveNoSubscriber) {
  nats::testing::NatsServer server;
  ASSERT_TRUE(server.start()) << "nats-server (Debian package nats-server) did not start";
  TempDir dir;
  const std::string broker = "brokers:\n  nats: { kind: nats, url: \"nats://127.0.0.1:" +
                             std::to_string(server.port()) +
                             "\", jetstream: { stream: EVENTS, subjects: [\"events.>\"], create: true } }\n";
  auto function = [](const std::string& subject) {
    return "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: \"" + subject +
           "\" }], dead_letter: { topic: events.dlq } }\n";
  };
  dir.write("sluice.yaml", broker + function("events.in"));
  // The same deployment's files, with a function on another subject: publishing there
  // is no mistake, so nothing remembers the subject for `lag`.
  dir.write("other.yaml", broker + function("events.outside"));
  const std::string cfg = dir.file("sluice.yaml");
  auto typo = run_cli({"publish", "-c", cfg, "events.inn", "x", "--count", "2"});
  ASSERT_EQ(typo.exit_code, 0) << typo.err;
  EXPECT_NE(typo.err.find("warning: no function subscribes to topic 'events.inn'"),
            std::string::npos) << typo.err;
  ASSERT_EQ(run_cli({"publish", "-c", cfg, "events.in", "x"}).exit_code, 0);
  ASSERT_EQ(run_cli({"publish", "-c", dir.file("other.yaml"), "events.outside", "x", "--count", "4"})
                .exit_code, 0);
  std::string rows;
  auto listed = unsubscribed_topics(cfg, {}, &rows);
  EXPECT_EQ(listed, (std::map<std::string, int64_t>{{"events.inn", 2}})) << rows;
  listed = unsubscribed_topics(cfg, {"--all"}, &rows);
  EXPECT_EQ(listed, (std::map<std::string, int64_t>{{"events.inn", 2}, {"events.outside", 4}}))
      << rows;
}

// A broker that does not answer is a note, never a failed `lag`.
TEST(UnknownTopicsNats, LagWithTheServerDownIsANoteAndExitsZero) {
  TempDir dir;
  dir.write("sluice.yaml", "brokers:\n  nats: { kind: nats, url: \"nats://127.0.0.1:" +
                               std::to_string(free_port()) +
                               "\", jetstream: { stream: EVENTS, subjects: [\"events.>\"] } }\n"
                               "functions:\n  - { name: f, command: [cat], subscribe: [{ topic: "
                               "events.in }], dead_letter: { topic: events.dlq } }\n");
  auto r = run_cli({"lag", "-c", dir.file("sluice.yaml"), "-o", "json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("note: broker nats not opened"), std::string::npos) << r.err;
  const auto rows = nlohmann::json::parse(r.out, nullptr, false);
  ASSERT_TRUE(rows.is_array()) << r.out;
  ASSERT_EQ(rows.size(), 1u) << r.out;
  EXPECT_TRUE(rows[0]["lag"].is_null()) << r.out;  // unknown, not 0
}

}  // namespace
}  // namespace sluice::e2e
