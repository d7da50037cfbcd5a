// Helpers shared by the workers/ tests: a temporary directory, a callback collector
// with deadlines (never sleep for synchronisation) and a fixture owning an
// ExecRuntime plus the events it holds references to.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include "core/sanitizers.h"
#include "core/io_loop.h"
#include "tests/support/support.h"
#include "workers/exec_runtime.h"

namespace sluice::workers::testing {

using namespace std::chrono_literals;

// Generous: a deadline only for tests that would otherwise hang; never a speed bound.
inline constexpr std::chrono::seconds kDeadline{60};

struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-workers-XXXXXX");
    if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path = std::filesystem::canonical(tmpl).string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// A loop to lend a runtime (Runtime::share_loop), run by a thread of its own as the
// dispatcher runs its loop (core/io_loop.h). Destroy it after the runtime stopped.
struct LentLoop {
  std::shared_ptr<boost::asio::io_context> io = std::make_shared<boost::asio::io_context>();
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard{
      io->get_executor()};
  std::thread thread{[io = io] { run_spinning(*io, std::chrono::microseconds(50)); }};
  ~LentLoop() {
    guard.reset();
    thread.join();
  }
};

// Collects invocation results by index, counting calls (exactly-once checks).
class Collector {
 public:
  InvokeCallback callback(size_t index) {
    return [s = state_, index](InvocationResult&& r) {
      std::lock_guard lk(s->mu);
      s->results[index].push_back(std::move(r));
      ++s->total;
      s->cv.notify_all();
    };
  }
  bool wait_for(size_t n, std::chrono::seconds d = kDeadline) {
    std::unique_lock lk(state_->mu);
    return state_->cv.wait_for(lk, d, [&] { return state_->total >= n; });
  }
  size_t total() const {
    std::lock_guard lk(state_->mu);
    return state_->total;
  }
  size_t calls(size_t index) const {
    std::lock_guard lk(state_->mu);
    auto it = state_->results.find(index);
    return it == state_->results.end() ? 0 : it->second.size();
  }
  InvocationResult result(size_t index) const {
    std::lock_guard lk(state_->mu);
    auto it = state_->results.find(index);
    return it == state_->results.end() || it->second.empty() ? InvocationResult{}
                                                              : it->second.front();
  }

 private:
  struct State {
    mutable std::mutex mu;
    std::condition_variable cv;
    std::map<size_t, std::vector<InvocationResult>> results;
    size_t total = 0;
  };
  std::shared_ptr<State> state_ = std::make_shared<State>();
};

using testsupport::eventually;  // polls a condition outside the test's control

// A process is gone when /proc has no entry or shows a zombie (our container's
// init may not reap orphans).
inline bool process_dead(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  if (!stat) return true;
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() || line[close + 2] == 'Z' ||
         line[close + 2] == 'X';
}

inline size_t open_fd_count() {
  size_t n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) (void)e, ++n;
  return n;
}

// Uses up every free file descriptor of this process (its soft RLIMIT_NOFILE lowered
// to at most 1024 first, so that takes little), until release(): opening anything,
// a pipe for a spawn included, fails with EMFILE meanwhile. Threads already running
// keep their descriptors.
// Sanitizer runtimes open descriptors of their own (UBSan's vptr check makes a pipe to
// probe memory): with every fd taken they report errors that are not there. Tests that
// hoard fds run in the plain build and skip in the sanitizer builds.
#if defined(SLUICE_ASAN) || defined(SLUICE_TSAN)
#define SKIP_FD_HOARDING_UNDER_SANITIZERS() \
  GTEST_SKIP() << "fd exhaustion starves the sanitizer runtime (it runs in the plain build)"
#else
#define SKIP_FD_HOARDING_UNDER_SANITIZERS() (void)0
#endif

class FdHoard {
 public:
  FdHoard() {
    ::getrlimit(RLIMIT_NOFILE, &old_);
    rlimit low = old_;
    low.rlim_cur = std::min<rlim_t>(old_.rlim_cur, 1024);
    ::setrlimit(RLIMIT_NOFILE, &low);
    top_up();
  }
  // Takes again every fd freed since (a stopped worker's pipes or connections may close
  // after the hoard was taken): call it while waiting for what the hoard should cause.
  void top_up() {
    for (int fd; (fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC)) >= 0;) fds_.push_back(fd);
  }
  FdHoard(const FdHoard&) = delete;
  FdHoard& operator=(const FdHoard&) = delete;
  ~FdHoard() { release(); }
  void release() {
    for (int fd : fds_) ::close(fd);
    fds_.clear();
    ::setrlimit(RLIMIT_NOFILE, &old_);
  }

 private:
  rlimit old_{};
  std::vector<int> fds_;
};

// True when this process has no child at all (alive or zombie).
inline bool no_children() {
  errno = 0;
  return ::waitpid(-1, nullptr, WNOHANG) == -1 && errno == ECHILD;
}

inline std::vector<std::string> sh(const std::string& script) {
  return {"/bin/sh", "-c", script};
}

class ExecFixture : public ::testing::Test {
 protected:
  ExecRuntime& make(std::vector<std::string> command, Millis timeout = Millis{60000},
                    std::map<std::string, std::string> env = {}) {
    FunctionConfig fn;
    fn.name = "thumbnail";
    fn.command = std::move(command);
    fn.timeout = timeout;
    fn.env = std::move(env);
    rt_ = std::make_unique<ExecRuntime>(fn, dir_.path, opts_);
    auto started = rt_->start();
    EXPECT_TRUE(started) << (started ? "" : started.error().message);
    return *rt_;
  }

  Event& event(std::string data) {
    Event e;
    e.id = "ev-" + std::to_string(events_.size());
    e.source = "/test";
    e.type = "test.event";
    e.data = std::move(data);
    events_.push_back(std::move(e));
    return events_.back();
  }

  // invoke() and wait for the callback.
  InvocationResult run(const Event& ev) {
    Collector c;
    rt_->invoke(ev, c.callback(0));
    if (!c.wait_for(1)) {
      ADD_FAILURE() << "no callback within the deadline";
      return {};
    }
    EXPECT_EQ(c.calls(0), 1u);
    return c.result(0);
  }
  InvocationResult run(std::string data) { return run(event(std::move(data))); }

  void TearDown() override {
    if (rt_) rt_->stop(Millis{0});
  }

  TempDir dir_;
  ExecOptions opts_;
  std::deque<Event> events_;  // outlive rt_: invocations hold references
  std::unique_ptr<ExecRuntime> rt_;
};

}  // namespace sluice::workers::testing
