// The worker template's control messages (template_message.h): each form, and the bad
// forms a template process could send; the exit reports kept for adopted pids only
// (ExitReports); the fork answer's pid checked against a real pidfd
// (check_fork_answer). A real template sending bad messages: stdio_runtime_test.cc.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "workers/child_process.h"
#include "workers/template_message.h"
#include "workers/worker_template.h"

namespace sluice::workers {
namespace {

using namespace std::string_literals;

TemplateMessage parsed(std::string_view datagram, size_t nfds = 0) {
  auto m = parse_template_message(datagram, nfds);
  EXPECT_TRUE(m) << "'" << datagram << "': " << (m ? "" : m.error().message);
  return m ? m.value() : TemplateMessage{TemplateForkError{"<refused>"}};
}

// Why `datagram` is refused ("" if it is not).
std::string refused(std::string_view datagram, size_t nfds = 0) {
  auto m = parse_template_message(datagram, nfds);
  EXPECT_FALSE(m) << "'" << datagram << "' was accepted";
  if (m) return "";
  EXPECT_EQ(m.error().code, Errc::invalid_argument);
  EXPECT_EQ(m.error().message.find('\n'), std::string::npos);
  return m.error().message;
}

TEST(TemplateMessage, ParsesEachForm) {
  EXPECT_EQ(std::get<TemplateReady>(parsed("ready 4242")).pid, 4242);
  EXPECT_EQ(std::get<TemplateForked>(parsed("forked 4243", 1)).pid, 4243);
  EXPECT_EQ(std::get<TemplateForkError>(parsed("error [Errno 11] try again")).text,
            "[Errno 11] try again");
  EXPECT_EQ(std::get<TemplateForkError>(parsed("error ")).text, "");
  auto x = std::get<TemplateExit>(parsed("exit 4243 134"));
  EXPECT_EQ(x.pid, 4243);
  EXPECT_EQ(x.wait_status, 134);
  EXPECT_EQ(std::get<TemplateExit>(parsed("exit 1 0")).wait_status, 0);
}

TEST(TemplateMessage, NumbersAtTheirBoundsParse) {
  EXPECT_EQ(std::get<TemplateReady>(parsed("ready 2147483647")).pid, 2147483647);
  EXPECT_EQ(std::get<TemplateReady>(parsed("ready 1")).pid, 1);
  EXPECT_EQ(std::get<TemplateExit>(parsed("exit 7 65535")).wait_status, 65535);
}

TEST(TemplateMessage, TruncatedMessagesAreRefused) {
  EXPECT_NE(refused("forked", 1).find("'forked' needs a pid"), std::string::npos);
  EXPECT_NE(refused("forked ", 1).find("'forked' needs a pid"), std::string::npos);
  EXPECT_NE(refused("exit 12").find("'exit' needs a wait status"), std::string::npos);
  EXPECT_NE(refused("exit 12 ").find("'exit' needs a wait status"), std::string::npos);
  EXPECT_NE(refused("exit ").find("'exit' needs a pid"), std::string::npos);
  EXPECT_NE(refused("exit").find("'exit' needs a pid"), std::string::npos);
  refused("ready");
  refused("ready ");
  EXPECT_NE(refused("error").find("'error' needs a space"), std::string::npos);
  refused("forke", 1);
}

TEST(TemplateMessage, NonNumericNegativeAndOverflowingNumbersAreRefused) {
  for (const char* m : {"ready abc", "ready -5", "ready +5", "ready 0", "ready 007", "ready 0x10",
                        "ready 12a", "ready 2147483648", "ready 4294967297",
                        "ready 99999999999999999999999", "ready 1e3", "exit -3 0", "exit 0 0",
                        "exit abc 0", "exit 12 -1", "exit 12 65536", "exit 12 4294967296",
                        "exit 12 1.5", "exit 12 00"})
    refused(m);
  for (const char* m : {"forked -1", "forked 0", "forked 4294967297", "forked 99999999999"})
    refused(m, 1);
}

TEST(TemplateMessage, SpacesAreExact) {
  for (const char* m : {"ready  12", "ready 12 ", " ready 12", "ready 12 34", "ready\t12",
                        "exit 12  0", "exit 12 0 ", "exit 12 0 1"})
    refused(m);
  refused("forked 12 ", 1);
}

TEST(TemplateMessage, AnEmbeddedNulIsRefusedInNumbersAndShownAsQuestionMarkInText) {
  refused("ready 12\0"s);
  refused("ready \0"s "12");
  refused("exit 12\0 0"s);
  refused("forked 12\0"s, 1);
  refused("ready\0 12"s);  // the verb "ready\0" is unknown
  EXPECT_EQ(std::get<TemplateForkError>(parsed("error a\0b\n\x7f\xc3\xa9"s)).text, "a?b????");
}

TEST(TemplateMessage, ErrorTextIsCutToItsBound) {
  auto e = std::get<TemplateForkError>(parsed("error " + std::string(250, 'e')));
  EXPECT_EQ(e.text, std::string(kTemplateErrorText, 'e'));
}

TEST(TemplateMessage, OverLongDatagramsAreRefused) {
  const std::string longest = "error " + std::string(kTemplateMessageMax - 6, 'e');
  parsed(longest);
  EXPECT_NE(refused(longest + "e").find("more than 256 bytes"), std::string::npos);
  refused("ready 12" + std::string(1000, ' '));
  refused(std::string(kTemplateMessageMax + 1, 'x'), 1);
}

TEST(TemplateMessage, EachMessageComesWithExactlyTheFdsItNeeds) {
  EXPECT_NE(refused("forked 12", 0).find("'forked' comes with 1 fd, not 0"), std::string::npos);
  EXPECT_NE(refused("forked 12", 2).find("'forked' comes with 1 fd, not 2"), std::string::npos);
  refused("forked 12", 4);
  EXPECT_NE(refused("ready 12", 1).find("'ready' comes with 0 fds, not 1"), std::string::npos);
  refused("exit 12 0", 1);
  refused("error boom", 3);
}

TEST(TemplateMessage, UnknownVerbsAndEmptyMessagesAreRefused) {
  EXPECT_NE(refused("fork 12").find("unknown message (7 bytes)"), std::string::npos);
  for (const char* m : {"hello", "Ready 12", "READY 12", "readyy 12", "exit12 0", "\xff\xfe"})
    refused(m);
  EXPECT_NE(refused("", 1).find("empty"), std::string::npos);
  refused("", 0);
}

// What the template reports is kept only for pids adopted from it.
TEST(TemplateExitReports, AReportForAPidNotWatchedIsDropped) {
  ExitReports r;
  EXPECT_FALSE(r.report(4242, ExitStatus::from_wait_status(0)));
  std::optional<ExitStatus> got;
  r.await(4242, [&](const ExitStatus& st) { got = st; });
  EXPECT_FALSE(got);  // nothing was kept for it
  r.close();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, ExitStatus::Kind::unknown);
}

TEST(TemplateExitReports, AWatchedPidsReportIsKeptOnceUntilTaken) {
  ExitReports r;
  r.watch(4242);
  EXPECT_TRUE(r.report(4242, ExitStatus::from_wait_status(134)));  // SIGABRT
  std::optional<ExitStatus> got;
  r.await(4242, [&](const ExitStatus& st) { got = st; });
  ASSERT_TRUE(got);
  EXPECT_EQ(got->kind, ExitStatus::Kind::signaled);
  EXPECT_EQ(got->code, SIGABRT);
  EXPECT_FALSE(r.report(4242, ExitStatus::from_wait_status(0)));  // taken: no longer watched
}

TEST(TemplateExitReports, AReportAfterTheWaiterGaveUpIsDropped) {
  ExitReports r;
  r.watch(7);
  bool called = false;
  r.await(7, [&](const ExitStatus&) { called = true; });
  r.forget(7);  // the worker was let go
  EXPECT_FALSE(r.report(7, ExitStatus::from_wait_status(0)));
  EXPECT_FALSE(called);
  r.watch(8);
  r.close();
  EXPECT_FALSE(r.report(8, ExitStatus::from_wait_status(0)));
}

// Children of the test, each paused until killed; `own_group` makes one lead its group.
class TemplateForkAnswer : public ::testing::Test {
 protected:
  pid_t child(bool own_group) {
    pid_t pid = ::fork();
    if (pid == 0) {
      if (own_group) ::setpgid(0, 0);
      for (;;) ::pause();
    }
    if (own_group) ::setpgid(pid, pid);  // as a template does, whichever runs first
    children_.push_back(pid);
    return pid;
  }
  int pidfd(pid_t pid) {
    int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
    EXPECT_GE(fd, 0);
    fds_.push_back(fd);
    return fd;
  }
  ~TemplateForkAnswer() override {
    for (int fd : fds_) ::close(fd);
    for (pid_t pid : children_) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  std::vector<pid_t> children_;
  std::vector<int> fds_;
};

TEST_F(TemplateForkAnswer, APidfdNamingThatPidLeadingItsGroupIsTaken) {
  pid_t a = child(true);
  auto checked = check_fork_answer(a, pidfd(a));
  EXPECT_TRUE(checked) << checked.error().message;
}

TEST_F(TemplateForkAnswer, APidfdNamingAnotherProcessIsRefused) {
  pid_t a = child(true);
  pid_t b = child(true);
  auto checked = check_fork_answer(b, pidfd(a));
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().message,
            "pid " + std::to_string(b) + ", but its pidfd names pid " + std::to_string(a));
  EXPECT_FALSE(check_fork_answer(::getpid(), pidfd(a)));
}

TEST_F(TemplateForkAnswer, PidOneAFdThatIsNoPidfdAndANonLeaderAreRefused) {
  pid_t a = child(true);
  EXPECT_FALSE(check_fork_answer(1, pidfd(a)));
  int memfd = ::memfd_create("not-a-pidfd", MFD_CLOEXEC);
  fds_.push_back(memfd);
  auto checked = check_fork_answer(a, memfd);
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message.find("names no process"), std::string::npos);
  pid_t c = child(false);  // in the test's process group
  checked = check_fork_answer(c, pidfd(c));
  ASSERT_FALSE(checked);
  EXPECT_NE(checked.error().message.find("does not lead its own process group"),
            std::string::npos);
}

}  // namespace
}  // namespace sluice::workers
