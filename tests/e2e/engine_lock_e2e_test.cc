// End-to-end: one consuming engine per local database. A second `sluice run` on the
// same file exits 1 at once naming the file and the holder's pid; `publish` and the
// `dlq` verbs work beside the running engine; kill -9 releases the lock.
#include <gtest/gtest.h>
#include <signal.h>

#include "harness.h"

namespace sluice::e2e {
namespace {

std::string config_on(uint16_t port) {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
         "functions:\n"
         "  - name: rec\n"
         "    command: [sh, -c, 'cat >> processed.log; echo >> processed.log']\n"
         "    subscribe: [{ topic: in }]\n";
}

TEST(EngineLock, SecondRunOnTheSameDatabaseExitsOneNamingFileAndPid) {
  TempDir dir;
  const uint16_t port_a = free_port(), port_b = free_port();
  dir.write("a.yaml", config_on(port_a));
  dir.write("b.yaml", config_on(port_b));  // another listener, the same database
  Engine a(dir.file("a.yaml"), dir.file("a.log"));
  ASSERT_TRUE(a.wait_ready(port_a));

  Engine b(dir.file("b.yaml"), dir.file("b.log"));
  EXPECT_EQ(b.wait_exit(10s), 1) << dir.read("b.log");
  const std::string said = dir.read("b.log");
  EXPECT_NE(said.find(dir.file("data/q.db")), std::string::npos) << said;
  EXPECT_NE(said.find("pid " + std::to_string(a.pid())), std::string::npos) << said;

  // The other verbs do not take the lock.
  auto pub = run_cli({"publish", "-c", dir.file("a.yaml"), "in", "hello"});
  EXPECT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_TRUE(eventually([&] { return lines(dir.file("processed.log")).size() == 1; }));
  auto dlq = run_cli({"dlq", "list", "-c", dir.file("a.yaml")});
  EXPECT_EQ(dlq.exit_code, 0) << dlq.err;

  // kill -9 releases it: the next engine starts.
  a.signal(SIGKILL);
  a.wait_exit(10s);
  Engine c(dir.file("b.yaml"), dir.file("c.log"));
  EXPECT_TRUE(c.wait_ready(port_b)) << dir.read("c.log");
  EXPECT_EQ(lines(dir.file("processed.log")).size(), 1u) << "processed twice";
}

}  // namespace
}  // namespace sluice::e2e
