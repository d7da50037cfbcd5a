// End-to-end: each SDK's echo example (sdk/*/examples/echo) as a `stdio` function
// through the real sluice binary: queued events, the output topic, emitted events,
// a rejected event in the dead-letter queue, and a synchronous invoke.
//
// Needs what `sdk/test.sh` installs (the Python venv, node_modules); the Go example
// is built here with `go build` when missing. `./sluice.sh test` runs sdk/test.sh
// before this suite.
#include <gtest/gtest.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <signal.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "harness.h"

namespace sluice::e2e {
namespace {

const std::string kSdk = std::string(SLUICE_SOURCE_DIR) + "/sdk";

bool exists(const std::string& p) {
  struct stat st{};
  return ::stat(p.c_str(), &st) == 0;
}

struct Lang {
  std::string name;
  std::vector<std::string> command;
  std::string needs;  // a file that must exist, and how to get it
  std::string how;
};

std::vector<Lang> langs() {
  return {
      {"python",
       {kSdk + "/python/.venv/bin/python", kSdk + "/python/examples/echo/main.py"},
       kSdk + "/python/.venv/bin/python",
       "run sdk/test.sh (it makes sdk/python/.venv)"},
      {"python-async",
       {kSdk + "/python/.venv/bin/python", kSdk + "/python/examples/echo/main_async.py"},
       kSdk + "/python/.venv/bin/python",
       "run sdk/test.sh (it makes sdk/python/.venv)"},
      {"node",
       {"node", kSdk + "/node/examples/echo/main.js"},
       kSdk + "/node/node_modules",
       "run sdk/test.sh (it runs npm ci in sdk/node)"},
      {"go", {kSdk + "/go/.bin/echo"}, kSdk + "/go/.bin/echo", "go build failed"},
  };
}

class SdkEndToEnd : public ::testing::TestWithParam<Lang> {
 public:
  static void SetUpTestSuite() {
    if (!exists(kSdk + "/go/.bin/echo")) {
      auto r = run_cmd({"sh", "-c", "cd '" + kSdk + "/go' && go build -o .bin/echo ./examples/echo"});
      EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
    }
  }
};

std::string yaml_list(const std::vector<std::string>& v) {
  std::string out = "[";
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + nlohmann::json(v[i]).dump();
  return out + "]";
}

TEST_P(SdkEndToEnd, EchoExampleRunsAsAStdioFunction) {
  const Lang& lang = GetParam();
  ASSERT_TRUE(exists(lang.needs)) << lang.needs << " is missing: " << lang.how;
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml",
            "brokers:\n"
            "  local: { kind: local, path: ./data/q.db, partitions: 2 }\n"
            "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
            "functions:\n"
            "  - name: echo\n"
            "    runtime: stdio\n"
            "    command: " + yaml_list(lang.command) + "\n"
            "    env: { HOME: " + dir.path() + " }\n"
            "    concurrency: 8\n"
            "    subscribe: [{ broker: local, topic: in, ordering: none }]\n"
            "    output: { broker: local, topic: out }\n"
            "    retry: { max_attempts: 2, initial: 10ms, max: 20ms }\n"
            "  - name: collect\n"
            "    runtime: exec\n"
            "    command: [sh, -c, 'printf \"%s %s\\n\" \"$CE_TYPE\" \"$(cat)\" >> out.log']\n"
            "    subscribe: [{ broker: local, topic: out, ordering: none }]\n");
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  HttpClient c(port);
  const int n = 50;
  for (int i = 0; i < n; ++i)
    ASSERT_EQ(c.post("/topics/in", "hello-" + std::to_string(i), {{"Content-Type", "text/plain"}}).status, 202);
  ASSERT_EQ(c.post("/topics/in", "fanout", {{"Content-Type", "text/plain"}}).status, 202);
  ASSERT_EQ(c.post("/topics/in", "poison", {{"Content-Type", "text/plain"}}).status, 202);

  ASSERT_TRUE(eventually([&] { return lines(dir.file("out.log")).size() >= n + 2; }))
      << lines(dir.file("out.log")).size() << " outputs\n" << dir.read("engine.log");
  std::multiset<std::string> got;
  for (const auto& l : lines(dir.file("out.log"))) got.insert(l);
  for (int i = 0; i < n; ++i)
    EXPECT_EQ(got.count("io.sluice.function.result HELLO-" + std::to_string(i)), 1u) << i;
  EXPECT_EQ(got.count("io.sluice.function.result FANOUT"), 1u);
  EXPECT_EQ(got.count("sluice.echo.fanout FANOUT"), 1u);  // the emitted event

  std::string listed;
  ASSERT_TRUE(eventually([&] {
    auto r = run_cli({"dlq", "list", "-c", dir.file("sluice.yaml"), "--json"});
    listed = r.out;
    return r.exit_code == 0 && !listed.empty() && listed != "\n";
  })) << dir.read("engine.log");
  auto j = nlohmann::json::parse(listed.substr(0, listed.find('\n')));
  EXPECT_EQ(j["function"], "echo");
  EXPECT_EQ(j["error_class"], "rejected");
  EXPECT_EQ(j["attempts"], 1);

  auto sync = c.post("/function/echo", "sync call", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(sync.status, 200) << sync.body;
  EXPECT_EQ(sync.body, "SYNC CALL");
  // The SDK's log frames land in sluice's log with the function name.
  EXPECT_NE(dir.read("engine.log").find("echo "), std::string::npos);
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

INSTANTIATE_TEST_SUITE_P(Sdks, SdkEndToEnd, ::testing::ValuesIn(langs()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (auto& ch : n)
                             if (ch == '-') ch = '_';
                           return n;
                         });

// A Python function scaled to zero keeps a worker template (workers/README.md "Worker
// templates"): the first event is served by a worker forked from it, and the template
// is no worker (none is listed until the event comes).
std::string pid_after(const std::string& log, const std::string& before, const std::string& after) {
  size_t at = log.find(after);
  if (at == std::string::npos) return "";
  size_t start = log.rfind(before, at);
  if (start == std::string::npos) return "";
  start += before.size();
  return log.substr(start, log.find(']', start) - start);
}

// {state, parent pid} from /proc/PID/stat; {"", ""} when there is no such process.
std::pair<std::string, std::string> proc_stat(const std::string& pid) {
  std::ifstream stat("/proc/" + pid + "/stat");
  std::string line;
  std::getline(stat, line);
  if (line.rfind(')') == std::string::npos) return {};
  std::istringstream rest(line.substr(line.rfind(')') + 2));
  std::string state, ppid;
  rest >> state >> ppid;
  return {state, ppid};
}

std::string parent_of(const std::string& pid) { return proc_stat(pid).second; }

bool gone(const std::string& pid) {  // or a zombie (the container's init may not reap)
  auto st = proc_stat(pid).first;
  return st.empty() || st == "Z" || st == "X";
}

TEST(SdkTemplate, AScaledToZeroPythonFunctionServesItsFirstEventFromTheTemplate) {
  const Lang lang = langs().front();
  ASSERT_TRUE(exists(lang.needs)) << lang.needs << " is missing: " << lang.how;
  TempDir dir;
  const uint16_t port = free_port();
  dir.write("sluice.yaml",
            "brokers:\n"
            "  local: { kind: local, path: ./data/q.db }\n"
            "http: { listen: 127.0.0.1:" + std::to_string(port) + " }\n"
            "functions:\n"
            "  - name: echo\n"
            "    runtime: stdio\n"
            "    command: " + yaml_list(lang.command) + "\n"
            "    workers: { min: 0, max: 1, idle_after: 60s }\n"
            "    subscribe: [{ broker: local, topic: in }]\n"
            "    output: { broker: local, topic: out }\n"
            "  - name: collect\n"
            "    runtime: exec\n"
            "    command: [sh, -c, 'cat >> out.log; echo >> out.log']\n"
            "    subscribe: [{ broker: local, topic: out }]\n");
  Engine engine(dir.file("sluice.yaml"), dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  ASSERT_TRUE(eventually([&] {
    return dir.read("engine.log").find("ready: new workers are forked") != std::string::npos;
  })) << dir.read("engine.log");
  const std::string tpl = pid_after(dir.read("engine.log"), "[template ", "ready: new workers");
  ASSERT_FALSE(tpl.empty());
  EXPECT_EQ(dir.read("engine.log").find("[worker "), std::string::npos);  // scaled to zero

  HttpClient c(port);
  ASSERT_EQ(c.post("/topics/in", "first", {{"Content-Type", "text/plain"}}).status, 202);
  ASSERT_TRUE(eventually([&] { return lines(dir.file("out.log")) == std::vector<std::string>{"FIRST"}; }))
      << dir.read("out.log") << dir.read("engine.log");
  const std::string worker = pid_after(dir.read("engine.log"), "[worker ", "ready (sluice-python/");
  ASSERT_FALSE(worker.empty()) << dir.read("engine.log");
  EXPECT_EQ(parent_of(worker), tpl);  // forked from the template, not spawned by sluice
  auto sync = c.post("/function/echo", "then sync", {{"Content-Type", "text/plain"}});
  EXPECT_EQ(sync.status, 200) << sync.body;
  EXPECT_EQ(sync.body, "THEN SYNC");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
  EXPECT_TRUE(eventually([&] { return gone(worker) && gone(tpl); }));
}

// `sluice new` writes a folder outside the checkout that builds with its build.sh and
// runs as printed, with its own sluice.yaml; nothing in it names the checkout.
class NewFunction : public ::testing::TestWithParam<std::string> {};

// Every file below `dir`, recursively, that holds `needle`.
std::vector<std::string> files_containing(const std::string& dir, const std::string& needle) {
  std::vector<std::string> hits;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path());
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().find(needle) != std::string::npos) hits.push_back(e.path().string());
  }
  return hits;
}

TEST_P(NewFunction, ScaffoldBuildsAndRunsAsPrinted) {
  const std::string lang = GetParam();
  TempDir dir;
  const std::string name = "fn-" + lang;
  const std::string fn_dir = dir.file(name);
  auto made = run_cli({"new", name, "--lang", lang, "--dir", dir.path()});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_NE(made.out.find("- name: " + name), std::string::npos) << made.out;
  EXPECT_NE(made.err.find("sh build.sh"), std::string::npos) << made.err;  // the next steps
  EXPECT_NE(made.err.find(" invoke " + name + " hello"), std::string::npos) << made.err;
  if (lang == "cpp") {
    EXPECT_NE(made.err.find("trusted code only"), std::string::npos) << made.err;
  }
  auto again = run_cli({"new", name, "--lang", lang, "--dir", dir.path()});
  EXPECT_EQ(again.exit_code, 2);  // never overwrites
  EXPECT_NE(again.err.find("exists already"), std::string::npos) << again.err;
  // Portable: no file names the checkout (the SDK is copied in).
  EXPECT_EQ(files_containing(fn_dir, SLUICE_SOURCE_DIR), std::vector<std::string>{});

  auto built = run_cmd({"sh", fn_dir + "/build.sh"});
  ASSERT_EQ(built.exit_code, 0) << built.out << built.err;
  // The generated sluice.yaml, as written but for a free port.
  const uint16_t port = free_port();
  std::string config = dir.read(name + "/sluice.yaml");
  const auto at = config.find("127.0.0.1:8080");
  ASSERT_NE(at, std::string::npos) << config;
  config.replace(at, 14, "127.0.0.1:" + std::to_string(port));
  dir.write(name + "/sluice.yaml", config);
  const std::string cfg = fn_dir + "/sluice.yaml";
  auto valid = run_cli({"validate", "-c", cfg});
  ASSERT_EQ(valid.exit_code, 0) << valid.err << config;
  Engine engine(cfg, dir.file("engine.log"));
  ASSERT_TRUE(engine.wait_ready(port)) << dir.read("engine.log");
  auto r = run_cli({"invoke", "-c", cfg, name, "hello"});
  EXPECT_EQ(r.exit_code, 0) << r.err << dir.read("engine.log");
  EXPECT_EQ(r.out, "HELLO");
  auto empty = HttpClient(port).post("/function/" + name, "");
  EXPECT_EQ(empty.status, 422) << empty.body;  // the template rejects an empty event
  // A published event's result shows in the engine's log.
  auto pub = run_cli({"publish", "-c", cfg, name, "queued words"});
  ASSERT_EQ(pub.exit_code, 0) << pub.err;
  EXPECT_TRUE(eventually([&] {
    return dir.read("engine.log").find("result: QUEUED WORDS") != std::string::npos;
  })) << dir.read("engine.log");
  engine.signal(SIGTERM);
  EXPECT_EQ(engine.wait_exit(), 0) << dir.read("engine.log");
}

INSTANTIATE_TEST_SUITE_P(Langs, NewFunction, ::testing::Values("python", "node", "go", "cpp"));

// --config appends the stanza to an existing file, with paths from that file's folder,
// and refuses (writing nothing) where appending is not safe.
TEST(NewFunctionUsage, ConfigAppendsToTheFunctionsList) {
  TempDir dir;
  dir.write("sluice.yaml", "brokers:\n  local: { kind: local, path: ./data/q.db }\n"
                           "functions:\n- name: first\n  command: [cat]\n"
                           "  subscribe: [{ broker: local, topic: a }]\n");
  auto made = run_cli({"new", "second", "--lang", "python", "--dir", dir.file("fns"),
                       "--config", dir.file("sluice.yaml")});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("fns/second/sluice.yaml")));
  const std::string config = dir.read("sluice.yaml");
  EXPECT_NE(config.find("- name: second"), std::string::npos) << config;
  EXPECT_NE(config.find("command: [fns/second/.venv/bin/python, fns/second/handler.py]"),
            std::string::npos) << config;
  auto valid = run_cli({"validate", "-c", dir.file("sluice.yaml")});
  EXPECT_NE(valid.err.find("fns/second/.venv/bin/python"), std::string::npos)  // not built yet
      << valid.exit_code << valid.err;

  // `functions:` not last: refused, nothing written.
  dir.write("other.yaml", "functions:\n  - { name: a, command: [cat], subscribe: [{ topic: a }] }\n"
                          "http: { listen: 127.0.0.1:0 }\n");
  auto refused = run_cli({"new", "third", "--lang", "go", "--dir", dir.path(), "--config",
                          dir.file("other.yaml")});
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("by hand"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("third")));
}

TEST(NewFunctionUsage, BadNamesAndLanguagesExitTwo) {
  TempDir dir;
  auto bad_lang = run_cli({"new", "x", "--lang", "cobol", "--dir", dir.path()});
  EXPECT_EQ(bad_lang.exit_code, 2);
  EXPECT_NE(bad_lang.err.find("expected python, node, go or cpp"), std::string::npos) << bad_lang.err;
  auto bad_name = run_cli({"new", "Bad Name", "--lang", "go", "--dir", dir.path()});
  EXPECT_EQ(bad_name.exit_code, 2);
  EXPECT_NE(bad_name.err.find("not a valid function name"), std::string::npos) << bad_name.err;
  auto no_lang = run_cli({"new", "x"});
  EXPECT_EQ(no_lang.exit_code, 2);
}

}  // namespace
}  // namespace sluice::e2e
