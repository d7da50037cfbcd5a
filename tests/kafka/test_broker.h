// One real Kafka broker for a test process: tests/kafka/kafka.sh on a free loopback
// port in a temp dir, or the broker named by SLUICE_TEST_KAFKA_BOOTSTRAP when it is
// set (then nothing is started or stopped here). Header-only and free of sluice and
// gtest types, so the adapter tests and the e2e tests share it; each wraps it in a
// gtest global Environment.
//
// Not thread-safe: start() and stop() run on the test's main thread.
#pragma once

#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <string>

namespace sluice::testsupport {

class KafkaTestBroker {
 public:
  // `kafka_sh`: the path of tests/kafka/kafka.sh.
  explicit KafkaTestBroker(std::string kafka_sh) : kafka_sh_(std::move(kafka_sh)) {}

  // Returns "" on success (bootstrap() is set) or why it failed. skip_reason() is
  // set instead when the tools are missing (the tests skip, saying why).
  std::string start() {
    if (const char* b = getenv("SLUICE_TEST_KAFKA_BOOTSTRAP"); b && *b) {
      bootstrap_ = b;
      return "";
    }
    for (const char* tool : {"java", "mvn", "kcat"})
      if (!have(tool)) {
        skip_ = std::string("no real Kafka: '") + tool +
                "' is not installed (tests/kafka/kafka.sh needs java, mvn and kcat)";
        return "";
      }
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-kafka-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) return "mkdtemp failed";
    dir_ = tmpl;
    const int port = free_port();
    if (port <= 0) return "no free port";
    int st = 0;
    std::string out =
        run(kafka_sh_ + " start " + dir_ + " " + std::to_string(port) + " 2>&1", &st);
    if (st != 0) return "tests/kafka/kafka.sh start failed:\n" + out;
    bootstrap_ = "127.0.0.1:" + std::to_string(port);
    return "";
  }

  // Stops the broker started by start() (none when SLUICE_TEST_KAFKA_BOOTSTRAP was
  // used) and removes its directory unless SLUICE_TEST_KEEP is set.
  void stop() {
    if (dir_.empty()) return;
    int st = 0;
    run(kafka_sh_ + " stop " + dir_ + " 2>&1", &st);
    std::error_code ec;
    if (st == 0 && !getenv("SLUICE_TEST_KEEP")) std::filesystem::remove_all(dir_, ec);
    dir_.clear();
  }

  const std::string& bootstrap() const { return bootstrap_; }
  const std::string& skip_reason() const { return skip_; }

  // Runs `cmd` with /bin/sh; returns its stdout, the wait status in *status.
  static std::string run(const std::string& cmd, int* status) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) {
      *status = -1;
      return out;
    }
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    *status = pclose(p);
    return out;
  }

  static bool have(const char* tool) {
    int st = 0;
    run(std::string("command -v ") + tool + " >/dev/null 2>&1", &st);
    return st == 0;
  }

  static int free_port() {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    int port = 0;
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
    close(fd);
    return port;
  }

 private:
  const std::string kafka_sh_;
  std::string bootstrap_, skip_, dir_;
};

}  // namespace sluice::testsupport
