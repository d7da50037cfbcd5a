// EngineLock: one holder per database file; the second is told who holds it; the
// kernel releases it when the holder dies (here: a forked child killed with SIGKILL).
#include "broker-adapters/local/engine_lock.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <optional>

#include "test_util.h"

namespace sluice::local::testing {
namespace {

TEST(EngineLock, SecondHolderIsRefusedWithThePidAndTheFile) {
  TempDir dir;
  const std::string db = dir.file("sub/q.db");
  auto first = EngineLock::acquire(db);
  ASSERT_TRUE(first) << first.error().message;
  EXPECT_EQ(first.value().path(), db + ".lock");
  auto second = EngineLock::acquire(db);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::unavailable);
  EXPECT_NE(second.error().message.find(db), std::string::npos) << second.error().message;
  EXPECT_NE(second.error().message.find("pid " + std::to_string(::getpid())), std::string::npos)
      << second.error().message;
  // Another database is independent.
  EXPECT_TRUE(EngineLock::acquire(dir.file("other.db")));
}

TEST(EngineLock, ReleasedOnDestructionAndOnKill) {
  TempDir dir;
  const std::string db = dir.file("q.db");
  { auto l = EngineLock::acquire(db); ASSERT_TRUE(l); }
  EXPECT_TRUE(EngineLock::acquire(db)) << "not released by the destructor";

  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto l = EngineLock::acquire(db);
    char c = l ? '1' : '0';
    (void)!::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  char c = 0;
  ASSERT_EQ(::read(ready[0], &c, 1), 1);
  ASSERT_EQ(c, '1');
  auto held = EngineLock::acquire(db);
  ASSERT_FALSE(held);
  EXPECT_NE(held.error().message.find("pid " + std::to_string(child)), std::string::npos)
      << held.error().message;
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  EXPECT_TRUE(EngineLock::acquire(db)) << "not released when the holder was killed";
  ::close(ready[0]);
  ::close(ready[1]);
}

}  // namespace
}  // namespace sluice::local::testing
