// `sluice publish` to a NATS subject no function subscribes to: published, with a
// warning (NATS may have readers other than sluice); a matching wildcard is no warning.
#include <gtest/gtest.h>

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
  auto ok = run_cli({"publish", "-c", dir.file("sluice.yaml"), "events.in", "x"});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.err.find("warning"), std::string::npos) << ok.err;
}

}  // namespace
}  // namespace sluice::e2e
