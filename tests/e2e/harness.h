// End-to-end harness: runs the real `sluice` binary on a temporary directory and
// talks to it over HTTP and the CLI, like a user would.
//
// Hermetic: every test gets its own directory and a free loopback port; waits are
// conditions polled with a deadline, never fixed sleeps.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/support.h"

namespace sluice::e2e {

using namespace std::chrono_literals;

std::string binary();          // path of build/sluice
using testsupport::free_port;  // a loopback port free right now

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const;
  std::string read(const std::string& name) const;  // "" when missing

 private:
  std::string path_;
};

struct CmdResult {
  int exit_code = -1;
  std::string out, err;
};
// Runs `sluice ARGS...` to completion (stdin from `input`).
CmdResult run_cli(const std::vector<std::string>& args, const std::string& input = "");

// `sluice run -c CONFIG` in the background.
class Engine {
 public:
  Engine(const std::string& config, const std::string& log_file);
  // Under an open-file limit (soft and hard) of `max_open_files`, set by the shell
  // that execs sluice (so the engine cannot raise it).
  Engine(const std::string& config, const std::string& log_file, int max_open_files);
  ~Engine();  // SIGKILL if still running
  bool wait_ready(uint16_t http_port, std::chrono::milliseconds limit = 30s);
  void signal(int sig);
  // Waits for the process to exit; returns its exit code (128+sig when killed), -1 on timeout.
  int wait_exit(std::chrono::milliseconds limit = 60s);
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// A keep-alive HTTP/1.1 client on 127.0.0.1.
class HttpClient {
 public:
  explicit HttpClient(uint16_t port);
  ~HttpClient();
  struct Reply {
    int status = 0;
    std::string body;
    std::map<std::string, std::string> headers;  // names in lower case
  };
  Reply post(const std::string& target, const std::string& body,
             const std::map<std::string, std::string>& headers = {});
  Reply get(const std::string& target, const std::map<std::string, std::string>& headers = {});

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Polls `pred` every 20 ms until it holds or `limit` passes.
using testsupport::eventually;

// Lines of a file (empty when missing).
std::vector<std::string> lines(const std::string& path);

// `sluice lag -c CONFIG -o json [extra...]`: the LAG of each row whose GROUP is
// "(no subscriber)", by topic; fails the test (and returns none) when the verb fails or
// prints no JSON array. `all_rows`, when given, receives every row.
std::map<std::string, int64_t> unsubscribed_topics(const std::string& config,
                                                   const std::vector<std::string>& extra = {},
                                                   std::string* all_rows = nullptr);

// Runs any program (argv[0] looked up in PATH) to completion, stdin from `input`.
CmdResult run_cmd(const std::vector<std::string>& argv, const std::string& input = "");

}  // namespace sluice::e2e
