// The http runtime against a real upstream process (http_test_server.cc):
// success, error, back pressure, timeout, crash, huge output, garbage output,
// start-up failures, keep-alive, CloudEvents binary mode, isolation, resize.
// Built twice: as http_runtime_test (the runtime's own io thread) and, with
// SLUICE_SHARED_LOOP, as http_runtime_shared_loop_test (every runtime on a lent
// loop, as the dispatcher lends its own: share_loop()).
#include <stdlib.h>

#include <future>

#include "workers/http_runtime.h"
#include "workers/tests/test_util.h"

namespace sluice::workers::testing {
namespace {

class HttpTest : public ::testing::Test {
 protected:
  HttpTest() {
    fn_.name = "resize";
    fn_.runtime = RuntimeKind::http;
    fn_.command = {SLUICE_HTTP_TEST_SERVER};
    fn_.timeout = Millis{60000};
    fn_.start_timeout = Millis{20000};
    opts_.restart_initial = Millis{10};
  }

  HttpRuntime& make() {
    rt_.reset();
    rt_ = std::make_unique<HttpRuntime>(fn_, dir_.path, opts_);
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
    events_.push_back(std::move(e));
    return events_.back();
  }

  InvocationResult run(Event& ev) {
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

  LentLoop lent_;  // lent in http_runtime_shared_loop_test only; outlives rt_
  TempDir dir_;
  FunctionConfig fn_;
  HttpOptions opts_;
  std::deque<Event> events_;
  std::unique_ptr<HttpRuntime> rt_;
};

TEST(RetryAfter, SecondsAndHttpDates) {
  EXPECT_EQ(parse_retry_after("5", 0)->count(), 5000);
  EXPECT_EQ(parse_retry_after(" 0 ", 0)->count(), 0);
  EXPECT_FALSE(parse_retry_after("soon", 0));
  EXPECT_FALSE(parse_retry_after("-3", 0));
  EXPECT_FALSE(parse_retry_after("", 0));
  // Wed, 21 Oct 2015 07:28:00 GMT = 1445412480 s
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470000)->count(), 10000);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412490000)->count(), 0);
  EXPECT_FALSE(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT junk", 0));
}

TEST_F(HttpTest, SuccessCarriesBodyAndContentType) {
  make();
  auto r = run("echo:hello");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "hello");
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(rt_->kind(), "http");
}

TEST_F(HttpTest, EventsArePostedInCloudEventsBinaryMode) {
  make();
  Event& e = event("header:ce-id");
  e.datacontenttype = "application/json";
  e.extensions.push_back({"traceparent", "00-abc-01"});
  EXPECT_EQ(run(e).output, "ev-0");
  EXPECT_EQ(run("header:ce-type").output, "test.event");
  EXPECT_EQ(run("header:ce-specversion").output, "1.0");
  Event& j = event("header:content-type");
  j.datacontenttype = "application/json";
  EXPECT_EQ(run(j).output, "application/json");
  Event& x = event("header:ce-traceparent");
  x.extensions.push_back({"traceparent", "00-abc-01"});
  EXPECT_EQ(run(x).output, "00-abc-01");
}

TEST_F(HttpTest, ConnectionsAreKeptAlive) {
  make();
  ASSERT_EQ(run("echo:warm").outcome, Outcome::success);
  std::string before = run("conn").output;
  for (int i = 0; i < 20; ++i) ASSERT_EQ(run("echo:x").output, "x");
  EXPECT_EQ(run("conn").output, before);
}

TEST_F(HttpTest, ManyConcurrentInvocations) {
  make();
  Collector c;
  for (size_t i = 0; i < 100; ++i) rt_->invoke(event("echo:" + std::to_string(i)), c.callback(i));
  ASSERT_TRUE(c.wait_for(100));
  for (size_t i = 0; i < 100; ++i) EXPECT_EQ(c.result(i).output, std::to_string(i));
}

TEST_F(HttpTest, OtherStatusesAreErrors) {
  make();
  auto r = run("status:500");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "HTTP 500: status 500");
  EXPECT_EQ(run("status:404").outcome, Outcome::error);
  EXPECT_EQ(run("status:202").outcome, Outcome::success);
}

TEST_F(HttpTest, BackPressureHonoursRetryAfter) {
  make();
  auto r = run("busy:3");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find("HTTP 503 (busy, retry later)"), std::string::npos) << r.message;
  ASSERT_TRUE(r.retry_after.has_value());
  EXPECT_EQ(r.retry_after->count(), 3000);
  auto d = run("busy-date");
  EXPECT_NE(d.message.find("HTTP 429"), std::string::npos) << d.message;
  ASSERT_TRUE(d.retry_after.has_value());
  EXPECT_GT(d.retry_after->count(), 60000);
  EXPECT_LE(d.retry_after->count(), 121000);
}

TEST_F(HttpTest, TimeoutClosesTheConnection) {
  fn_.timeout = Millis{100};
  make();
  auto r = run("sleep:3000");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_EQ(r.message, "timed out after 100ms");
  EXPECT_EQ(run("echo:after").output, "after");
}

TEST_F(HttpTest, CrashFailsHeldInvocationsAndRestarts) {
  make();
  std::string before = run("pid").output;
  Collector c;
  for (size_t i = 0; i < 3; ++i) rt_->invoke(event("sleep:30000"), c.callback(i));
  ASSERT_TRUE(eventually([&] { return rt_->stats().inflight == 3; }));
  rt_->invoke(event("crash"), c.callback(3));
  ASSERT_TRUE(c.wait_for(4));
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(c.calls(i), 1u);
    EXPECT_EQ(c.result(i).outcome, Outcome::crash) << i << " " << c.result(i).message;
  }
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success) << p.message;
  EXPECT_NE(p.output, before);
}

TEST_F(HttpTest, HugeOutputIsAnError) {
  opts_.max_output_bytes = 1 << 20;
  make();
  EXPECT_EQ(run("huge:" + std::to_string(1 << 20)).output.size(), size_t{1} << 20);
  auto r = run("huge:" + std::to_string((1 << 20) + 1));
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "output exceeds 1048576 bytes") << r.output.size();
  EXPECT_EQ(run("echo:still").output, "still");
}

TEST_F(HttpTest, GarbageAnswerIsACrashAndARestart) {
  make();
  std::string before = run("pid").output;
  auto r = run("garbage");
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_NE(r.message.find("not an HTTP response"), std::string::npos) << r.message;
  auto p = run("pid");
  EXPECT_EQ(p.outcome, Outcome::success);
  EXPECT_NE(p.output, before);
}

TEST_F(HttpTest, ConnectionClosedWithoutAnswerIsACrash) {
  make();
  ASSERT_EQ(run("echo:warm").outcome, Outcome::success);
  auto r = run("close");  // reused connection: retried once fresh, then a crash
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_EQ(run("echo:back").output, "back");
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
class HttpStartTest : public HttpTest, public ::testing::WithParamInterface<StartCase> {};

TEST_P(HttpStartTest, FailedStartIsAClearErrorNeverAHang) {
  fn_.command.push_back(GetParam().mode);
  fn_.start_timeout = Millis{500};
  make();
  auto r = run("echo:x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find(GetParam().expect), std::string::npos) << r.message;
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HttpStartTest,
    ::testing::Values(StartCase{"never-ready", "not ready within 500ms: GET /healthz"},
                      StartCase{"never-ready", "HTTP 503"},
                      StartCase{"no-listen", "Connection refused"},
                      StartCase{"exit-at-start", "exit status 9"}),
    case_name);

// A worker start that fails for want of file descriptors does not fail the waiting
// invocation: it waits, and the start is tried again until fds are free.
TEST_F(HttpTest, StartFailingWithEmfileKeepsTheInvocationWaiting) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
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

// A new connection to a healthy worker that cannot be opened for want of fds is not
// the worker's fault: the call waits and goes out again (here on the connection the
// other call gives back); no crash, no restart.
TEST_F(HttpTest, ConnectionHittingEmfileWaitsInsteadOfCrashing) {
  SKIP_FD_HOARDING_UNDER_SANITIZERS();
  make();
  ASSERT_EQ(run("echo:warm").outcome, Outcome::success);  // leaves one idle connection
  const pid_t pid = rt_->worker_pids().at(0);
  const uint64_t before = exhaustion_counts().emfile;
  Collector c;
  {
    FdHoard hoard;
    // a takes the idle connection and holds it for a while (so that a thread
    // preempted between the two invokes does not let b have it): b needs a new one,
    // EMFILE, and waits until a's connection is free again.
    rt_->invoke(event("sleep:100"), c.callback(0));
    rt_->invoke(event("echo:b"), c.callback(1));
    ASSERT_TRUE(c.wait_for(2));
    EXPECT_GT(exhaustion_counts().emfile, before);
  }
  for (size_t i = 0; i < 2; ++i)
    EXPECT_EQ(c.result(i).outcome, Outcome::success) << c.result(i).message;
  EXPECT_EQ(c.result(1).output, "b");
  EXPECT_EQ(rt_->worker_pids(), std::vector<pid_t>{pid});
}

TEST_F(HttpTest, ReadyPathIsConfigurable) {
  fn_.ready_path = "/nothing-here";
  fn_.start_timeout = Millis{300};
  make();
  auto r = run("echo:x");
  EXPECT_NE(r.message.find("GET /nothing-here"), std::string::npos) << r.message;
}

TEST_F(HttpTest, CommandNotFoundIsAnError) {
  fn_.command = {"no-such-sluice-server"};
  make();
  auto r = run("echo:x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find("not found in PATH"), std::string::npos) << r.message;
}

TEST_F(HttpTest, EnvironmentIsScrubbedAndHasPort) {
  ::setenv("SLUICE_TEST_SECRET", "hunter2", 1);
  fn_.env["FROM_CONFIG"] = "yes";
  make();
  EXPECT_EQ(run("env:SLUICE_TEST_SECRET").output, "<unset>");
  EXPECT_EQ(run("env:FROM_CONFIG").output, "yes");
  EXPECT_GT(std::stoi(run("env:PORT").output), 0);
  ::unsetenv("SLUICE_TEST_SECRET");
}

TEST_F(HttpTest, ResizeGrowsAndShrinksLettingCallsFinish) {
  make();
  ASSERT_EQ(run("echo:x").outcome, Outcome::success);
  rt_->resize(3);
  ASSERT_TRUE(eventually([&] { return rt_->worker_pids().size() == 3; }));
  Collector c;
  for (size_t i = 0; i < 6; ++i) rt_->invoke(event("sleep:300"), c.callback(i));
  ASSERT_TRUE(eventually([&] { return rt_->stats().inflight == 6; }));
  rt_->resize(1);
  ASSERT_TRUE(c.wait_for(6));
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(c.result(i).outcome, Outcome::success) << i;
  ASSERT_TRUE(eventually([&] { return rt_->worker_pids().size() == 1; }));
}

TEST_F(HttpTest, StopReportsHeldInvocations) {
  make();
  ASSERT_EQ(run("echo:x").outcome, Outcome::success);
  Collector c;
  rt_->invoke(event("sleep:30000"), c.callback(0));
  ASSERT_TRUE(eventually([&] { return rt_->stats().inflight == 1; }));
  rt_->stop(Millis{50});
  EXPECT_EQ(c.total(), 1u);
  EXPECT_EQ(c.result(0).outcome, Outcome::crash);
  EXPECT_EQ(rt_->stats().workers, 0u);
}

}  // namespace
}  // namespace sluice::workers::testing

namespace sluice::workers::testing {
namespace {

// Callbacks run on the loop's thread: the lent one when lent, else the runtime's own.
TEST_F(HttpTest, CallbacksRunOnTheLoopsThread) {
  make();
  std::promise<std::thread::id> where;
  rt_->invoke(event("echo:x"), [&](InvocationResult&& r) {
    EXPECT_EQ(r.output, "x");
    where.set_value(std::this_thread::get_id());
  });
  auto f = where.get_future();
  ASSERT_EQ(f.wait_for(kDeadline), std::future_status::ready);
#ifdef SLUICE_SHARED_LOOP
  EXPECT_EQ(f.get(), lent_.thread.get_id());
#else
  EXPECT_NE(f.get(), lent_.thread.get_id());
#endif
}

// Every handler the runtime gives a lent loop holds the loop's Hold, so none of them
// runs after stop() returned (runtime_loop.h). The worker crashes while a process that
// left its group holds its stdout and stderr: the pool's timer that cuts those pipes
// off (2 s) is pending when stop() is called. Counted on a loop of the test's own,
// whatever the build.
TEST_F(HttpTest, NoHandlerRunsOnALentLoopAfterStopReturns) {
  auto io = std::make_shared<boost::asio::io_context>();
  auto guard = boost::asio::make_work_guard(*io);
  std::atomic<bool> stopped{false};
  std::atomic<int> late{0};  // handlers that started after stop() returned
  std::thread loop([&] {
    for (;;) {
      const bool after = stopped.load();
      if (!io->run_one()) break;
      if (after) ++late;
    }
  });
  fn_.command = {"/bin/sh", "-c", "setsid sleep 4 & exec \"$0\"", SLUICE_HTTP_TEST_SERVER};
  opts_.restart_initial = Millis{60000};  // no restart before the stop
  auto rt = std::make_unique<HttpRuntime>(fn_, dir_.path, opts_);
  rt->share_loop(io);
  ASSERT_TRUE(rt->start());
  Collector c;
  rt->invoke(event("echo:x"), c.callback(0));
  ASSERT_TRUE(c.wait_for(1));
  rt->invoke(event("crash"), c.callback(1));
  ASSERT_TRUE(c.wait_for(2));
  EXPECT_EQ(c.result(1).outcome, Outcome::crash);
  ASSERT_TRUE(eventually([&] { return rt->worker_pids().empty(); }));
  rt->stop(Millis{0});
  stopped = true;
  rt.reset();
  guard.reset();
  loop.join();  // runs whatever is still queued or pending
  EXPECT_EQ(late.load(), 0);
}

}  // namespace
}  // namespace sluice::workers::testing
