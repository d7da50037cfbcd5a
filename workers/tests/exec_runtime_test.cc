// ExecRuntime: the outcome of one process per event (success, error, rejected,
// crash, spawn failure), byte-exact I/O, environment and working directory.
#include <sys/stat.h>

#include <set>
#include <sstream>

#include "test_util.h"

namespace sluice::workers::testing {
namespace {

using ExecRuntimeTest = ExecFixture;

TEST_F(ExecRuntimeTest, CatEchoesData) {
  make({"cat"});
  auto r = run("hello, sluice");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "hello, sluice");
  EXPECT_TRUE(r.content_type.empty());
  EXPECT_EQ(rt_->kind(), "exec");
}

// A timeout far beyond any deadline the clock can hold (2562047h47m16s, the largest
// a duration string could say) means "no practical limit": the deadline saturates
// instead of wrapping into the past and timing every call out at once.
TEST_F(ExecRuntimeTest, HugeTimeoutDoesNotWrapTheDeadline) {
  make(sh("sleep 0.3; cat"), Millis{9223372036000});
  auto r = run("still on time");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "still on time");
}

TEST_F(ExecRuntimeTest, EmptyDataClosesStdinAtOnce) {
  make({"cat"});
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "");
}

TEST_F(ExecRuntimeTest, ChildThatDoesNotReadStdinStillSucceeds) {
  make({"true"});
  auto r = run(std::string(4 << 20, 'x'));  // far more than a pipe buffer: EPIPE
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "");
}

TEST_F(ExecRuntimeTest, NonZeroExitIsErrorWithStderrTail) {
  make(sh("echo partial; echo first >&2; echo 'it broke' >&2; exit 3"));
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "exit status 3: first | it broke");
  EXPECT_EQ(r.output, "");
}

TEST_F(ExecRuntimeTest, ErrorMessageKeepsOnlyTheStderrTail) {
  make(sh("i=0; while [ $i -lt 200 ]; do echo \"noise line $i\" >&2; i=$((i+1)); done; "
          "echo 'the real cause' >&2; exit 1"));
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_LT(r.message.size(), 1400u);
  EXPECT_EQ(r.message.rfind("exit status 1: ", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("the real cause"), std::string::npos);
  EXPECT_EQ(r.message.find('\n'), std::string::npos);
}

TEST_F(ExecRuntimeTest, ExitStatus65IsRejected) {
  make(sh("echo 'not an image' >&2; exit 65"));
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::rejected);
  EXPECT_EQ(classify(r.outcome), Verdict::fatal);
  EXPECT_EQ(r.message, "rejected (exit status 65): not an image");
}

TEST_F(ExecRuntimeTest, KilledBySignalIsCrash) {
  make(sh("ulimit -c 0; echo dying >&2; kill -SEGV $$"));
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::crash);
  EXPECT_EQ(r.message.rfind("killed by signal SIGSEGV", 0), 0u) << r.message;
  EXPECT_NE(r.message.find("dying"), std::string::npos);
}

TEST_F(ExecRuntimeTest, BinaryDataPassesThroughByteExact) {
  make({"cat"});
  std::string data(3 << 20, '\0');
  uint32_t x = 12345;
  for (auto& c : data) {
    x = x * 1103515245u + 12345u;
    c = static_cast<char>(x >> 16);
  }
  for (int i = 0; i < 256; ++i) data[i] = static_cast<char>(i);
  auto r = run(data);
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_TRUE(r.output == data) << "output differs (" << r.output.size() << " bytes)";
}

// Up to the pipe's capacity stdin is written before the child starts; beyond it,
// asynchronously while the child reads. Both sides of each boundary.
TEST_F(ExecRuntimeTest, StdinAroundThePageAndThePipeCapacityArrivesWhole) {
  make({"cat"});
  for (size_t n : {size_t{1}, size_t{4095}, size_t{4096}, size_t{4097}, size_t{65535},
                   size_t{65536}, size_t{65537}, size_t{200000}}) {
    std::string data(n, 'a');
    for (size_t i = 0; i < n; ++i) data[i] = static_cast<char>('a' + i % 26);
    auto r = run(data);
    EXPECT_EQ(r.outcome, Outcome::success) << n << ": " << r.message;
    EXPECT_TRUE(r.output == data) << n << ": got " << r.output.size() << " bytes";
  }
}

TEST_F(ExecRuntimeTest, CommandNotFoundIsAClearError) {
  make({"sluice-no-such-command-4711", "arg"});
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message,
            "cannot start 'sluice-no-such-command-4711': No such file or directory "
            "(not found in PATH)");
  auto again = run("y");  // the same failure again: still reported (logged once)
  EXPECT_EQ(again.message, r.message);
  EXPECT_EQ(rt_->stats().workers, 0u);
  EXPECT_EQ(rt_->stats().inflight, 0u);
}

TEST_F(ExecRuntimeTest, CommandNotExecutableIsAClearError) {
  std::ofstream(dir_.file("handler.sh")) << "#!/bin/sh\necho hi\n";
  ::chmod(dir_.file("handler.sh").c_str(), 0644);
  make({"./handler.sh"});
  auto r = run("x");
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_NE(r.message.find("cannot start './handler.sh': Permission denied"),
            std::string::npos)
      << r.message;
}

// The command is looked up in PATH once, at start; if it is gone from there later,
// the next spawn looks again rather than failing.
TEST_F(ExecRuntimeTest, CommandMovedToAnotherPathEntryAfterStartIsFoundAgain) {
  const std::string a = dir_.file("bin-a"), b = dir_.file("bin-b");
  ::mkdir(a.c_str(), 0755);
  ::mkdir(b.c_str(), 0755);
  std::ofstream(a + "/sluice-moving-cmd") << "#!/bin/sh\necho \"ran $0\"\n";
  ::chmod((a + "/sluice-moving-cmd").c_str(), 0755);
  const std::string old_path = std::getenv("PATH") ? std::getenv("PATH") : "";
  ::setenv("PATH", (a + ":" + b + ":" + old_path).c_str(), 1);
  make({"sluice-moving-cmd"});
  auto first = run("");
  EXPECT_EQ(first.outcome, Outcome::success) << first.message;
  EXPECT_EQ(first.output, "ran " + a + "/sluice-moving-cmd\n");
  ASSERT_EQ(::rename((a + "/sluice-moving-cmd").c_str(), (b + "/sluice-moving-cmd").c_str()), 0);
  auto second = run("");
  ::setenv("PATH", old_path.c_str(), 1);
  EXPECT_EQ(second.outcome, Outcome::success) << second.message;
  EXPECT_EQ(second.output, "ran " + b + "/sluice-moving-cmd\n");
}

TEST_F(ExecRuntimeTest, RelativeCommandResolvesInBaseDir) {
  std::ofstream(dir_.file("handler.sh")) << "#!/bin/sh\necho \"handled $(cat)\"\n";
  ::chmod(dir_.file("handler.sh").c_str(), 0755);
  make({"./handler.sh"});
  auto r = run("it");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "handled it\n");
}

TEST_F(ExecRuntimeTest, WorkingDirectoryIsBaseDir) {
  make({"pwd"});
  auto r = run("");
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, dir_.path + "\n");
}

TEST_F(ExecRuntimeTest, EnvironmentIsCleanPlusEventVariables) {
  ::setenv("SLUICE_TEST_SECRET", "must-not-leak", 1);
  make({"env"}, Millis{60000}, {{"LOG_LEVEL", "debug"}, {"GREETING", "a b=c"}});
  Event& ev = event("");
  ev.id = "id-42";
  ev.subject = std::string("bad\0subject", 11);  // NUL: left out
  ev.time = "2026-11-25T09:43:44.123Z";
  ev.extensions = {{"traceparent", "00-abc-01"}, {"partitionkey", "k1"}};
  ev.broker = "kafka";
  ev.topic = "images";
  ev.partition = 3;
  ev.offset = 1234;
  ev.key = "user-7";
  ev.attempt = 2;
  auto r = run(ev);
  ::unsetenv("SLUICE_TEST_SECRET");
  ASSERT_EQ(r.outcome, Outcome::success) << r.message;

  std::map<std::string, std::string> got;
  std::istringstream lines(r.output);
  for (std::string line; std::getline(lines, line);) {
    auto eq = line.find('=');
    ASSERT_NE(eq, std::string::npos) << line;
    got[line.substr(0, eq)] = line.substr(eq + 1);
  }
  std::map<std::string, std::string> want = {
      {"LOG_LEVEL", "debug"},        {"GREETING", "a b=c"},
      {"CE_ID", "id-42"},            {"CE_SOURCE", "/test"},
      {"CE_TYPE", "test.event"},     {"CE_SPECVERSION", "1.0"},
      {"CE_TIME", ev.time},          {"CE_TRACEPARENT", "00-abc-01"},
      {"CE_PARTITIONKEY", "k1"},     {"SLUICE_FUNCTION", "thumbnail"},
      {"SLUICE_BROKER", "kafka"},    {"SLUICE_TOPIC", "images"},
      {"SLUICE_PARTITION", "3"},     {"SLUICE_OFFSET", "1234"},
      {"SLUICE_KEY", "user-7"},      {"SLUICE_ATTEMPT", "2"},
  };
  for (const char* inherited : {"PATH", "HOME"})
    if (const char* v = ::getenv(inherited)) want[inherited] = v;
  EXPECT_EQ(got, want);
}

TEST_F(ExecRuntimeTest, InvokeBeforeStartAndAfterStopIsRefused) {
  FunctionConfig fn;
  fn.name = "f";
  fn.command = {"cat"};
  ExecRuntime rt(fn, dir_.path);
  Collector c;
  Event ev;
  rt.invoke(ev, c.callback(0));
  ASSERT_EQ(c.total(), 1u);
  EXPECT_EQ(c.result(0).outcome, Outcome::error);
  EXPECT_EQ(c.result(0).message, "runtime not started");
  ASSERT_TRUE(rt.start());
  rt.stop(Millis{0});
  rt.invoke(ev, c.callback(1));
  ASSERT_EQ(c.total(), 2u);
  EXPECT_EQ(c.result(1).message, "runtime stopped");
}

TEST_F(ExecRuntimeTest, StartValidatesCommandAndBaseDir) {
  FunctionConfig fn;
  fn.name = "f";
  ExecRuntime no_command(fn, dir_.path);
  auto r = no_command.start();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::invalid_argument);

  fn.command = {"cat"};
  ExecRuntime bad_dir(fn, dir_.file("missing"));
  r = bad_dir.start();
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("does not exist"), std::string::npos);

  ExecRuntime twice(fn, dir_.path);
  ASSERT_TRUE(twice.start());
  EXPECT_FALSE(twice.start());
}

}  // namespace
}  // namespace sluice::workers::testing
