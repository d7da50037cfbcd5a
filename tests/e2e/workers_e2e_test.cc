// End-to-end: function processes against a killed engine. After `kill -9` of sluice
// no process of any runtime (exec, stdio, http) may remain (workers/README.md
// "Isolation"; docs/SECURITY.md "Function processes").
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>

#include "harness.h"

namespace sluice::e2e {
namespace {

// A marker no other process on the machine carries in its environment.
std::string unique_marker() {
  std::random_device rd;
  return "sluice-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(rd());
}

std::string read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Pids of live (not zombie) processes whose environment holds SLUICE_E2E_MARK=<marker>.
std::vector<pid_t> marked_processes(const std::string& marker) {
  std::vector<pid_t> out;
  const std::string needle = "SLUICE_E2E_MARK=" + marker + std::string(1, '\0');
  DIR* d = ::opendir("/proc");
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    char* end = nullptr;
    long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    const std::string dir = std::string("/proc/") + e->d_name;
    std::string env = read_all(dir + "/environ");
    if (env.find(needle) == std::string::npos) continue;
    std::string stat = read_all(dir + "/stat");  // "pid (comm) S ..."
    size_t rp = stat.rfind(')');
    if (rp != std::string::npos && rp + 2 < stat.size() && stat[rp + 2] == 'Z') continue;
    out.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(d);
  return out;
}

std::string config_for(uint16_t port, const std::string& marker, const std::string& runtime,
                       const std::string& extra) {
  return "brokers:\n"
         "  local: { kind: local, path: ./data/q.db, partitions: 1 }\n"
         "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
         "functions:\n"
         "  - name: victim\n"
         "    runtime: " + runtime + "\n"
         "    command: [sleep, '300']\n"
         "    env: { SLUICE_E2E_MARK: '" + marker + "' }\n"
         "    timeout: 120s\n" + extra +
         "    subscribe: [{ broker: local, topic: in }]\n";
}

// Starts sluice with one function whose process sleeps (never answers), waits until
// that process runs, kills sluice with SIGKILL and expects the process gone.
void expect_no_survivor(const std::string& runtime, const std::string& extra, bool publish) {
  TempDir dir;
  const uint16_t port = free_port();
  const std::string marker = unique_marker();
  dir.write("sluice.yaml", config_for(port, marker, runtime, extra));
  Engine engine(dir.file("sluice.yaml"), dir.file("sluice.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << read_all(dir.file("sluice.log"));
  if (publish) {
    HttpClient c(port);
    ASSERT_EQ(c.post("/topics/in", "x").status, 202);
  }
  ASSERT_TRUE(eventually([&] { return !marked_processes(marker).empty(); }))
      << read_all(dir.file("sluice.log"));
  engine.signal(SIGKILL);
  engine.wait_exit();
  const bool gone = eventually([&] { return marked_processes(marker).empty(); }, 10s);
  const auto left = marked_processes(marker);
  for (pid_t p : left) ::kill(p, SIGKILL);  // leave nothing behind for the next test
  EXPECT_TRUE(gone) << left.size() << " process(es) of the " << runtime
                    << " function outlived sluice";
}

TEST(WorkersE2E, ExecChildDiesWithKilledEngine) {
  expect_no_survivor("exec", "", true);
}

TEST(WorkersE2E, StdioWorkerDiesWithKilledEngine) {
  // The worker never says Hello and never reads stdin: EOF would not stop it.
  expect_no_survivor("stdio", "    start_timeout: 120s\n", false);
}

TEST(WorkersE2E, HttpWorkerDiesWithKilledEngine) {
  expect_no_survivor("http", "    start_timeout: 120s\n", false);
}

// A function flooding stderr: what is over its budget is dropped, and the metric
// says how much.
TEST(WorkersE2E, StderrDroppedOverTheBudgetShowsInTheMetrics) {
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml",
            "brokers:\n"
            "  local: { kind: local, path: ./data/q.db, partitions: 1 }\n"
            "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
            "functions:\n"
            "  - name: chatty\n"
            "    runtime: exec\n"
            "    command: [sh, -c, 'head -c 200000 /dev/zero | tr \"\\0\" x | fold -w 99 >&2']\n"
            "    subscribe: [{ broker: local, topic: in }]\n");
  Engine engine(dir.file("sluice.yaml"), dir.file("sluice.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << read_all(dir.file("sluice.log"));
  HttpClient c(port);
  ASSERT_EQ(c.post("/topics/in", "x").status, 202);
  const std::string series =
      "sluice_worker_output_dropped_bytes_total{function=\"chatty\",stream=\"stderr\"} ";
  std::string value;
  ASSERT_TRUE(eventually([&] {
    const std::string text = c.get("/metrics").body;
    size_t at = text.find(series);
    if (at == std::string::npos) return false;
    value = text.substr(at + series.size(), text.find('\n', at) - at - series.size());
    return value != "0";
  }, 30s)) << value;
  EXPECT_GT(std::stod(value), 100000.0);  // 200000 bytes written, 64 KiB logged
  const std::string log = read_all(dir.file("sluice.log"));
  EXPECT_NE(log.find("bytes of stderr (more than 65536 bytes in 60000 ms)"), std::string::npos);
}

}  // namespace
}  // namespace sluice::e2e
