// A full disk (README.md "Full disk"): simulated with PRAGMA max_page_count, which makes
// SQLite answer SQLITE_FULL exactly as it does for ENOSPC. Publishers get a retriable
// Errc::no_space; nothing acknowledged is lost and nothing failed is stored; the broker
// reports not writable until a space probe succeeds, then appends work again.
#include <sqlite3.h>

#include <set>

#include "broker-adapters/local/tests/test_util.h"
#include "tests/support/support.h"

namespace sluice::local::testing {
namespace {

int64_t page_count(const std::string& db) {
  sqlite3* h = nullptr;
  sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr);
  sqlite3_stmt* s = nullptr;
  sqlite3_prepare_v2(h, "PRAGMA page_count", -1, &s, nullptr);
  int64_t n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
  sqlite3_finalize(s);
  sqlite3_close(h);
  return n;
}

TEST(LocalQueueFullDisk, NoSpaceIsRetriableNothingAckedIsLostAndItRecovers) {
  TempDir dir;
  const std::string db = dir.file("q.db");
  auto opt = options(db, 1);
  opt.space_probe_interval = std::chrono::milliseconds(20);
  auto broker = LocalBroker::open(opt);
  ASSERT_TRUE(broker) << broker.error().message;
  auto& b = *broker.value();
  LocalQueue& q = b.queue();
  ASSERT_TRUE(q.flush(kDeadline));
  ASSERT_TRUE(q.set_max_page_count(page_count(db) + 8));  // ~32 KiB more
  EXPECT_TRUE(b.write_health()->writable);

  // Publish 1 KiB events one at a time until the "disk" is full.
  std::vector<std::string> acked;
  std::optional<Error> failure;
  for (int i = 0; i < 1000 && !failure; ++i) {
    Acks acks;
    const std::string id = "e" + std::to_string(i);
    b.sink().publish("t", make_event(id, std::string(1024, 'x')), acks.callback(0));
    ASSERT_TRUE(acks.wait(1));
    auto r = *acks.results()[0];
    if (r) acked.push_back(id);
    else failure = r.error();
  }
  ASSERT_TRUE(failure) << "the page cap never filled";
  EXPECT_EQ(failure->code, Errc::no_space) << failure->message;
  EXPECT_TRUE(failure->retriable);
  EXPECT_FALSE(acked.empty());
  EXPECT_FALSE(b.write_health()->writable);
  EXPECT_EQ(b.write_health()->failed_writes, 1u);
  // Still full: the probe keeps failing and the broker stays not writable.
  for (int i = 0; i < 5; ++i) {
    Acks acks;
    b.sink().publish("t", make_event("again", std::string(1024, 'x')), acks.callback(0));
    ASSERT_TRUE(acks.wait(1));
    EXPECT_EQ((*acks.results()[0]).error().code, Errc::no_space);
  }
  EXPECT_FALSE(b.write_health()->writable);

  // Space returns: the writer's probe notices without any publish.
  ASSERT_TRUE(q.set_max_page_count(1 << 30));
  ASSERT_TRUE(sluice::testsupport::eventually([&] { return b.write_health()->writable; }));
  auto more = publish_n(b.sink(), "t", 3, "after");
  EXPECT_EQ(more.size(), 3u);

  // Exactly the acknowledged events are stored: none lost, none of the failed ones.
  auto stored = b.browser()->read("t", -1, 0, 10000);
  ASSERT_TRUE(stored) << stored.error().message;
  std::vector<std::string> ids;
  for (const Event& e : stored.value()) ids.push_back(e.id);
  std::vector<std::string> want = acked;
  for (int i = 0; i < 3; ++i) want.push_back("after" + std::to_string(i));
  EXPECT_EQ(ids, want);
}

}  // namespace
}  // namespace sluice::local::testing
