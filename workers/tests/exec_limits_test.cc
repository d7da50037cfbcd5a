// ExecRuntime under limits: timeouts that kill the whole process group, the output
// cap, stragglers, concurrency without fd inheritance, fd/zombie leaks, stop().
#include <fcntl.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/stat.h>

#include "test_util.h"

namespace sluice::workers::testing {
namespace {

using ExecLimitsTest = ExecFixture;

pid_t read_pid(const std::string& file) {
  std::ifstream in(file);
  long pid = 0;
  in >> pid;
  return static_cast<pid_t>(pid);
}

TEST_F(ExecLimitsTest, TimeoutKillsTheWholeProcessGroup) {
  // 1 s leaves the shell time to start its background child before the timeout.
  make(sh("sleep 30 & echo $! > \"$PIDFILE\"; wait"), Millis{1000},
       {{"PIDFILE", dir_.file("pid")}});
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_EQ(r.message, "timed out after 1000ms");
  EXPECT_EQ(classify(r.outcome), Verdict::retry);
  pid_t grandchild = read_pid(dir_.file("pid"));
  if (grandchild <= 0) GTEST_SKIP() << "the shell did not start its child within 1 s";
  EXPECT_TRUE(eventually([&] { return process_dead(grandchild); }))
      << "background child " << grandchild << " survived the timeout";
}

// One watchdog per io thread serves every deadline: an invocation started later
// times out later (never early, never with the first), and a quick one between
// them is untouched.
TEST_F(ExecLimitsTest, EachInvocationTimesOutAtItsOwnDeadline) {
  for (unsigned threads : {1u, 2u}) {
    SCOPED_TRACE(threads);
    opts_.io_threads = threads;
    ExecRuntime& rt = make(sh("[ -n \"$CE_SLOW\" ] && exec sleep 30; exit 0"), Millis{600});
    using Clock = std::chrono::steady_clock;
    struct Done {
      std::mutex mu;
      std::condition_variable cv;
      std::map<int, std::pair<Clock::time_point, InvocationResult>> at;
    };
    auto done = std::make_shared<Done>();
    auto cb = [done](int i) {
      return [done, i](InvocationResult&& r) {
        std::lock_guard lk(done->mu);
        done->at[i] = {Clock::now(), std::move(r)};
        done->cv.notify_all();
      };
    };
    Event& slow1 = event("");
    slow1.extensions.emplace_back("slow", "1");
    Event& slow2 = event("");
    slow2.extensions.emplace_back("slow", "1");
    Event& quick = event("");
    const auto t1 = Clock::now();
    rt.invoke(slow1, cb(1));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const auto t2 = Clock::now();
    rt.invoke(slow2, cb(2));
    rt.invoke(quick, cb(3));
    std::unique_lock lk(done->mu);
    ASSERT_TRUE(done->cv.wait_for(lk, kDeadline, [&] { return done->at.size() == 3; }));
    EXPECT_EQ(done->at[3].second.outcome, Outcome::success) << done->at[3].second.message;
    EXPECT_LT(done->at[3].first, done->at[1].first);
    for (auto [i, t0] : {std::pair{1, t1}, std::pair{2, t2}}) {
      EXPECT_EQ(done->at[i].second.outcome, Outcome::timeout) << i;
      EXPECT_EQ(done->at[i].second.message, "timed out after 600ms") << i;
      EXPECT_GE(done->at[i].first - t0, std::chrono::milliseconds(600)) << i << " was early";
    }
    EXPECT_GT(done->at[2].first, done->at[1].first);
    lk.unlock();
    rt_->stop(Millis{0});
  }
}

TEST_F(ExecLimitsTest, ChildIgnoringSigtermIsKilledAfterGrace) {
  opts_.kill_grace = Millis{300};
  make(sh("trap '' TERM; sleep 30"), Millis{1000});
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_EQ(r.message, "timed out after 1000ms (SIGKILL after ignoring SIGTERM for 300ms)");
  EXPECT_EQ(rt_->stats().workers, 0u);
}

TEST_F(ExecLimitsTest, OutputOverTheCapIsErrorAndKillsTheProcess) {
  opts_.max_output_bytes = 1 << 20;
  make({"yes", "sluice"});  // writes forever
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "output exceeds 1048576 bytes");
  EXPECT_TRUE(r.output.empty());
  EXPECT_EQ(rt_->stats().workers, 0u);
}

TEST_F(ExecLimitsTest, OutputExactlyAtTheCapIsFine) {
  opts_.max_output_bytes = 100000;
  make({"head", "-c", "100000", "/dev/zero"});
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output.size(), 100000u);
}

TEST_F(ExecLimitsTest, BackgroundChildrenLeftBehindAreKilledAtExit) {
  // The background sleep holds stdout open; without the group kill at exit the
  // invocation would wait for it.
  make(sh("sleep 30 & echo $!"));
  auto r = run("");
  ASSERT_EQ(r.outcome, Outcome::success) << r.message;
  pid_t straggler = static_cast<pid_t>(std::stol(r.output));
  EXPECT_TRUE(eventually([&] { return process_dead(straggler); }));
}

TEST_F(ExecLimitsTest, ProcessEscapingTheGroupCannotHoldTheInvocation) {
  if (::access("/usr/bin/setsid", X_OK) != 0) GTEST_SKIP() << "no setsid(1)";
  opts_.pipe_drain_timeout = Millis{200};
  make(sh("setsid sleep 5 & echo done"));
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "done\n");
}

void run_concurrently(ExecFixture& f, ExecRuntime& rt, std::deque<Event>& events, int n) {
  Collector c;
  for (int i = 0; i < n; ++i) {
    Event e;
    e.id = "c-" + std::to_string(i);
    e.data = "payload " + std::to_string(i) + std::string(i * 37 % 5000, '.');
    events.push_back(std::move(e));
  }
  for (int i = 0; i < n; ++i) rt.invoke(events[events.size() - n + i], c.callback(i));
  ASSERT_TRUE(c.wait_for(n)) << c.total() << " of " << n << " completed";
  for (int i = 0; i < n; ++i) {
    const Event& e = events[events.size() - n + i];
    EXPECT_EQ(c.calls(i), 1u);
    auto r = c.result(i);
    EXPECT_EQ(r.outcome, Outcome::success) << i << ": " << r.message;
    EXPECT_TRUE(r.output == e.data) << i;
  }
}

TEST_F(ExecLimitsTest, TwoHundredConcurrentCatsAllComplete) {
  ExecRuntime& rt = make({"cat"});
  run_concurrently(*this, rt, events_, 200);
  EXPECT_EQ(rt.stats().inflight, 0u);
}

TEST_F(ExecLimitsTest, ConcurrentCatsOnSeveralIoThreads) {
  opts_.io_threads = 4;
  ExecRuntime& rt = make({"cat"});
  run_concurrently(*this, rt, events_, 200);
}

TEST_F(ExecLimitsTest, NoFdOrZombieLeakAfterManyInvocations) {
  opts_.max_output_bytes = 4096;
  opts_.kill_grace = Millis{100};
  make(sh("case \"$(cat)\" in "
          "ok) echo fine;; fail) echo bad >&2; exit 2;; big) yes;; "
          "slow) trap '' TERM; sleep 30;; esac"),
       Millis{500});
  ASSERT_EQ(run("ok").outcome, Outcome::success);  // warms up the io_context's own fds
  const size_t before = open_fd_count();

  const char* kinds[] = {"ok", "fail", "big", "ok", "slow"};
  Collector c;
  const int n = 60;
  for (int i = 0; i < n; ++i) rt_->invoke(event(kinds[i % 5]), c.callback(i));
  ASSERT_TRUE(c.wait_for(n));
  for (int i = 0; i < n; ++i) {
    Outcome want[] = {Outcome::success, Outcome::error, Outcome::error, Outcome::success,
                      Outcome::timeout};
    EXPECT_EQ(c.result(i).outcome, want[i % 5]) << i << ": " << c.result(i).message;
  }
  EXPECT_EQ(open_fd_count(), before);
  EXPECT_TRUE(no_children());
  EXPECT_EQ(rt_->stats().workers, 0u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

TEST_F(ExecLimitsTest, StatsCountRunningProcesses) {
  std::string fifo = dir_.file("gate");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  make(sh("cat \"$GATE\""), Millis{60000}, {{"GATE", fifo}});
  Collector c;
  rt_->invoke(event(""), c.callback(0));
  // Opening the FIFO for writing succeeds once the child has it open for reading.
  int fd = -1;
  ASSERT_TRUE(eventually([&] { return (fd = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK)) >= 0; }));
  // The child can open the FIFO before the runtime's io thread has finished recording
  // the spawn (it does that after the spawn returns): wait for the count, which
  // must show the process while it is blocked on the FIFO.
  EXPECT_TRUE(eventually([&] { return rt_->stats().workers == 1u; })) << rt_->stats().workers;
  EXPECT_EQ(rt_->stats().inflight, 1u);
  ASSERT_EQ(::write(fd, "opened", 6), 6);
  ::close(fd);
  ASSERT_TRUE(c.wait_for(1));
  EXPECT_EQ(c.result(0).output, "opened");
  EXPECT_EQ(rt_->stats().workers, 0u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

TEST_F(ExecLimitsTest, StopKillsRunningInvocationsAndCompletesEveryCallback) {
  make({"sleep", "30"});
  Collector c;
  const int n = 5;
  for (int i = 0; i < n; ++i) rt_->invoke(event("x"), c.callback(i));
  rt_->stop(Millis{200});
  ASSERT_EQ(c.total(), static_cast<size_t>(n));  // all called before stop() returned
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(c.calls(i), 1u);
    EXPECT_EQ(c.result(i).outcome, Outcome::crash);
    EXPECT_EQ(c.result(i).message, "stopped");
  }
  EXPECT_EQ(rt_->stats().workers, 0u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
  EXPECT_TRUE(no_children());
  rt_->invoke(event("late"), c.callback(n));
  ASSERT_EQ(c.total(), static_cast<size_t>(n + 1));
  EXPECT_EQ(c.result(n).message, "runtime stopped");
  rt_->stop(Millis{0});  // idempotent
}

TEST_F(ExecLimitsTest, StopWithGraceLetsRunningInvocationsFinish) {
  make({"cat"});
  Collector c;
  for (int i = 0; i < 3; ++i) rt_->invoke(event("data " + std::to_string(i)), c.callback(i));
  rt_->stop(Millis{60000});
  ASSERT_EQ(c.total(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(c.result(i).outcome, Outcome::success) << c.result(i).message;
    EXPECT_EQ(c.result(i).output, "data " + std::to_string(i));
  }
}

// Out of file descriptors (EMFILE on the spawn's pipes): the invocation waits and
// the spawn is tried again; once fds are free it runs, and succeeds.
TEST_F(ExecLimitsTest, SpawnFailingWithEmfileWaitsInsteadOfFailing) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
  make({"cat"});
  Collector c;
  const uint64_t before = exhaustion_counts().emfile;
  {
    FdHoard hoard;
    rt_->invoke(event("patient"), c.callback(0));
    ASSERT_TRUE(eventually(
        [&] { return exhaustion_counts().emfile >= before + 2 || c.total() > 0; }));
    EXPECT_EQ(c.total(), 0u) << c.result(0).message;
  }
  ASSERT_TRUE(c.wait_for(1));
  EXPECT_EQ(c.result(0).outcome, Outcome::success) << c.result(0).message;
  EXPECT_EQ(c.result(0).output, "patient");
}

// ... but not for longer than the function's timeout: then it is an error naming the
// cause (retried by the dispatcher like any error).
TEST_F(ExecLimitsTest, SpawnFailingWithEmfileForTheWholeTimeoutIsAnError) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
  make({"cat"}, Millis{300});
  FdHoard hoard;
  Collector c;
  rt_->invoke(event("x"), c.callback(0));
  ASSERT_TRUE(c.wait_for(1));
  hoard.release();
  EXPECT_EQ(c.result(0).outcome, Outcome::error);
  EXPECT_NE(c.result(0).message.find("Too many open files"), std::string::npos)
      << c.result(0).message;
  EXPECT_NE(c.result(0).message.find("still failing after"), std::string::npos)
      << c.result(0).message;
}

// stop() while a spawn waits for fds: the invocation ends as "stopped" at once.
TEST_F(ExecLimitsTest, StopWhileASpawnWaitsForFdsReportsStopped) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
  make({"cat"}, Millis{60000});
  FdHoard hoard;
  Collector c;
  const uint64_t before = exhaustion_counts().emfile;
  rt_->invoke(event("x"), c.callback(0));
  ASSERT_TRUE(eventually([&] { return exhaustion_counts().emfile > before; }));
  rt_->stop(Millis{0});
  hoard.release();
  ASSERT_EQ(c.total(), 1u);
  EXPECT_EQ(c.result(0).outcome, Outcome::crash);
  EXPECT_EQ(c.result(0).message, "stopped");
}

// The budget is per window: a new window allows as much again, and the first use
// in it reports (once) what the last one dropped.
TEST(LogBudget, AllowsBytesPerWindowAndReportsDropsOncePerWindow) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  spdlog::default_logger_raw()->sinks().push_back(sink);
  std::atomic<uint64_t> dropped{0};
  LogBudget b(LogBudgetOptions{100, Millis{1000}}, &dropped);
  const auto t0 = LogBudget::Clock::now();
  auto reports = [&] {
    size_t n = 0;
    for (const auto& l : sink->last_formatted()) n += l.find("[p] dropped") != std::string::npos;
    return n;
  };
  EXPECT_TRUE(b.take(60, "[p]", "stderr", t0));
  EXPECT_TRUE(b.take(40, "[p]", "stderr", t0 + Millis{10}));
  EXPECT_FALSE(b.take(1, "[p]", "stderr", t0 + Millis{20}));
  EXPECT_FALSE(b.take(30, "[p]", "stderr", t0 + Millis{999}));
  EXPECT_EQ(dropped.load(), 31u);
  EXPECT_EQ(reports(), 0u);
  EXPECT_TRUE(b.take(100, "[p]", "stderr", t0 + Millis{1000}));  // a new window
  EXPECT_EQ(reports(), 1u);
  bool found = false;
  for (const auto& l : sink->last_formatted())
    found |= l.find("[p] dropped 31 bytes of stderr (more than 100 bytes in 1000 ms)") !=
             std::string::npos;
  EXPECT_TRUE(found);
  EXPECT_TRUE(b.take(0, "[p]", "stderr", t0 + Millis{1500}));
  EXPECT_FALSE(b.take(101, "[p]", "stderr", t0 + Millis{5000}));  // larger than a window
  b.report("[p]", "stderr");
  b.report("[p]", "stderr");  // nothing new
  EXPECT_EQ(reports(), 2u);
  EXPECT_EQ(dropped.load(), 132u);
  spdlog::default_logger_raw()->sinks().pop_back();
}

// stderr over the invocation's budget: dropped, counted in stats(), reported once.
TEST_F(ExecLimitsTest, StderrOverTheBudgetIsDroppedCountedAndReported) {
  opts_.stderr_budget = LogBudgetOptions{1000, Millis{3600000}};
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024);
  spdlog::default_logger_raw()->sinks().push_back(sink);
  make(sh("i=0; while [ $i -lt 20 ]; do printf '%099d\\n' 0 >&2; i=$((i+1)); done"));
  auto r = run("x");
  spdlog::default_logger_raw()->sinks().pop_back();
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(rt_->stats().stderr_dropped_bytes, 1000u);
  size_t logged = 0, reports = 0;
  for (const auto& l : sink->last_formatted()) {
    logged += l.find(std::string(99, '0')) != std::string::npos;
    reports +=
        l.find("[fn thumbnail] [event ev-0] dropped 1000 bytes of stderr") != std::string::npos;
  }
  EXPECT_EQ(logged, 10u);
  EXPECT_EQ(reports, 1u);
}

}  // namespace
}  // namespace sluice::workers::testing
