// The inproc runtime with a real dlopen()ed library: the example function
// (examples/inproc) and a test library with one command per fault.
#include <stdlib.h>
#include <atomic>
#include <thread>

#include "workers/inproc_runtime.h"
#include "workers/tests/test_util.h"

namespace sluice::workers::testing {
namespace {

class InprocTest : public ::testing::Test {
 protected:
  InprocTest() {
    fn_.name = "upper";
    fn_.runtime = RuntimeKind::inproc;
    fn_.command = {SLUICE_INPROC_TEST_LIB};
    fn_.timeout = Millis{60000};
  }

  Result<void> start() {
    rt_ = std::make_unique<InprocRuntime>(fn_, opts_);
    return rt_->start();
  }
  InprocRuntime& make() {
    auto started = start();
    EXPECT_TRUE(started) << (started ? "" : started.error().message);
    return *rt_;
  }

  Event& event(std::string data) {
    Event e;
    e.id = "ev-" + std::to_string(events_.size());
    e.data = std::move(data);
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

  void TearDown() override {
    if (rt_) rt_->stop(Millis{0});
  }

  FunctionConfig fn_;
  InprocOptions opts_;
  std::deque<Event> events_;
  std::unique_ptr<InprocRuntime> rt_;
};

TEST_F(InprocTest, ExampleFunctionUppercasesAndRejectsEmpty) {
  fn_.command = {SLUICE_INPROC_EXAMPLE_LIB};
  make();
  auto r = run("hello sluice");
  EXPECT_EQ(r.outcome, Outcome::success);
  EXPECT_EQ(r.output, "HELLO SLUICE");
  EXPECT_EQ(r.content_type, "text/plain");
  auto e = run("");
  EXPECT_EQ(e.outcome, Outcome::rejected);
  EXPECT_EQ(e.message, "empty event: nothing to upper-case");
}

TEST_F(InprocTest, SuccessErrorRejectedRetryAfter) {
  make();
  EXPECT_EQ(run("echo:hi").output, "hi");
  EXPECT_EQ(run("name").output, "upper");
  auto e = run("error:db down");
  EXPECT_EQ(e.outcome, Outcome::error);
  EXPECT_EQ(e.message, "db down");
  EXPECT_EQ(run("reject:bad").outcome, Outcome::rejected);
  auto b = run("retry:250");
  ASSERT_TRUE(b.retry_after.has_value());
  EXPECT_EQ(b.retry_after->count(), 250);
  auto rc = run("rc:7");
  EXPECT_EQ(rc.outcome, Outcome::error);
  EXPECT_EQ(rc.message, "sluice_invoke returned 7");
}

TEST_F(InprocTest, ManyConcurrentCallsOnThePool) {
  fn_.concurrency = 8;
  make();
  Collector c;
  for (size_t i = 0; i < 500; ++i) rt_->invoke(event("echo:" + std::to_string(i)), c.callback(i));
  ASSERT_TRUE(c.wait_for(500));
  for (size_t i = 0; i < 500; ++i) {
    EXPECT_EQ(c.calls(i), 1u);
    EXPECT_EQ(c.result(i).output, std::to_string(i));
  }
  EXPECT_EQ(rt_->stats().workers, 8u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

TEST_F(InprocTest, TimeoutIsReportedAndTheLateResultDropped) {
  fn_.timeout = Millis{50};
  make();
  auto r = run("sleep:400");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_EQ(r.message, "timed out after 50ms");
  EXPECT_EQ(run("echo:after").output, "after");
}

TEST_F(InprocTest, AnEscapingExceptionIsACrash) {
  make();
  auto r = run("throw");
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_EQ(r.message, "sluice_invoke threw: boom");
  EXPECT_EQ(run("echo:alive").output, "alive");
}

TEST_F(InprocTest, HugeOutputIsAnError) {
  opts_.max_output_bytes = 1000;
  make();
  EXPECT_EQ(run("huge:1000").output.size(), 1000u);
  auto r = run("huge:1001");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "output exceeds 1000 bytes");
}

TEST_F(InprocTest, GarbageResultsAreErrors) {
  make();
  auto s = run("badstatus");
  EXPECT_EQ(s.outcome, Outcome::error);
  EXPECT_EQ(s.message, "garbage result: unknown status 42");
  auto n = run("nullout");
  EXPECT_EQ(n.outcome, Outcome::error);
  EXPECT_NE(n.message.find("NULL output"), std::string::npos);
}

TEST_F(InprocTest, BadLibrariesFailAtStartWithAClearError) {
  fn_.command = {"/nonexistent/libnothing.so"};
  auto missing = start();
  ASSERT_FALSE(missing);
  EXPECT_NE(missing.error().message.find("/nonexistent/libnothing.so"), std::string::npos);
  rt_.reset();

  fn_.command = {SLUICE_NOT_AN_INPROC_LIB};
  auto not_abi = start();
  ASSERT_FALSE(not_abi);
  EXPECT_NE(not_abi.error().message.find("missing symbol(s): sluice_abi_version"),
            std::string::npos)
      << not_abi.error().message;
  rt_.reset();

  fn_.command = {SLUICE_INPROC_TEST_LIB};
  ::setenv("SLUICE_TEST_ABI_VERSION", "9", 1);
  auto version = start();
  ::unsetenv("SLUICE_TEST_ABI_VERSION");
  ASSERT_FALSE(version);
  EXPECT_NE(version.error().message.find("built for inproc ABI version 9; sluice speaks version 1"),
            std::string::npos)
      << version.error().message;
  rt_.reset();

  ::setenv("SLUICE_TEST_INIT_FAIL", "1", 1);
  auto init = start();
  ::unsetenv("SLUICE_TEST_INIT_FAIL");
  ASSERT_FALSE(init);
  EXPECT_NE(init.error().message.find("sluice_init returned 3"), std::string::npos);
}

TEST_F(InprocTest, ResizeChangesThePool) {
  fn_.concurrency = 2;
  make();
  EXPECT_EQ(rt_->stats().workers, 2u);
  rt_->resize(6);
  EXPECT_TRUE(eventually([&] { return rt_->stats().workers == 6; }));
  rt_->resize(0);  // at least one thread stays
  EXPECT_TRUE(eventually([&] { return rt_->stats().workers == 1; }));
  EXPECT_EQ(run("echo:one").output, "one");
}

TEST_F(InprocTest, StopWaitsForRunningCallsThenRefuses) {
  make();
  Collector c;
  rt_->invoke(event("sleep:100"), c.callback(0));
  rt_->stop(Millis{30000});
  ASSERT_EQ(c.total(), 1u);
  EXPECT_EQ(c.result(0).output, "slept");
  EXPECT_EQ(run("echo:x").outcome, Outcome::error);
}

// `inline: true`: the call runs on the caller's thread and `done` has been called
// when invoke() returns; the outcomes are those of the pool.
TEST_F(InprocTest, InlineCallsRunOnTheCallersThreadBeforeInvokeReturns) {
  fn_.inline_calls = true;
  make();
  EXPECT_EQ(rt_->stats().workers, 1u);
  const auto me = std::this_thread::get_id();
  std::thread::id ran_on;
  InvocationResult got;
  bool called = false;
  rt_->invoke(event("echo:hi"), [&](InvocationResult&& r) {
    ran_on = std::this_thread::get_id();
    got = std::move(r);
    called = true;
  });
  ASSERT_TRUE(called);
  EXPECT_EQ(ran_on, me);
  EXPECT_EQ(got.outcome, Outcome::success);
  EXPECT_EQ(got.output, "hi");
  EXPECT_EQ(run("throw").outcome, Outcome::crash);
  EXPECT_EQ(run("badstatus").outcome, Outcome::error);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

TEST_F(InprocTest, InlineCallPastItsTimeoutIsATimeoutAndItsResultDropped) {
  fn_.inline_calls = true;
  fn_.timeout = Millis{50};
  make();
  auto r = run("sleep:200");
  EXPECT_EQ(r.outcome, Outcome::timeout);
  EXPECT_EQ(r.message, "timed out after 50ms");
  EXPECT_EQ(r.output, "");
  EXPECT_EQ(run("echo:after").output, "after");
}

TEST_F(InprocTest, InlineStopWaitsForACallerInTheLibraryThenRefuses) {
  fn_.inline_calls = true;
  make();
  std::atomic<bool> returned{false};
  std::thread caller([&] {
    rt_->invoke(event("sleep:200"), [&](InvocationResult&& r) {
      EXPECT_EQ(r.output, "slept");
      returned = true;
    });
  });
  ASSERT_TRUE(eventually([&] { return rt_->stats().inflight == 1; }));
  rt_->stop(Millis{0});  // must not unload the library under the caller
  caller.join();
  EXPECT_TRUE(returned.load());
  EXPECT_EQ(run("echo:x").outcome, Outcome::error);
}

}  // namespace
}  // namespace sluice::workers::testing
