// Durability: reopen, torn WAL, kill -9, several writers on one file.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include "broker-adapters/local/tests/test_util.h"

namespace sluice::local::testing {
namespace {

namespace fs = std::filesystem;

// Every stored event of `topic`, checking offsets are contiguous from the first.
std::vector<Event> read_all(Broker& b, const std::string& topic) {
  auto r = b.browser()->read(topic, -1, 0, 1000000);
  EXPECT_TRUE(r) << (r ? "" : r.error().message);
  if (!r) return {};
  std::map<int32_t, int64_t> next;
  for (const Event& e : r.value()) {
    auto [it, fresh] = next.emplace(e.partition, e.offset);
    EXPECT_EQ(e.offset, it->second) << "gap or duplicate in partition " << e.partition;
    it->second = e.offset + 1;
  }
  return std::move(r).value();
}

TEST(Durability, ReopenKeepsDataAndCommittedOffsets) {
  TempDir dir;
  const auto db = dir.file("q.db");
  {
    auto broker = LocalBroker::open(options(db, 1));
    ASSERT_TRUE(broker);
    publish_n(broker.value()->sink(), "t", 100);
    auto src = broker.value()->make_source("t", "g");
    ASSERT_TRUE(src);
    Collector c;
    ASSERT_TRUE(src.value()->start(c));
    ASSERT_TRUE(c.wait_count(100));
    src.value()->commit(0, 60);
    src.value()->stop();  // flushes commits
  }
  auto broker = LocalBroker::open(options(db, 1));
  ASSERT_TRUE(broker) << broker.error().message;
  auto all = read_all(*broker.value(), "t");
  ASSERT_EQ(all.size(), 100u);
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(all[i].id, "e" + std::to_string(i));
  auto lag = broker.value()->browser()->lag("t", "g");
  ASSERT_TRUE(lag);
  EXPECT_EQ(lag.value()[0].committed, 60);
  EXPECT_EQ(lag.value()[0].lag, 40);

  auto src = broker.value()->make_source("t", "g");
  ASSERT_TRUE(src);
  Collector c;
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(40));
  auto ev = c.events();
  EXPECT_EQ(ev.front().offset, 60);
  EXPECT_EQ(ev.back().offset, 99);
}

struct WalSnapshot {
  std::string db;  // the copied database; its WAL is db + "-wal"
  uintmax_t wal_after_a = 0, wal_after_b = 0;
};

// Writes batch A (20 events) then batch B (20), and copies the database and its
// WAL as they are on disk while the writer still has them open — what a crash
// leaves behind (no checkpoint has run; the -shm index is rebuilt on open).
WalSnapshot write_and_snapshot(const TempDir& dir) {
  WalSnapshot s;
  const auto db = dir.file("live.db");
  auto broker = LocalBroker::open(options(db, 1));
  EXPECT_TRUE(broker);
  publish_n(broker.value()->sink(), "t", 20, "a");
  s.wal_after_a = fs::file_size(db + "-wal");
  publish_n(broker.value()->sink(), "t", 20, "b");
  s.wal_after_b = fs::file_size(db + "-wal");
  EXPECT_GT(s.wal_after_b, s.wal_after_a);
  fs::create_directories(dir.path() / "crash");
  s.db = (dir.path() / "crash" / "live.db").string();
  fs::copy_file(db, s.db);
  fs::copy_file(db + "-wal", s.db + "-wal");
  return s;
}

TEST(Durability, GarbageAppendedToTheWalIsIgnored) {
  TempDir dir;
  WalSnapshot s = write_and_snapshot(dir);
  {
    std::ofstream wal(s.db + "-wal", std::ios::binary | std::ios::app);
    std::string junk(5000, '\0');
    for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<char>((i * 131 + 7) & 0xff);
    wal << junk;
  }
  auto broker = LocalBroker::open(options(s.db, 1));
  ASSERT_TRUE(broker) << broker.error().message;
  auto all = read_all(*broker.value(), "t");
  ASSERT_EQ(all.size(), 40u);
  EXPECT_EQ(all.back().id, "b19");
  EXPECT_EQ(publish_n(broker.value()->sink(), "t", 1, "c").at(0).offset, 40);
}

TEST(Durability, WalTruncatedMidFrameKeepsEverythingBefore) {
  TempDir dir;
  WalSnapshot s = write_and_snapshot(dir);
  // An odd size is never a frame boundary (32-byte header, 24 + page-size frames).
  const uintmax_t cut = (s.wal_after_a + (s.wal_after_b - s.wal_after_a) / 2) | 1;
  fs::resize_file(s.db + "-wal", cut);
  auto broker = LocalBroker::open(options(s.db, 1));
  ASSERT_TRUE(broker) << broker.error().message;
  auto all = read_all(*broker.value(), "t");
  // Batch A is whole; of B only whole transactions before the cut can remain.
  ASSERT_GE(all.size(), 20u);
  ASSERT_LT(all.size(), 40u);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(all[i].id, "a" + std::to_string(i));
  EXPECT_EQ(publish_n(broker.value()->sink(), "t", 1, "c").at(0).offset,
            static_cast<int64_t>(all.size()));
}

struct AckRecord {
  uint64_t seq;
  int32_t partition;
  int64_t offset;
};

// Reads one record, waiting at most `ms`; false on EOF or timeout.
bool read_record(int fd, AckRecord& rec, int ms) {
  size_t got = 0;
  auto* p = reinterpret_cast<char*>(&rec);
  while (got < sizeof rec) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, ms) <= 0) return false;
    ssize_t n = ::read(fd, p + got, sizeof rec - got);
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

TEST(Durability, KillNineLosesNoAcknowledgedEvent) {
  TempDir dir;
  const auto db = dir.file("q.db");
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: publish forever; report each acknowledged event on the pipe.
    ::close(fds[0]);
    const int out = fds[1];
    auto q = LocalQueue::open(options(db, 3));
    if (!q) ::_exit(3);
    for (uint64_t i = 0;; ++i) {
      q.value()->publish("t", make_event("e" + std::to_string(i), std::string(64, 'x'), 
                                         i % 2 ? "key" + std::to_string(i % 7) : ""),
                         [out, i](Result<PublishAck> r) {
                           if (!r) return;
                           AckRecord rec{i, r.value().partition, r.value().offset};
                           if (::write(out, &rec, sizeof rec) != sizeof rec) ::_exit(4);
                         });
      if (i % 256 == 255) (void)q.value()->flush(std::chrono::seconds(30));
    }
  }
  ::close(fds[1]);
  std::vector<AckRecord> acked;
  AckRecord rec{};
  while (acked.size() < 3000 && read_record(fds[0], rec, 20000)) acked.push_back(rec);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
  while (read_record(fds[0], rec, 1000)) acked.push_back(rec);  // acked before the kill
  ::close(fds[0]);
  ASSERT_GE(acked.size(), 3000u);

  auto broker = LocalBroker::open(options(db, 3));
  ASSERT_TRUE(broker) << broker.error().message;
  for (const AckRecord& a : acked) {
    auto ev = broker.value()->browser()->get("t", a.partition, a.offset);
    ASSERT_TRUE(ev) << "acknowledged event " << a.seq << " lost";
    EXPECT_EQ(ev.value().id, "e" + std::to_string(a.seq));
  }
  auto all = read_all(*broker.value(), "t");
  EXPECT_GE(all.size(), acked.size());
}

TEST(Durability, TwoProcessesAppendingKeepOffsetsContiguous) {
  TempDir dir;
  const auto db = dir.file("q.db");
  const size_t n = 1500;
  // Fork before anything opens the file: a connection must not cross a fork.
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto q = LocalQueue::open(options(db, 4));
    if (!q) {
      std::fprintf(stderr, "child: %s\n", q.error().message.c_str());
      ::_exit(3);
    }
    std::atomic<size_t> failed{0};
    for (size_t i = 0; i < n; ++i)
      q.value()->publish("t", make_event("child" + std::to_string(i)),
                         [&failed](Result<PublishAck> r) { failed += r ? 0 : 1; });
    if (!q.value()->flush(std::chrono::seconds(60))) ::_exit(5);
    q.value()->stop();
    ::_exit(failed == 0 ? 0 : 6);
  }
  auto broker = LocalBroker::open(options(db, 4));
  ASSERT_TRUE(broker) << broker.error().message;  // both may be creating the file
  publish_n(broker.value()->sink(), "t", n, "parent");
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  auto all = read_all(*broker.value(), "t");
  ASSERT_EQ(all.size(), 2 * n);
  std::set<std::string> ids;
  for (const Event& e : all) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 2 * n);
}

TEST(Durability, TwoConnectionsInOneProcessShareTheFile) {
  TempDir dir;
  const auto db = dir.file("q.db");
  auto a = LocalBroker::open(options(db, 4));
  auto b = LocalBroker::open(options(db, 4));
  ASSERT_TRUE(a && b);
  // A source on A sees B's appends through the data_version poll.
  auto src = a.value()->make_source("t", "g");
  ASSERT_TRUE(src);
  Collector c;
  ASSERT_TRUE(src.value()->start(c));
  std::thread ta([&] { publish_n(a.value()->sink(), "t", 1000, "a"); });
  std::thread tb([&] { publish_n(b.value()->sink(), "t", 1000, "b"); });
  ta.join();
  tb.join();
  ASSERT_TRUE(c.wait_count(2000));
  EXPECT_EQ(read_all(*a.value(), "t").size(), 2000u);
  src.value()->stop();
}

}  // namespace
}  // namespace sluice::local::testing
