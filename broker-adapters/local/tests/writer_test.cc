// Failure paths of the write side: a failing batch writes nothing, a held lock is a
// retriable error.
#include "broker-adapters/local/log_writer.h"
#include "broker-adapters/local/sqlite_db.h"
#include "broker-adapters/local/tests/test_util.h"

namespace sluice::local::testing {
namespace {

std::vector<Append> appends(const std::string& topic, size_t n) {
  std::vector<Append> out;
  for (size_t i = 0; i < n; ++i)
    out.push_back(Append{topic, make_event("e" + std::to_string(i)), nullptr, std::nullopt});
  return out;
}

TEST(LogWriter, AFailingBatchWritesNothing) {
  TempDir dir;
  const auto path = dir.file("q.db");
  auto w = LogWriter::open(path, {}, "local", 1);
  ASSERT_TRUE(w) << w.error().message;
  auto db = Db::open(path, {});
  ASSERT_TRUE(db);
  // The 6th insert of the batch fails.
  ASSERT_TRUE(db.value()->exec(
      "CREATE TRIGGER fail BEFORE INSERT ON messages WHEN NEW.\"offset\" = 5 "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END"));
  auto batch = appends("t", 10);
  batch[3].reject = Error{Errc::invalid_argument, "refused"};  // skipped, no offset
  std::vector<PublishAck> acks;
  auto r = w.value()->append(batch, acks);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::io);
  EXPECT_NE(r.error().message.find(path), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("injected failure"), std::string::npos);
  EXPECT_EQ(db.value()->query_int("SELECT COUNT(*) FROM messages").value(), 0);
  EXPECT_EQ(db.value()->query_int("SELECT COUNT(*) FROM heads").value(), 0);
  EXPECT_EQ(db.value()->query_int("SELECT COUNT(*) FROM topics").value(), 0);

  ASSERT_TRUE(db.value()->exec("DROP TRIGGER fail"));
  batch = appends("t", 10);
  batch[3].reject = Error{Errc::invalid_argument, "refused"};
  ASSERT_TRUE(w.value()->append(batch, acks));
  EXPECT_EQ(acks[0].offset, 0);
  EXPECT_EQ(acks[3].offset, -1);  // rejected: untouched
  EXPECT_EQ(acks[4].offset, 3);
  EXPECT_EQ(acks[9].offset, 8);
  EXPECT_EQ(db.value()->query_int("SELECT COUNT(*) FROM messages").value(), 9);
}

TEST(LocalQueue, AHeldWriteLockIsARetriableError) {
  TempDir dir;
  const auto path = dir.file("q.db");
  auto opt = options(path, 1);
  opt.busy_timeout = std::chrono::milliseconds(50);
  auto q = LocalQueue::open(opt);
  ASSERT_TRUE(q) << q.error().message;
  auto other = Db::open(path, {});  // another process, say, mid-transaction
  ASSERT_TRUE(other);
  ASSERT_TRUE(other.value()->exec("BEGIN IMMEDIATE"));
  Acks acks;
  q.value()->publish("t", make_event("a"), acks.callback(0));
  ASSERT_TRUE(acks.wait(1));
  auto r = acks.results();
  ASSERT_TRUE(r[0] && !*r[0]);
  EXPECT_EQ(r[0]->error().code, Errc::unavailable);
  EXPECT_TRUE(r[0]->error().retriable);
  EXPECT_EQ(q.value()->probe().get(LocalError::append), 1u);

  ASSERT_TRUE(other.value()->exec("COMMIT"));
  Acks again;
  q.value()->publish("t", make_event("b"), again.callback(0));
  ASSERT_TRUE(again.wait(1));
  auto r2 = again.results();
  ASSERT_TRUE(r2[0] && *r2[0]);
  EXPECT_EQ(r2[0]->value().offset, 0);  // the failed append left nothing behind
}

TEST(LocalQueue, ABoundedQueueRefusesWithOverloaded) {
  TempDir dir;
  const auto path = dir.file("q.db");
  auto opt = options(path, 1);
  opt.max_pending_bytes = 1;  // only one publish may wait at a time
  auto q = LocalQueue::open(opt);
  ASSERT_TRUE(q) << q.error().message;
  // Hold the write lock so the writer is stuck on its first batch (whatever it took
  // when it woke: a few events at most). While it is stuck, one more publish may
  // wait in the empty queue and every later one must be refused — never queued
  // beyond the byte bound, never failed with another error.
  auto other = Db::open(path, {});
  ASSERT_TRUE(other);
  ASSERT_TRUE(other.value()->exec("BEGIN IMMEDIATE"));
  Acks acks;
  constexpr size_t kN = 50;
  for (size_t i = 0; i < kN; ++i) q.value()->publish("t", make_event("e"), acks.callback(i));
  ASSERT_TRUE(other.value()->exec("COMMIT"));
  ASSERT_TRUE(acks.wait(kN));
  auto r = acks.results();
  ASSERT_TRUE(r[0] && *r[0]) << r[0]->error().message;
  size_t refused = 0;
  for (size_t i = 0; i < kN; ++i) {
    ASSERT_TRUE(r[i]);
    if (*r[i]) continue;
    EXPECT_EQ(r[i]->error().code, Errc::overloaded) << r[i]->error().message;
    EXPECT_TRUE(r[i]->error().retriable);
    ++refused;
  }
  EXPECT_GE(refused, kN / 2);  // a stuck writer took a handful; the bound refused the rest
}

}  // namespace
}  // namespace sluice::local::testing
