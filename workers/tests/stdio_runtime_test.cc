// The stdio runtime against a real worker process (stdio_test_worker.cc) speaking the
// frame protocol: success, error, timeout, crash, huge output, garbage output, the
// handshake, SIGKILL with 50 invocations held, logs, fan-out, isolation, resize.
// Built twice: as stdio_runtime_test (the runtime's own io thread) and, with
// SLUICE_SHARED_LOOP, as stdio_runtime_shared_loop_test, where every runtime
// reads on a loop lent to it as the dispatcher lends its own (share_loop()), run by a
// thread of the fixture, and every test runs again that way.
#include <signal.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <filesystem>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "core/sanitizers.h"
#include "workers/stdio_runtime.h"
#include "workers/tests/test_util.h"

namespace sluice::workers::testing {
namespace {

class StdioTest : public ::testing::Test {
 protected:
  StdioTest() {
    fn_.name = "thumbnail";
    fn_.command = {SLUICE_STDIO_TEST_WORKER};
    fn_.timeout = Millis{60000};
    fn_.start_timeout = Millis{20000};
    opts_.restart_initial = Millis{10};
  }

  StdioRuntime& make() {
    rt_.reset();
    rt_ = std::make_unique<StdioRuntime>(fn_, dir_.path, opts_);
#ifdef SLUICE_SHARED_LOOP
    rt_->share_loop(lent_.io);
#endif
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
    std::lock_guard lk(events_mu_);
    events_.push_back(std::move(e));
    return events_.back();
  }

  InvocationResult run(std::string data) {
    Collector c;
    rt_->invoke(event(std::move(data)), c.callback(0));
    if (!c.wait_for(1)) {
      ADD_FAILURE() << "no callback within the deadline";
      return {};
    }
    EXPECT_EQ(c.calls(0), 1u);
    return c.result(0);
  }

  pid_t only_pid() {
    EXPECT_TRUE(eventually([&] { return rt_->worker_pids().size() == 1; }));
    auto pids = rt_->worker_pids();
    return pids.empty() ? -1 : pids.front();
  }

  void TearDown() override {
    if (rt_) rt_->stop(Millis{0});
  }

  LentLoop lent_;  // lent in stdio_runtime_shared_loop_test only; outlives rt_
  TempDir dir_;
  FunctionConfig fn_;
  StdioOptions opts_;
  std::mutex events_mu_;
  std::deque<Event> events_;
  std::unique_ptr<StdioRuntime> rt_;
};

TEST_F(StdioTest, SuccessCarriesTheOutput) {
  make();
  auto r = run("echo:hello");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "hello");
  EXPECT_EQ(rt_->kind(), "stdio");
}

TEST_F(StdioTest, ManyInvocationsInFlightOnOneProcessAreMatchedById) {
  make();
  Collector c;
  constexpr size_t kN = 200;
  for (size_t i = 0; i < kN; ++i)
    rt_->invoke(event((i % 3 == 0 ? "sleep:20" : "echo:") + (i % 3 == 0 ? "" : std::to_string(i))),
                c.callback(i));
  ASSERT_TRUE(c.wait_for(kN));
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_EQ(c.calls(i), 1u) << i;
    auto r = c.result(i);
    EXPECT_EQ(r.outcome, Outcome::success) << i << " " << r.message;
    EXPECT_EQ(r.output, i % 3 == 0 ? "slept" : std::to_string(i)) << i;
  }
  EXPECT_EQ(rt_->worker_pids().size(), 1u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

// invoke() writes on the calling thread: several callers at once, while the pool
// grows and shrinks, still get every answer once and matched to its own call.
TEST_F(StdioTest, ConcurrentCallersWhileThePoolResizesEachGetTheirOwnAnswer) {
  fn_.workers.min = 2;
  make();
  Collector c;
  constexpr size_t kThreads = 4, kPer = 150;
  std::vector<Event*> evs;
  for (size_t i = 0; i < kThreads * kPer; ++i) evs.push_back(&event("echo:" + std::to_string(i)));
  std::vector<std::thread> callers;
  for (size_t t = 0; t < kThreads; ++t)
    callers.emplace_back([&, t] {
      for (size_t i = t * kPer; i < (t + 1) * kPer; ++i) rt_->invoke(*evs[i], c.callback(i));
    });
  for (size_t n : {3, 1, 4, 2}) {
    rt_->resize(n);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  for (auto& t : callers) t.join();
  ASSERT_TRUE(c.wait_for(kThreads * kPer));
  for (size_t i = 0; i < kThreads * kPer; ++i) {
    ASSERT_EQ(c.calls(i), 1u) << i;
    auto r = c.result(i);
    EXPECT_EQ(r.outcome, Outcome::success) << i << " " << r.message;
    EXPECT_EQ(r.output, std::to_string(i)) << i;
  }
  EXPECT_TRUE(eventually([&] { return rt_->stats().inflight == 0; }));
}

TEST_F(StdioTest, ErrorRejectedRetryAfterAndMissingStatus) {
  make();
  auto e = run("error:disk full");
  EXPECT_EQ(e.outcome, Outcome::error);
  EXPECT_EQ(e.message, "disk full");
  auto j = run("reject:bad json");
  EXPECT_EQ(j.outcome, Outcome::rejected);
  EXPECT_EQ(j.message, "bad json");
  auto b = run("retry:1500");
  EXPECT_EQ(b.outcome, Outcome::error);
  ASSERT_TRUE(b.retry_after.has_value());
  EXPECT_EQ(b.retry_after->count(), 1500);
  auto n = run("nostatus");
  EXPECT_EQ(n.outcome, Outcome::error);
  EXPECT_NE(n.message.find("without a status"), std::string::npos) << n.message;
}

TEST_F(StdioTest, TimeoutWithALateAnswerKeepsTheWorker) {
  fn_.timeout = Millis{100};
  opts_.kill_grace = Millis{30000};
  make();
  pid_t before = only_pid();
  auto r = run("sleep:400");
  EXPECT_EQ(r.outcome, Outcome::timeout) << r.message;
  EXPECT_NE(r.message.find("timed out after 100ms"), std::string::npos) << r.message;
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success);
  EXPECT_EQ(p.output, std::to_string(before));
}

TEST_F(StdioTest, TimeoutOfAStuckWorkerRestartsIt) {
  fn_.timeout = Millis{100};
  opts_.kill_grace = Millis{100};
  make();
  pid_t before = only_pid();
  auto r = run("hang");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  ASSERT_TRUE(eventually([&] {
    auto pids = rt_->worker_pids();
    return pids.size() == 1 && pids[0] != before;
  }));
  EXPECT_TRUE(process_dead(before));
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success);
  EXPECT_NE(p.output, std::to_string(before));
}

TEST_F(StdioTest, CrashFailsEveryHeldInvocationAndRestarts) {
  make();
  pid_t before = only_pid();
  Collector c;
  for (size_t i = 0; i < 3; ++i) rt_->invoke(event("hang"), c.callback(i));
  rt_->invoke(event("crash"), c.callback(3));
  ASSERT_TRUE(c.wait_for(4));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.calls(i), 1u);
    auto r = c.result(i);
    EXPECT_EQ(r.outcome, Outcome::crash) << i;
    EXPECT_NE(r.message.find("SIGABRT"), std::string::npos) << r.message;
  }
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success) << p.message;
  EXPECT_NE(p.output, std::to_string(before));
}

TEST_F(StdioTest, SigkillWhileHolding50InvocationsCompletesAllWithCrash) {
  std::string hold = dir_.file("held");
  fn_.env["HOLD_FILE"] = hold;
  make();
  pid_t pid = only_pid();
  Collector c;
  constexpr size_t kN = 50;
  for (size_t i = 0; i < kN; ++i) rt_->invoke(event("hold"), c.callback(i));
  ASSERT_TRUE(eventually([&] {
    std::ifstream f(hold);
    size_t lines = 0;
    for (std::string l; std::getline(f, l);) ++lines;
    return lines == kN;
  }));
  EXPECT_EQ(c.total(), 0u);  // nothing reported before the kill
  EXPECT_EQ(rt_->stats().inflight, kN);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  ASSERT_TRUE(c.wait_for(kN));
  for (size_t i = 0; i < kN; ++i) {
    EXPECT_EQ(c.calls(i), 1u) << i;
    auto r = c.result(i);
    EXPECT_EQ(r.outcome, Outcome::crash) << i;
    EXPECT_NE(r.message.find("SIGKILL"), std::string::npos) << r.message;
  }
  EXPECT_EQ(rt_->stats().inflight, 0u);
  EXPECT_EQ(run("echo:again").output, "again");  // restarted
}

TEST_F(StdioTest, HugeOutputIsAnErrorNotAnAllocation) {
  opts_.max_output_bytes = 1 << 20;
  make();
  auto fits = run("huge:" + std::to_string(1 << 20));
  EXPECT_EQ(fits.outcome, Outcome::success);
  EXPECT_EQ(fits.output.size(), size_t{1} << 20);
  auto big = run("huge:" + std::to_string((1 << 20) + 1));
  EXPECT_EQ(big.outcome, Outcome::error);
  EXPECT_NE(big.message.find("output exceeds 1048576 bytes"), std::string::npos) << big.message;
  EXPECT_EQ(run("echo:still").output, "still");
}

TEST_F(StdioTest, GarbageOnStdoutIsAProtocolErrorAndACrash) {
  make();
  pid_t before = only_pid();
  auto r = run("garbage");
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_NE(r.message.find("protocol error"), std::string::npos) << r.message;
  EXPECT_NE(r.message.find("exceeds"), std::string::npos) << r.message;
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success);
  EXPECT_NE(p.output, std::to_string(before));
}

struct StartCase {
  const char* mode;
  const char* expect;
};
std::string case_name(const ::testing::TestParamInfo<StartCase>& info) {
  std::string n = std::to_string(info.index) + "_" + info.param.mode;
  for (char& ch : n)
    if (ch == '-') ch = '_';
  return n;
}

class StdioStartTest : public StdioTest, public ::testing::WithParamInterface<StartCase> {};

TEST_P(StdioStartTest, FailedHandshakeIsAClearErrorNeverAHang) {
  fn_.command.push_back(GetParam().mode);
  fn_.start_timeout = Millis{500};
  opts_.kill_grace = Millis{500};
  make();
  auto r = run("echo:x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find(GetParam().expect), std::string::npos) << r.message;
}

INSTANTIATE_TEST_SUITE_P(
    Modes, StdioStartTest,
    ::testing::Values(StartCase{"bad-version", "worker speaks protocol version 2"},
                      StartCase{"garbage-start", "not a sluice v1 frame stream"},
                      StartCase{"silent", "no Hello frame within 500ms"},
                      StartCase{"exit-at-start", "exit status 7"},
                      StartCase{"wrong-first-frame", "expected a Hello frame first, got result"}),
    case_name);

TEST_F(StdioTest, VersionMismatchSendsGoodbyeTheWorkerSees) {
  fn_.command.push_back("bad-version");
  opts_.kill_grace = Millis{30000};  // it must exit by itself on the Goodbye
  make();
  auto r = run("echo:x");
  EXPECT_NE(r.message.find("exit status 5"), std::string::npos) << r.message;
}

TEST_F(StdioTest, CommandNotFoundIsAnError) {
  fn_.command = {"no-such-sluice-worker"};
  make();
  auto r = run("echo:x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find("not found in PATH"), std::string::npos) << r.message;
}

TEST_F(StdioTest, LogFramesLandInTheLogWithFunctionAndEventId) {
  auto sink = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(256);
  spdlog::default_logger_raw()->sinks().push_back(sink);
  make();
  auto r = run("log:resizing to 64x64");
  spdlog::default_logger_raw()->sinks().pop_back();
  EXPECT_EQ(r.outcome, Outcome::success);
  bool found = false;
  for (const auto& line : sink->last_formatted())
    found |= line.find("[fn thumbnail] [event ev-0] resizing to 64x64") != std::string::npos &&
             line.find("warn") != std::string::npos;
  EXPECT_TRUE(found);
}

TEST_F(StdioTest, ResultsCarryEmittedEvents) {
  make();
  auto r = run("emit:3");
  ASSERT_EQ(r.outcome, Outcome::success);
  ASSERT_EQ(r.emitted.size(), 3u);
  EXPECT_EQ(r.emitted[2].id, "emitted-2");
  EXPECT_EQ(r.emitted[2].data, "child 2");
}

// Emitted events are output too: they count toward max_output_bytes with the output.
TEST_F(StdioTest, EmittedEventsCountTowardMaxOutputBytes) {
  opts_.max_output_bytes = 64 << 10;
  make();
  auto fits = run("emitbig:2:1000");
  EXPECT_EQ(fits.outcome, Outcome::success) << fits.message;
  EXPECT_EQ(fits.emitted.size(), 2u);
  auto big = run("emitbig:4:20000");  // 80 KB in four events, no output
  EXPECT_EQ(big.outcome, Outcome::error);
  EXPECT_TRUE(big.emitted.empty());
  EXPECT_NE(big.message.find("4 emitted event(s) exceed 65536 bytes"), std::string::npos)
      << big.message;
  EXPECT_EQ(run("echo:still").output, "still");
}

// Captures what the default logger writes while it lives.
struct LogCapture {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink =
      std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1024);
  LogCapture() { spdlog::default_logger_raw()->sinks().push_back(sink); }
  ~LogCapture() { spdlog::default_logger_raw()->sinks().pop_back(); }
  std::vector<std::string> lines_with(const std::string& text) const {
    std::vector<std::string> out;
    for (auto& l : sink->last_formatted())
      if (l.find(text) != std::string::npos) out.push_back(l);
    return out;
  }
};

// Log frames of one invocation: 1000 bytes logged, the frame crossing that cut and
// marked, the rest dropped, counted, and reported in one line.
TEST_F(StdioTest, LogFramesAreCappedPerInvocation) {
  opts_.max_log_bytes = 1000;
  LogCapture cap;
  make();
  auto r = run("logs:10:300");
  ASSERT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(cap.lines_with("[event ev-0] " + std::string(300, 'l')).size(), 3u);
  auto cut = cap.lines_with("[event ev-0] " + std::string(100, 'l') + "… [truncated 200 bytes]");
  EXPECT_EQ(cut.size(), 1u);
  EXPECT_EQ(cap.lines_with("[fn thumbnail] [event ev-0] dropped 1800 bytes of Log frames (6 "
                           "frame(s)")
                .size(),
            1u);
  EXPECT_EQ(rt_->stats().log_dropped_bytes, 2000u);
  // The next invocation has a budget of its own.
  EXPECT_EQ(run("logs:2:300").outcome, Outcome::success);
  EXPECT_EQ(cap.lines_with("[event ev-1] " + std::string(300, 'l')).size(), 2u);
  EXPECT_EQ(rt_->stats().log_dropped_bytes, 2000u);
}

// stderr beyond the worker's budget per window is dropped, counted and reported
// ("dropped N bytes of stderr"), never silently.
TEST_F(StdioTest, StderrOverTheWindowBudgetIsDroppedCountedAndReported) {
  opts_.stderr_budget = LogBudgetOptions{1000, Millis{3600000}};
  LogCapture cap;
  make();
  auto r = run("stderr:20:100");
  ASSERT_EQ(r.outcome, Outcome::success) << r.message;
  ASSERT_TRUE(eventually([&] { return rt_->stats().stderr_dropped_bytes == 1000; }))
      << rt_->stats().stderr_dropped_bytes;
  EXPECT_EQ(cap.lines_with(std::string(99, 's')).size(), 10u);
  const pid_t pid = only_pid();
  ::kill(pid, SIGKILL);  // stderr reaches EOF: the drops are reported
  const std::string report =
      "[fn thumbnail] [worker " + std::to_string(pid) +
      "] dropped 1000 bytes of stderr (more than 1000 bytes in 3600000 ms)";
  EXPECT_TRUE(eventually([&] { return cap.lines_with(report).size() == 1; }));
}

// A worker start that fails for want of file descriptors does not fail the waiting
// invocation: it waits, and the start is tried again until fds are free.
TEST_F(StdioTest, StartFailingWithEmfileKeepsTheInvocationWaiting) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
  fn_.worker_template = false;  // a template probe ending would free fds during the hoard
  auto& rt = make();
  rt.resize(0);
  ASSERT_TRUE(eventually([&] { return rt.stats().workers == 0; }));
  Collector c;
  const uint64_t before = exhaustion_counts().emfile;
  {
    FdHoard hoard;
    rt.invoke(event("echo:patient"), c.callback(0));
    ASSERT_TRUE(eventually([&] {
      hoard.top_up();
      return exhaustion_counts().emfile >= before + 2 || c.total() > 0;
    }));
    EXPECT_EQ(c.total(), 0u) << c.result(0).message;
  }
  ASSERT_TRUE(c.wait_for(1));
  EXPECT_EQ(c.result(0).outcome, Outcome::success) << c.result(0).message;
  EXPECT_EQ(c.result(0).output, "patient");
}

TEST_F(StdioTest, EnvironmentIsScrubbed) {
  ::setenv("SLUICE_TEST_SECRET", "hunter2", 1);
  fn_.env["FROM_CONFIG"] = "yes";
  make();
  EXPECT_EQ(run("env:SLUICE_TEST_SECRET").output, "<unset>");
  EXPECT_EQ(run("env:FROM_CONFIG").output, "yes");
  EXPECT_EQ(run("env:SLUICE_FUNCTION").output, "thumbnail");
  EXPECT_NE(run("env:PATH").output, "<unset>");
  ::unsetenv("SLUICE_TEST_SECRET");
}

TEST_F(StdioTest, OpenFilesLimitFromConfigApplies) {
  fn_.limits.open_files = 32;
  make();
  EXPECT_EQ(run("nofile:10").output, "opened");
  EXPECT_EQ(run("nofile:64").message, "open failed");
}

TEST_F(StdioTest, MemoryLimitFromConfigApplies) {
#if defined(SLUICE_ASAN) || defined(SLUICE_TSAN)
  GTEST_SKIP() << "a sanitized test worker needs terabytes of shadow mappings";
#endif
  fn_.limits.memory = 64 << 20;
  make();
  EXPECT_EQ(run("alloc:8").output, "allocated");
  EXPECT_EQ(run("alloc:256").message, "malloc failed");
}

TEST_F(StdioTest, ResizeGrowsShrinksAndScalesToZero) {
  make();
  only_pid();
  rt_->resize(3);
  ASSERT_TRUE(eventually([&] { return rt_->worker_pids().size() == 3; }));
  // Shrinking lets a running invocation finish first.
  Collector c;
  for (size_t i = 0; i < 6; ++i) rt_->invoke(event("sleep:300"), c.callback(i));
  rt_->resize(1);
  ASSERT_TRUE(c.wait_for(6));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(c.result(i).outcome, Outcome::success) << i;
  ASSERT_TRUE(eventually([&] { return rt_->worker_pids().size() == 1; }));
  rt_->resize(0);
  ASSERT_TRUE(eventually([&] { return rt_->stats().workers == 0; }));
  EXPECT_EQ(run("echo:cold").output, "cold");  // the next event starts one again
  EXPECT_EQ(rt_->worker_pids().size(), 1u);
}

TEST_F(StdioTest, MaxInflightFromHelloIsRespected) {
  fn_.command.push_back("max-inflight-2");
  make();
  Collector c;
  for (size_t i = 0; i < 6; ++i) rt_->invoke(event("sleep:50"), c.callback(i));
  ASSERT_TRUE(c.wait_for(6));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(c.result(i).output, "slept");
}

TEST_F(StdioTest, StopReportsHeldInvocationsAndLeavesNoProcess) {
  make();
  pid_t pid = only_pid();
  Collector c;
  rt_->invoke(event("hang"), c.callback(0));
  ASSERT_TRUE(eventually([&] { return rt_->stats().inflight == 1; }));
  rt_->stop(Millis{50});
  EXPECT_EQ(c.total(), 1u);
  EXPECT_EQ(c.result(0).outcome, Outcome::crash);
  EXPECT_TRUE(process_dead(pid));
  EXPECT_EQ(rt_->stats().workers, 0u);
  auto r = run("echo:x");
  EXPECT_EQ(r.outcome, Outcome::error);
}

}  // namespace
}  // namespace sluice::workers::testing

namespace sluice::workers::testing {
namespace {

// The dispatcher's way: the callback of one invocation starts the next, on the thread
// that runs the callbacks; every answer comes once and in order. On a shared loop that
// thread is the lender's (no thread of the runtime's own is involved).
TEST_F(StdioTest, EachCallbackStartsTheNextInvocation) {
  fn_.workers.min = 2;
  make();
  constexpr int kChains = 3, kPer = 300;
  std::vector<Event*> evs;
  for (int i = 0; i < kChains * kPer; ++i) evs.push_back(&event("echo:" + std::to_string(i)));
  struct Chain {
    int next = 0, ok = 0;
    std::set<std::thread::id> threads;
  };
  std::vector<Chain> chains(kChains);
  std::promise<void> all;
  std::atomic<int> finished{0};
  std::function<void(int)> start = [&](int c) {
    const int i = c * kPer + chains[c].next++;
    rt_->invoke(*evs[i], [&, c, i](InvocationResult&& r) {
      Chain& ch = chains[c];
      ch.threads.insert(std::this_thread::get_id());
      if (r.outcome == Outcome::success && r.output == std::to_string(i)) ++ch.ok;
      if (ch.next < kPer) return start(c);
      if (++finished == kChains) all.set_value();
    });
  };
  for (int c = 0; c < kChains; ++c) start(c);
  ASSERT_EQ(all.get_future().wait_for(kDeadline), std::future_status::ready);
  for (const Chain& ch : chains) {
    EXPECT_EQ(ch.ok, kPer);
#ifdef SLUICE_SHARED_LOOP
    EXPECT_EQ(ch.threads, std::set<std::thread::id>{lent_.thread.get_id()});
#else
    EXPECT_FALSE(ch.threads.count(lent_.thread.get_id()));
#endif
  }
}

#ifdef SLUICE_SHARED_LOOP
TEST_F(StdioTest, StopOnTheLoopsOwnThreadIsRefused) {
  make();
  std::promise<bool> threw;
  boost::asio::post(*lent_.io, [&] {
    try {
      rt_->stop(Millis{0});
      threw.set_value(false);
    } catch (const std::logic_error&) {
      threw.set_value(true);
    }
  });
  EXPECT_TRUE(threw.get_future().get());
  EXPECT_EQ(run("echo:still").output, "still");
}

TEST_F(StdioTest, ALoopOfferedAfterStartIsIgnored) {
  make();
  auto other = std::make_shared<boost::asio::io_context>();
  rt_->share_loop(other);  // not run by anyone: the runtime must not depend on it
  EXPECT_EQ(run("echo:x").output, "x");
}
#endif

// Worker templates (worker_template.h): the test worker in mode `template` serves as
// one, as the Python SDK does. A forked worker is the template's child, not ours.
class TemplateTest : public StdioTest {
 protected:
  // Scales to zero, waits for the template, then has the next event start a worker:
  // forked from the template when it is ready.
  void scaled_to_zero() {
    make();
    only_pid();
    rt_->resize(0);
    EXPECT_TRUE(eventually([&] { return rt_->stats().workers == 0; }));
  }
  pid_t cold_template() {
    scaled_to_zero();
    EXPECT_TRUE(eventually([&] { return rt_->template_pid() > 0; }));
    return rt_->template_pid();
  }
  std::string parent_of_next_worker() {
    auto r = run("ppid");
    EXPECT_EQ(r.outcome, Outcome::success) << r.message;
    return r.output;
  }
  // A template in test-worker `mode` answers the first fork request wrong (or not at
  // all): it is killed and the worker spawned by us instead.
  void killed_at_first_fork(const char* mode) {
    fn_.command = {SLUICE_STDIO_TEST_WORKER, mode};
    opts_.restart_initial = Millis{60000};
    pid_t tpl = cold_template();
    EXPECT_EQ(parent_of_next_worker(), std::to_string(::getpid()));
    EXPECT_TRUE(eventually([&] { return process_dead(tpl); }));
    EXPECT_EQ(rt_->template_pid(), -1);
  }
  // This process's fds that are memfds the test worker sent with bad control messages.
  static size_t garbage_fds_held() {
    size_t n = 0;
    for (auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
      std::error_code ec;
      auto target = std::filesystem::read_symlink(e.path(), ec).string();
      if (target.find("sluice-test-garbage") != std::string::npos) ++n;
    }
    return n;
  }
  // The fds this process holds before a runtime is made. A lent loop opens its
  // reactor's fds at its first use, and keeps them: they are opened first.
  size_t fds_before_runtime() {
#ifdef SLUICE_SHARED_LOOP
    boost::asio::steady_timer opens_the_reactor(*lent_.io);
#endif
    return open_fd_count();
  }
  // Every fd the runtime opened is closed once it is destroyed.
  void expect_no_fd_left(size_t before) {
    rt_.reset();
    EXPECT_TRUE(eventually([&] { return open_fd_count() == before; }))
        << open_fd_count() << " fds open, " << before << " before the runtime";
  }
};

TEST_F(TemplateTest, AWorkerForkedFromTheTemplateServesEvents) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  pid_t tpl = cold_template();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
  EXPECT_EQ(run("echo:warm").output, "warm");
  EXPECT_EQ(run("env:SLUICE_TEMPLATE").output, "<unset>");  // the flag is the template's only
  EXPECT_EQ(run("env:SLUICE_FUNCTION").output, "thumbnail");
  EXPECT_EQ(rt_->stats().workers, 1u);  // the template is no worker
  // It is its own process group: a stop kills it, and the template too.
  pid_t worker = rt_->worker_pids().at(0);
  EXPECT_EQ(::getpgid(worker), worker);
  rt_->stop(Millis{0});
  EXPECT_TRUE(eventually([&] { return process_dead(worker) && process_dead(tpl); }));
}

TEST_F(TemplateTest, KillingTheTemplateFallsBackToSpawningThenItIsRestarted) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  opts_.restart_initial = Millis{2000};  // the restart comes after the next event
  pid_t tpl = cold_template();
  ASSERT_EQ(::kill(tpl, SIGKILL), 0);
  ASSERT_TRUE(eventually([&] { return rt_->template_pid() == -1; }));
  EXPECT_EQ(parent_of_next_worker(), std::to_string(::getpid()));  // spawned by us
  ASSERT_TRUE(eventually([&] { return rt_->template_pid() > 0; }));
  EXPECT_NE(rt_->template_pid(), tpl);
}

TEST_F(TemplateTest, AForkedWorkerThatCrashesIsRestartedWithItsStatus) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  pid_t tpl = cold_template();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
  pid_t before = rt_->worker_pids().at(0);
  auto r = run("crash");
  EXPECT_EQ(r.outcome, Outcome::crash);
  // the status comes from the template's report (it reaped the worker)
  EXPECT_NE(r.message.find("SIGABRT"), std::string::npos) << r.message;
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success) << p.message;
  EXPECT_NE(p.output, std::to_string(before));
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));  // forked again
}

TEST_F(TemplateTest, AForkedWorkerHasTheLimitsOfTheConfig) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  fn_.limits.open_files = 32;  // the template got them at its start; a fork inherits them
  pid_t tpl = cold_template();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
  EXPECT_EQ(run("nofile:10").output, "opened");
  EXPECT_EQ(run("nofile:64").message, "open failed");
}

TEST_F(TemplateTest, ATimeoutKillsAForkedWorker) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  fn_.timeout = Millis{100};
  opts_.kill_grace = Millis{100};
  pid_t tpl = cold_template();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
  pid_t before = rt_->worker_pids().at(0);
  EXPECT_EQ(run("hang").outcome, Outcome::timeout);
  EXPECT_TRUE(eventually([&] { return process_dead(before); }));
  ASSERT_TRUE(eventually([&] { return rt_->worker_pids().empty(); }));  // its exit was seen
  EXPECT_EQ(run("echo:again").output, "again");
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
}

TEST_F(TemplateTest, ATemplateThatDoesNotAnswerIsKilledAndTheWorkerSpawned) {
  killed_at_first_fork("template-mute");
}

TEST_F(TemplateTest, AForkAnswerNamingAnotherProcessIsRefused) {
  // "forked 1": signalling group 1 would reach every process; the pidfd says otherwise.
  killed_at_first_fork("template-liar");
}

TEST_F(TemplateTest, AForkAnswerWhosePidfdNamesAnotherProcessIsRefused) {
  // "forked <the template's own pid>" with the new worker's pidfd.
  killed_at_first_fork("template-forger");
}

// Before its "ready" and before its fork answer the template sends truncated,
// non-numeric, negative, overflowing and over-long messages, an embedded NUL, unknown
// verbs, wrong fd counts (fork answers without a fd or with two) and exit reports for
// pids sluice does not watch (one for the worker it is forking, before the answer):
// each is ignored, every fd that came with them closed, and the fork still used.
TEST_F(TemplateTest, BadControlMessagesAreIgnoredAndTheirFdsClosed) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template-garbage"};
  const size_t fds_before = fds_before_runtime();
  pid_t tpl = cold_template();
  EXPECT_EQ(garbage_fds_held(), 0u);
  EXPECT_EQ(parent_of_next_worker(), std::to_string(tpl));
  EXPECT_EQ(run("echo:still").output, "still");
  EXPECT_EQ(garbage_fds_held(), 0u);
  EXPECT_EQ(rt_->template_pid(), tpl);
  // The early "exit <pid> 0" was dropped: the crash comes with the template's real report.
  auto r = run("crash");
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_NE(r.message.find("SIGABRT"), std::string::npos) << r.message;
  expect_no_fd_left(fds_before);
}

TEST_F(TemplateTest, ATemplateAnsweringWithBadMessagesOnlyIsKilledAndTheWorkerSpawned) {
  const size_t fds_before = fds_before_runtime();
  killed_at_first_fork("template-garbage-only");
  EXPECT_EQ(run("echo:spawned").output, "spawned");
  EXPECT_EQ(garbage_fds_held(), 0u);
  expect_no_fd_left(fds_before);
}

// The warnings about bad messages are bounded as the template's stderr is: here 1000
// bytes (each line takes more than 79), the rest dropped and reported in one line.
TEST_F(TemplateTest, WarningsAboutBadControlMessagesAreWithinTheStderrBudget) {
  opts_.stderr_budget = LogBudgetOptions{1000, Millis{3600000}};
  LogCapture cap;
  killed_at_first_fork("template-garbage-only");
  const auto warnings = cap.lines_with("sent a bad control message").size();
  EXPECT_GE(warnings, 1u);
  EXPECT_LE(warnings, 1000u / 79);
  EXPECT_EQ(cap.lines_with(" bytes of warnings about bad control messages (more than 1000 bytes in "
                           "3600000 ms)")
                .size(),
            1u);
}

TEST_F(TemplateTest, ACommandWithoutSupportIsSpawnedAndNotTriedAgain) {
  // The plain test worker ignores SLUICE_TEMPLATE and says Hello: it is no template.
  scaled_to_zero();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(::getpid()));
  EXPECT_EQ(rt_->template_pid(), -1);
}

TEST_F(TemplateTest, OffInTheConfigMeansNoTemplate) {
  fn_.command = {SLUICE_STDIO_TEST_WORKER, "template"};
  fn_.worker_template = false;
  scaled_to_zero();
  EXPECT_EQ(parent_of_next_worker(), std::to_string(::getpid()));
  EXPECT_EQ(rt_->template_pid(), -1);
}

}  // namespace
}  // namespace sluice::workers::testing
