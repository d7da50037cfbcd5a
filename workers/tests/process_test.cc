// The spawning layer: spawn_process() errors and guarantees, ChildProcess on Asio.
#include <fcntl.h>
#include <signal.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "test_util.h"
#include "workers/child_process.h"

namespace sluice::workers::testing {
namespace {

// Spawns `command` with stdin closed and runs it to its end: its stdout and how it
// ended (nullopt if it did not end within the deadline).
std::pair<std::optional<ExitStatus>, std::string> run_child(std::vector<std::string> command) {
  boost::asio::io_context io;
  auto child = ChildProcess::spawn(io.get_executor(), {std::move(command), "", {}});
  EXPECT_TRUE(child) << child.error().message;
  if (!child) return {};
  std::string out;
  std::optional<ExitStatus> status;
  child.value()->stdin_pipe().close();
  boost::asio::async_read(child.value()->stdout_pipe(), boost::asio::dynamic_buffer(out),
                          [](boost::system::error_code, size_t) {});
  child.value()->async_wait_exit([&](const ExitStatus& st) { status = st; });
  io.run_for(kDeadline);
  return {status, out};
}

TEST(WorkersProcess, SignalNamesAndExitStatusText) {
  EXPECT_EQ(signal_name(SIGSEGV), "SIGSEGV");
  EXPECT_EQ(signal_name(SIGKILL), "SIGKILL");
  EXPECT_EQ(ExitStatus::from_wait_status(3 << 8).describe(), "exit status 3");
  EXPECT_TRUE(ExitStatus::from_wait_status(0).success());
  EXPECT_EQ(ExitStatus::from_wait_status(SIGTERM).describe(), "killed by signal SIGTERM");
  EXPECT_EQ(ExitStatus{}.describe(), "exit status unknown");
}

TEST(WorkersProcess, SpawnErrorsSayWhatAndWhy) {
  auto r = spawn_process({{"sluice-no-such-command-4711"}, "", {}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_EQ(r.error().message,
            "cannot start 'sluice-no-such-command-4711': No such file or directory "
            "(not found in PATH)");

  r = spawn_process({{"/nonexistent/bin/tool"}, "", {}});
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("(no such file)"), std::string::npos);

  r = spawn_process({{"cat"}, "/nonexistent-dir-4711", {}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "working directory '/nonexistent-dir-4711' does not exist");

  r = spawn_process({{}, "", {}});
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);
}

TEST(WorkersProcess, SpawnedChildLeadsItsGroupAndOurEndsAreCloseOnExec) {
  auto r = spawn_process({{"sleep", "30"}, "", {}});
  ASSERT_TRUE(r) << r.error().message;
  SpawnedProcess& p = r.value();
  EXPECT_EQ(::getpgid(p.pid), p.pid);
  for (int fd : {p.stdin_w.get(), p.stdout_r.get(), p.stderr_r.get(), p.pidfd.get()}) {
    EXPECT_GT(fd, 2);
    EXPECT_TRUE(::fcntl(fd, F_GETFD) & FD_CLOEXEC) << fd;
  }
  EXPECT_FALSE(try_reap(p.pid));
  signal_group(p.pid, SIGKILL);
  ExitStatus st = reap_blocking(p.pid);
  EXPECT_EQ(st.kind, ExitStatus::Kind::signaled);
  EXPECT_EQ(st.code, SIGKILL);
}

TEST(WorkersProcess, ChildDoesNotInheritIgnoredSignals) {
  // sluice ignores SIGPIPE (ExecRuntime::start); the child must get the default back.
  ::signal(SIGPIPE, SIG_IGN);
  auto [status, out] = run_child(sh("grep SigIgn /proc/self/status"));
  ASSERT_TRUE(status);
  EXPECT_TRUE(status->success());
  // Signals 1..31 all at default; glibc itself leaves its internal signals 32 and 33.
  ASSERT_EQ(out.rfind("SigIgn:\t", 0), 0u) << out;
  uint64_t ignored = std::stoull(out.substr(8), nullptr, 16);
  EXPECT_EQ(ignored & 0x7fffffffull, 0u) << out;
}

// A signal blocked in the spawning thread is not blocked in the child, and a handler
// of sluice's (here SIGUSR1's) is not the child's: the child runs with the default.
TEST(WorkersProcess, ChildStartsWithNoSignalBlockedAndNoHandler) {
  struct sigaction old_sa{}, sa{};
  sa.sa_handler = [](int) {};
  ::sigaction(SIGUSR1, &sa, &old_sa);
  sigset_t usr1, old_mask;
  sigemptyset(&usr1);
  sigaddset(&usr1, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &usr1, &old_mask);
  // The child signals itself: with the default disposition SIGUSR1 terminates it.
  auto [status, out] =
      run_child(sh("grep -E 'SigBlk|SigCgt' /proc/self/status; kill -USR1 $$; echo survived"));
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGUSR1, &old_sa, nullptr);
  ASSERT_TRUE(status);
  EXPECT_EQ(status->kind, ExitStatus::Kind::signaled) << out;
  EXPECT_EQ(status->code, SIGUSR1) << out;
  EXPECT_EQ(out.find("survived"), std::string::npos) << out;
  auto blk = out.find("SigBlk:\t");
  ASSERT_NE(blk, std::string::npos) << out;
  EXPECT_EQ(std::stoull(out.substr(blk + 8), nullptr, 16), 0u) << out;
}

// PR_SET_PDEATHSIG: a child is SIGKILLed when the thread that spawned it ends (as
// when sluice dies: every thread ends), which is why the runtimes spawn only on
// threads that outlive their children.
TEST(WorkersProcess, ChildIsKilledWhenItsSpawningThreadEnds) {
  pid_t pid = -1;
  std::thread([&] {
    auto p = spawn_process(SpawnOptions{{"sleep", "30"}, "", {"PATH=/usr/bin:/bin"}, {}});
    ASSERT_TRUE(p) << p.error().message;
    pid = p.value().pid;
  }).join();
  ASSERT_GT(pid, 0);
  std::optional<ExitStatus> st;
  const bool died = eventually([&] { return (st = try_reap(pid)).has_value(); }, 10s);
  if (!died) {
    signal_group(pid, SIGKILL);
    reap_blocking(pid);
  }
  ASSERT_TRUE(died) << "the child outlived the thread that spawned it";
  EXPECT_EQ(st->describe(), "killed by signal SIGKILL");
}

TEST(WorkersProcess, DestroyingAnUnreapedChildKillsAndReapsIt) {
  boost::asio::io_context io;
  pid_t pid = -1;
  {
    auto child = ChildProcess::spawn(io.get_executor(), {{"sleep", "30"}, "", {}});
    ASSERT_TRUE(child) << child.error().message;
    pid = child.value()->pid();
  }
  EXPECT_EQ(::kill(pid, 0), -1);  // reaped: the pid no longer exists
  EXPECT_TRUE(no_children());
}

}  // namespace
}  // namespace sluice::workers::testing
