// Fault soak: load through HTTP into the local queue, Kafka and NATS JetStream while
// faults are injected — function processes killed, sluice killed -9 and restarted,
// the broker restarted, the queue's disk filled, file descriptors exhausted — then
// asserts that every acknowledged event (202) was processed, that duplicates stay
// within the in-flight bound, and prints what it did.
//
// Bounded in time: each scenario loads for SLUICE_SOAK_SECONDS (default 12; the test
// command runs the default, `./sluice.sh soak [SECONDS]` a longer form), then waits
// for the backlog to drain.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <thread>

#include <boost/asio/ip/tcp.hpp>

#include "broker-adapters/nats/tests/nats_server.h"
#include "tests/e2e/harness.h"

namespace sluice::e2e {
namespace {

namespace fs = std::filesystem;

std::chrono::seconds soak_seconds() {
  const char* s = std::getenv("SLUICE_SOAK_SECONDS");
  const int n = s ? std::atoi(s) : 0;
  return std::chrono::seconds(n > 0 ? n : 12);
}

// The function of every scenario: one line per processed event, its id.
constexpr const char* kFunction = R"(  - name: rec
    runtime: exec
    command: [sh, -c, 'echo "$CE_ID" >> processed.log']
    concurrency: 8
    timeout: 10s
    retry: { max_attempts: 1000, initial: 10ms, max: 200ms }
)";
constexpr size_t kConcurrency = 8;
// Events a function may hold (dispatcher budget: max(2 * concurrency, 256)).
constexpr size_t kBudget = std::max<size_t>(2 * kConcurrency, 256);

// Whether `pid` runs (a zombie does not: it died and waits to be reaped).
bool alive(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return false;
  const auto close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() && stat[close + 2] != 'Z';
}

// pids of the processes whose parent is `parent` (from /proc).
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  for (const auto& e : fs::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || !std::isdigit(static_cast<unsigned char>(name[0]))) continue;
    std::ifstream in(e.path() / "stat");
    std::string stat;
    std::getline(in, stat);
    const auto close = stat.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return out;
}

struct Tally {
  std::atomic<uint64_t> sent{0}, acked{0}, refused{0}, unreachable{0};
  std::atomic<uint64_t> worker_kills{0}, engine_kills{0}, broker_restarts{0};
  std::atomic<uint64_t> disk_fills{0}, fd_floods{0};
  std::mutex mu;
  std::vector<std::string> ids;  // acknowledged event ids
  std::map<int, uint64_t> statuses;
};

// One scenario: an engine (restarted as faults demand), publishers and a fault plan.
class Soak {
 public:
  // `brokers`: the YAML `brokers:` block; `broker`: the one published to and read.
  Soak(std::string brokers, std::string broker, std::string topic,
       int max_open_files = 0)
      : brokers_(std::move(brokers)), broker_(std::move(broker)), topic_(std::move(topic)),
        max_open_files_(max_open_files), port_(free_port()) {
    dir_.write("sluice.yaml", brokers_ + "http: { listen: 127.0.0.1:" + std::to_string(port_) +
                                  " }\nengine: { drain_timeout: 5s }\nfunctions:\n" + kFunction +
                                  "    subscribe: [{ broker: " + broker_ + ", topic: " + topic_ +
                                  ", ordering: key }]\n");
  }
  ~Soak() { stop_publishers(); }

  const TempDir& dir() const { return dir_; }
  uint16_t port() const { return port_; }
  Tally& tally() { return t_; }
  pid_t engine_pid() const { return engine_ ? engine_->pid() : -1; }

  bool start_engine() {
    engine_ = std::make_unique<Engine>(dir_.file("sluice.yaml"), dir_.file("engine.log"),
                                       max_open_files_);
    return engine_->wait_ready(port_, 60s);
  }
  // kill -9, wait for the exit, check that no function process outlived it, restart.
  bool kill_engine_and_restart() {
    const pid_t pid = engine_->pid();
    const auto kids = children_of(pid);
    engine_->signal(SIGKILL);
    EXPECT_EQ(engine_->wait_exit(), 128 + SIGKILL);
    ++t_.engine_kills;
    for (pid_t k : kids)
      EXPECT_TRUE(eventually([&] { return !alive(k); }, 10s))
          << "function process " << k << " outlived the killed engine";
    return start_engine();
  }
  // Kills one running function process (exec children live briefly: a few tries).
  void kill_a_worker(std::mt19937& rng) {
    for (int i = 0; i < 100; ++i) {
      auto kids = children_of(engine_->pid());
      if (!kids.empty() && ::kill(kids[rng() % kids.size()], SIGKILL) == 0) {
        ++t_.worker_kills;
        return;
      }
      std::this_thread::sleep_for(2ms);
    }
  }

  // `rate` events per second in all, from two keep-alive connections.
  void start_publishers(int rate) {
    for (int c = 0; c < 2; ++c)
      publishers_.emplace_back([this, rate, c] {
        std::unique_ptr<HttpClient> client;
        const auto every = std::chrono::microseconds(2'000'000 / rate);
        auto next = std::chrono::steady_clock::now();
        for (uint64_t i = 0; !stop_; ++i) {
          next += every;
          std::this_thread::sleep_until(next);
          const std::string body = "soak-" + std::to_string(c) + "-" + std::to_string(i);
          try {
            if (!client) client = std::make_unique<HttpClient>(port_);
            ++t_.sent;
            auto r = client->post("/topics/" + topic_ + "?broker=" + broker_, body,
                                  {{"Content-Type", "text/plain"},
                                   {"ce-partitionkey", "k" + std::to_string(i % 64)}});
            std::lock_guard lk(t_.mu);
            ++t_.statuses[r.status];
            if (r.status == 202) {
              t_.ids.push_back(nlohmann::json::parse(r.body).at("id").get<std::string>());
              ++t_.acked;
            } else {
              ++t_.refused;
            }
          } catch (const std::exception&) {
            // Engine down or connection dropped: nothing was acknowledged.
            ++t_.unreachable;
            client.reset();
            std::this_thread::sleep_for(20ms);
            next = std::chrono::steady_clock::now();
          }
        }
      });
  }
  void stop_publishers() {
    stop_ = true;
    for (auto& p : publishers_) p.join();
    publishers_.clear();
  }

  // Waits until every acknowledged id was processed, then drains with SIGTERM and
  // checks the duplicate bound. `restarts`: engine kills + broker restarts.
  void verify(const std::string& name) {
    stop_publishers();
    std::set<std::string> want(t_.ids.begin(), t_.ids.end());
    std::set<std::string> have;
    size_t total = 0;
    const bool all = eventually(
        [&] {
          auto got = lines(dir_.file("processed.log"));
          total = got.size();
          have = std::set<std::string>(got.begin(), got.end());
          return std::includes(have.begin(), have.end(), want.begin(), want.end());
        },
        180s, 200ms);
    std::vector<std::string> missing;
    std::set_difference(want.begin(), want.end(), have.begin(), have.end(),
                        std::back_inserter(missing));
    engine_->signal(SIGTERM);
    EXPECT_EQ(engine_->wait_exit(30s), 0) << "engine did not drain and exit 0";
    // Events processed more than once: only those in flight when a process died.
    const size_t dups = total - have.size();
    const uint64_t restarts = t_.engine_kills + t_.broker_restarts;
    const uint64_t bound = (restarts + 1) * 2 * kBudget + t_.worker_kills * 2;
    std::string statuses;
    for (auto [s, n] : t_.statuses) statuses += " " + std::to_string(s) + "x" + std::to_string(n);
    std::printf(
        "soak %s: %llds load; sent %llu, acknowledged %llu, refused %llu (%s ), "
        "unreachable %llu; faults: %llu worker kills, %llu engine kill -9s, %llu broker "
        "restarts, %llu disk fills, %llu fd floods; processed %zu distinct, %zu duplicates "
        "(bound %llu), %zu acknowledged but missing\n",
        name.c_str(), static_cast<long long>(soak_seconds().count()),
        (unsigned long long)t_.sent, (unsigned long long)t_.acked,
        (unsigned long long)t_.refused, statuses.c_str(), (unsigned long long)t_.unreachable,
        (unsigned long long)t_.worker_kills, (unsigned long long)t_.engine_kills,
        (unsigned long long)t_.broker_restarts, (unsigned long long)t_.disk_fills,
        (unsigned long long)t_.fd_floods, have.size(), dups, (unsigned long long)bound,
        missing.size());
    EXPECT_TRUE(all) << missing.size() << " acknowledged events were never processed, e.g. "
                     << (missing.empty() ? "" : missing.front()) << "\n"
                     << dir_.read("engine.log").substr(0, 4000);
    EXPECT_GT(t_.acked.load(), 0u) << "nothing was acknowledged: the soak tested nothing";
    EXPECT_LE(dups, bound);
    ::testing::Test::RecordProperty("acknowledged", static_cast<int>(t_.acked));
    ::testing::Test::RecordProperty("duplicates", static_cast<int>(dups));
  }

  // Runs `fault` every `every` until the load time has passed.
  void run_faults(std::chrono::milliseconds every, const std::function<void(int)>& fault) {
    const auto end = std::chrono::steady_clock::now() + soak_seconds();
    for (int round = 0; std::chrono::steady_clock::now() < end; ++round) {
      std::this_thread::sleep_for(every);
      fault(round);
    }
  }

 private:
  TempDir dir_;
  std::string brokers_, broker_, topic_;
  int max_open_files_;
  uint16_t port_;
  std::unique_ptr<Engine> engine_;
  std::vector<std::thread> publishers_;
  std::atomic<bool> stop_{false};
  Tally t_;
};

const std::string kLocalBroker = "brokers:\n  local: { kind: local, path: ./data/q.db, partitions: 4 }\n";

TEST(Soak, LocalQueueThroughWorkerKillsAndEngineKills) {
  Soak soak(kLocalBroker, "local", "in");
  ASSERT_TRUE(soak.start_engine()) << soak.dir().read("engine.log");
  soak.start_publishers(300);
  std::mt19937 rng(42);
  soak.run_faults(700ms, [&](int round) {
    if (round % 6 == 5)
      ASSERT_TRUE(soak.kill_engine_and_restart()) << soak.dir().read("engine.log");
    else
      soak.kill_a_worker(rng);
  });
  soak.verify("local");
  EXPECT_GT(soak.tally().engine_kills.load(), 0u);
}

// The queue's disk is a small tmpfs that fills up: publishers get 503 + Retry-After
// while it is full, nothing acknowledged is lost, and intake recovers once space returns.
TEST(Soak, LocalQueueThroughAFullDisk) {
  Soak soak(kLocalBroker, "local", "in");
  const std::string data = soak.dir().file("data");
  fs::create_directories(data);
  if (::mount("tmpfs", data.c_str(), "tmpfs", 0, "size=6m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno)
                 << "): the full-disk soak needs root (CAP_SYS_ADMIN)";
  struct Unmount {
    std::string p;
    ~Unmount() { ::umount2(p.c_str(), MNT_DETACH); }
  } unmount{data};
  ASSERT_TRUE(soak.start_engine()) << soak.dir().read("engine.log");
  soak.start_publishers(300);
  const std::string filler = data + "/filler";
  soak.run_faults(2s, [&](int round) {
    if (round % 2 == 0) {
      // Fill what is left, hold it a moment, give it back.
      std::ofstream f(filler, std::ios::binary);
      const std::string block(64 << 10, 'x');
      while (f.write(block.data(), block.size())) f.flush();
      ++soak.tally().disk_fills;
      HttpClient c(soak.port());
      EXPECT_TRUE(eventually([&] { return c.get("/readyz").status == 503; }, 10s))
          << "/readyz stayed ready while the queue's disk was full";
    } else {
      fs::remove(filler);
    }
  });
  fs::remove(filler);
  soak.verify("local-full-disk");
  std::lock_guard lk(soak.tally().mu);
  EXPECT_GT(soak.tally().statuses[503], 0u) << "the disk never filled up";
  EXPECT_EQ(soak.tally().statuses[500], 0u) << "a full disk must be 503, not 500";
}

// sluice under a low file-descriptor limit while floods of idle connections arrive:
// it refuses what it cannot take, never dies, and loses nothing it acknowledged.
TEST(Soak, LocalQueueThroughFdExhaustion) {
  Soak soak(kLocalBroker, "local", "in", /*max_open_files=*/256);
  ASSERT_TRUE(soak.start_engine()) << soak.dir().read("engine.log");
  const pid_t pid = soak.engine_pid();
  soak.start_publishers(200);
  soak.run_faults(1500ms, [&](int) {
    boost::asio::io_context io;
    std::vector<std::unique_ptr<boost::asio::ip::tcp::socket>> idle;
    for (int i = 0; i < 400; ++i) {
      auto s = std::make_unique<boost::asio::ip::tcp::socket>(io);
      boost::system::error_code ec;
      s->connect({boost::asio::ip::make_address("127.0.0.1"), soak.port()}, ec);
      if (ec) break;
      idle.push_back(std::move(s));
    }
    ++soak.tally().fd_floods;
    std::this_thread::sleep_for(700ms);
    ASSERT_TRUE(alive(pid)) << "sluice died under fd exhaustion:\n"
                                 << soak.dir().read("engine.log").substr(0, 4000);
  });
  EXPECT_EQ(soak.engine_pid(), pid) << "the engine had to be restarted";
  soak.verify("local-fd-exhaustion");
}

TEST(Soak, NatsJetStreamThroughServerRestartsAndEngineKills) {
  nats::testing::NatsServer server;
  ASSERT_TRUE(server.start()) << "nats-server (Debian package nats-server) did not start";
  Soak soak("brokers:\n  nats: { kind: nats, url: \"" + server.url() +
                "\", jetstream: { stream: SOAK, subjects: [\"soak.>\", \"rec.dlq\"], create: true } }\n",
            "nats", "soak.in");
  ASSERT_TRUE(soak.start_engine()) << soak.dir().read("engine.log");
  soak.start_publishers(200);
  std::mt19937 rng(7);
  soak.run_faults(1s, [&](int round) {
    if (round % 5 == 2) {
      server.kill_now();
      std::this_thread::sleep_for(300ms);
      ASSERT_TRUE(server.start()) << "nats-server did not restart";
      ++soak.tally().broker_restarts;
    } else if (round % 5 == 4) {
      ASSERT_TRUE(soak.kill_engine_and_restart()) << soak.dir().read("engine.log");
    } else {
      soak.kill_a_worker(rng);
    }
  });
  soak.verify("nats");
}

// A dedicated Kafka broker (not the suite's shared one): the soak restarts it.
TEST(Soak, KafkaThroughBrokerRestartAndEngineKills) {
  const std::string kafka_sh = std::string(SLUICE_SOURCE_DIR) + "/tests/kafka/kafka.sh";
  for (const char* tool : {"java", "mvn", "kcat"})
    if (std::system((std::string("command -v ") + tool + " >/dev/null 2>&1").c_str()) != 0)
      GTEST_SKIP() << "no real Kafka: '" << tool << "' is not installed";
  TempDir kdir;
  const uint16_t kport = free_port();
  const std::string start = kafka_sh + " start " + kdir.path() + "/k " + std::to_string(kport) +
                            " >" + kdir.path() + "/start.log 2>&1";
  const std::string stop = kafka_sh + " stop " + kdir.path() + "/k >/dev/null 2>&1";
  ASSERT_EQ(std::system(start.c_str()), 0) << kdir.read("start.log");
  struct Stop {
    std::string cmd;
    ~Stop() { (void)std::system(cmd.c_str()); }
  } stopper{stop};
  Soak soak("brokers:\n  kafka: { kind: kafka, bootstrap: \"127.0.0.1:" + std::to_string(kport) +
                "\", group: soak, options: { \"session.timeout.ms\": \"6000\", "
                "\"heartbeat.interval.ms\": \"500\" } }\n",
            "kafka", "soak-in");
  ASSERT_TRUE(soak.start_engine()) << soak.dir().read("engine.log");
  soak.start_publishers(200);
  std::mt19937 rng(9);
  bool restarted = false;
  soak.run_faults(1s, [&](int round) {
    if (round == 3 && !restarted) {
      restarted = true;
      ASSERT_EQ(std::system(stop.c_str()), 0);
      ASSERT_EQ(std::system(start.c_str()), 0) << kdir.read("start.log");
      ++soak.tally().broker_restarts;
    } else if (round % 4 == 1) {
      ASSERT_TRUE(soak.kill_engine_and_restart()) << soak.dir().read("engine.log");
    } else {
      soak.kill_a_worker(rng);
    }
  });
  soak.verify("kafka");
}

}  // namespace
}  // namespace sluice::e2e
