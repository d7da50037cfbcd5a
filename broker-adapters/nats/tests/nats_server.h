// Test helpers: a real nats-server per fixture (own store dir, free loopback port,
// started with posix_spawn and killed in TearDown), a collecting SourceListener and
// polling with deadlines (never a sleep as synchronisation).
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "broker-adapters/nats/nats_broker.h"
#include "config/config.h"
#include "core/broker.h"
#include "tests/support/collector.h"
#include "tests/support/support.h"

extern char** environ;

namespace sluice::nats::testing {

using namespace std::chrono_literals;
inline constexpr auto kDeadline = std::chrono::seconds(20);

// Polling, free ports, readiness probes: tests/support (shared by every test binary).
inline bool eventually(const std::function<bool()>& cond, std::chrono::milliseconds limit = kDeadline) {
  return testsupport::eventually(cond, limit, 10ms);
}
using testsupport::free_port;
using testsupport::port_accepts;

// One nats-server -js process with a private store directory.
class NatsServer {
 public:
  NatsServer() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-nats-XXXXXX").string();
    if (mkdtemp(tmpl.data()) != nullptr) dir_ = tmpl;
    port_ = free_port();
  }
  ~NatsServer() {
    kill_now();
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  // Starts nats-server and waits until *this* process says it is ready (its own log
  // line, not just an open port: with tests running in parallel, another test's
  // server restarted on a port freed a moment earlier would answer in its place).
  // The first start moves to another free port if the one chosen was taken; a
  // restart keeps its port (clients reconnect to it) and fails if it cannot.
  bool start() {
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (spawn_and_wait_ready()) {
        started_ = true;
        return true;
      }
      kill_now();
      if (started_) return false;
      port_ = free_port();
    }
    return false;
  }
  // Graceful stop (SIGTERM: nats-server flushes its file store); start() again
  // brings it back on the same port and store.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  std::string log_file() const { return dir_ + "/server.log"; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

 private:
  size_t ready_lines() const {
    std::ifstream in(log_file());
    size_t n = 0;
    for (std::string line; std::getline(in, line);)
      if (line.find("Server is ready") != std::string::npos) ++n;
    return n;
  }
  bool running() {
    if (pid_ <= 0) return false;
    int st = 0;
    if (waitpid(pid_, &st, WNOHANG) == 0) return true;
    pid_ = -1;  // exited (e.g. the port was taken) and reaped
    return false;
  }
  bool spawn_and_wait_ready() {
    const std::string port = std::to_string(port_), store = dir_ + "/store";
    std::vector<std::string> args = {"nats-server", "-js", "-sd", store, "-a", "127.0.0.1",
                                     "-p", port, "-l", log_file()};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const size_t before = ready_lines();
    if (posix_spawnp(&pid_, "nats-server", nullptr, nullptr, argv.data(), environ) != 0) {
      pid_ = -1;
      return false;
    }
    bool ready = false;
    eventually([&] {
      ready = running() && ready_lines() > before;
      return ready || pid_ <= 0;
    }, 10s);
    return ready && port_accepts(port_);
  }

  std::string dir_;
  int port_ = -1;
  pid_t pid_ = -1;
  bool started_ = false;
};

inline BrokerConfig js_config(const NatsServer& s, bool create = true,
                              std::string stream = "EVENTS",
                              std::vector<std::string> subjects = {"events.>"}) {
  BrokerConfig c;
  c.name = "nats";
  c.settings = NatsBrokerConfig{};
  c.nats().urls = {s.url()};
  c.nats().jetstream = JetStreamConfig{std::move(stream), std::move(subjects), create};
  c.nats().options = {{"reconnect_wait", "50ms"}};
  return c;
}

inline std::unique_ptr<NatsBroker> open_broker(const BrokerConfig& c) {
  auto b = NatsBroker::open(c);
  EXPECT_TRUE(b) << (b ? "" : b.error().message);
  return b ? std::move(b).value() : nullptr;
}

inline Event make_event(std::string id, std::string data = {}, std::string key = {}) {
  Event e;
  e.id = std::move(id);
  e.source = "test";
  e.type = "test.event";
  e.data = std::move(data);
  e.key = std::move(key);
  return e;
}

// Publishes and waits for the completion.
inline Result<PublishAck> publish_sync(Sink& sink, const std::string& topic, Event ev) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<PublishAck>> got;
  sink.publish(topic, std::move(ev), [&](Result<PublishAck> r) {
    std::lock_guard lk(mu);
    got = std::move(r);
    cv.notify_all();
  });
  std::unique_lock lk(mu);
  if (!cv.wait_for(lk, kDeadline, [&] { return got.has_value(); }))
    return Error{Errc::timeout, "no publish completion"};
  return std::move(*got);
}

// The one collecting SourceListener of the adapter tests (tests/support/collector.h):
// held() / wait_held() / take() are the deliveries not taken yet.
using testsupport::Collector;

// A fixture with its own server.
class NatsTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_TRUE(server_.start()) << "nats-server did not start"; }
  void TearDown() override { server_.kill_now(); }
  NatsServer server_;
};

}  // namespace sluice::nats::testing
