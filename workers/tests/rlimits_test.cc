// rlimits from the config (functions[].limits) in real processes: the fork path of
// spawn_process(), through the exec runtime.
#include "test_util.h"

namespace sluice::workers::testing {
namespace {

class RlimitsTest : public ::testing::Test {
 protected:
  InvocationResult run(std::vector<std::string> command, LimitsConfig limits,
                       Scheduling scheduling = Scheduling::batch) {
    FunctionConfig fn;
    fn.name = "limited";
    fn.command = std::move(command);
    fn.limits = limits;
    fn.scheduling = scheduling;
    fn.timeout = Millis{60000};
    ExecRuntime rt(fn, dir_.path);
    EXPECT_TRUE(rt.start());
    Event ev;
    ev.id = "ev-1";
    Collector c;
    rt.invoke(ev, c.callback(0));
    EXPECT_TRUE(c.wait_for(1));
    rt.stop(Millis{0});
    return c.result(0);
  }
  TempDir dir_;
};

TEST_F(RlimitsTest, LimitsAreSetInTheChild) {
  LimitsConfig l;
  l.memory = 64 << 20;
  l.open_files = 32;
  l.cpu_seconds = 60;
  auto r = run(sh("echo $(ulimit -d) $(ulimit -n) $(ulimit -t)"), l);
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "65536 32 60\n");  // ulimit -d is in KiB
}

// functions[].scheduling: the policy field of /proc/self/stat (41st): SCHED_BATCH is 3,
// SCHED_OTHER 0. awk reads its own stat, and inherits the policy of the shell.
TEST_F(RlimitsTest, FunctionProcessesRunSchedBatchByDefault) {
  auto r = run(sh("awk '{ print $41 }' /proc/self/stat"), {});
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "3\n");
}

TEST_F(RlimitsTest, SchedulingNormalKeepsTheDefaultPolicy) {
  auto r = run(sh("awk '{ print $41 }' /proc/self/stat"), {}, Scheduling::normal);
  EXPECT_EQ(r.outcome, Outcome::success) << r.message;
  EXPECT_EQ(r.output, "0\n");
}

TEST_F(RlimitsTest, UnsetLimitsAreInherited) {
  LimitsConfig l;
  l.open_files = 64;
  auto r = run(sh("ulimit -t"), l);
  EXPECT_EQ(r.output, "unlimited\n");
}

TEST_F(RlimitsTest, CpuLimitKillsABusyLoop) {
  LimitsConfig l;
  l.cpu_seconds = 1;
  auto r = run(sh("while :; do :; done"), l);
  EXPECT_EQ(r.outcome, Outcome::crash) << r.message;
  EXPECT_NE(r.message.find("SIGXCPU"), std::string::npos) << r.message;
}

TEST_F(RlimitsTest, ForkPathKeepsTheSpawnGuarantees) {
  LimitsConfig l;
  l.open_files = 1024;
  // Only stdin, stdout, stderr (and ls's own directory fd) are open in the child,
  // it runs in the base dir, leads its own process group and sees a clean env.
  auto fds = run({"ls", "/proc/self/fd"}, l);
  EXPECT_EQ(fds.output, "0\n1\n2\n3\n");
  EXPECT_EQ(run(sh("pwd"), l).output, dir_.path + "\n");
  auto pg = run(sh("[ $(ps -o pgid= -p $$) -eq $$ ] && echo leader"), l);
  EXPECT_EQ(pg.output, "leader\n") << pg.message;
  ::setenv("SLUICE_TEST_SECRET", "x", 1);
  EXPECT_EQ(run(sh("echo ${SLUICE_TEST_SECRET:-unset}"), l).output, "unset\n");
  ::unsetenv("SLUICE_TEST_SECRET");
}

TEST_F(RlimitsTest, ForkPathStartErrorsAreTheSame) {
  LimitsConfig l;
  l.open_files = 1024;
  auto missing = run({"no-such-sluice-command"}, l);
  EXPECT_EQ(missing.outcome, Outcome::error);
  EXPECT_EQ(missing.message,
            "cannot start 'no-such-sluice-command': No such file or directory (not found in PATH)");
  auto dir = run({"/"}, l);
  EXPECT_EQ(dir.outcome, Outcome::error);
  EXPECT_NE(dir.message.find("cannot start '/'"), std::string::npos) << dir.message;
}

TEST_F(RlimitsTest, ALimitTheKernelRefusesIsAClearError) {
  // Above fs.nr_open even root cannot raise RLIMIT_NOFILE.
  std::ifstream in("/proc/sys/fs/nr_open");
  uint64_t nr_open = 0;
  in >> nr_open;
  ASSERT_GT(nr_open, 0u);
  LimitsConfig l;
  l.open_files = nr_open + 1;
  auto r = run(sh("true"), l);
  EXPECT_EQ(r.outcome, Outcome::error);
  EXPECT_EQ(r.message, "cannot start '/bin/sh': setrlimit: Operation not permitted");
}

}  // namespace
}  // namespace sluice::workers::testing
