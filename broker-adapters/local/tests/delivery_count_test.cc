// Delivery counts for crash quarantine (delivery_count.h): the events an engine died
// holding come back one at a time with their count; a graceful stop leaves none; an
// older file gains the tables.
#include <sqlite3.h>

#include "broker-adapters/local/local_source.h"
#include "broker-adapters/local/sqlite_db.h"
#include "broker-adapters/local/tests/test_util.h"

namespace sluice::local::testing {
namespace {

// Records (offset, unsettled) of every delivery.
class Counting final : public SourceListener {
 public:
  void on_deliveries(Source&, std::vector<Delivery>&& batch) override {
    std::lock_guard lk(mu);
    for (auto& d : batch) got.emplace_back(d.tag().offset, d.unsettled);
    cv.notify_all();
  }
  bool wait_count(size_t n) {
    std::unique_lock lk(mu);
    return cv.wait_for(lk, kDeadline, [&] { return got.size() >= n; });
  }
  // True when nothing beyond `n` arrives within `d` (a bounded check of absence).
  bool stays_at(size_t n, std::chrono::milliseconds d) {
    std::unique_lock lk(mu);
    return !cv.wait_for(lk, d, [&] { return got.size() > n; });
  }
  std::vector<std::pair<int64_t, uint32_t>> snapshot() {
    std::lock_guard lk(mu);
    return got;
  }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::pair<int64_t, uint32_t>> got;
};

void sql(const std::string& db, const char* text) {
  auto d = Db::open(db, {});
  ASSERT_TRUE(d) << d.error().message;
  ASSERT_TRUE(d.value()->exec(text)) << text;
}

TEST(LocalDeliveryCount, EventsADeadEngineHeldComeBackOneAtATimeWithTheirCount) {
  TempDir dir;
  const std::string db = dir.file("q.db");
  {
    auto broker = LocalBroker::open(options(db, 1));
    ASSERT_TRUE(broker);
    publish_n(broker.value()->sink(), "t", 5);
  }
  // What an engine that died leaves: offset 1 committed, 0..4 handed out, and offset 3
  // handed out alone once before (a death while it ran).
  sql(db, "INSERT INTO offsets VALUES('g', 't', 0, 1);"
          "INSERT INTO handouts VALUES('g', 't', 0, 5);"
          "INSERT INTO deliveries VALUES('g', 't', 0, 3, 1);");
  auto broker = LocalBroker::open(options(db, 1));
  ASSERT_TRUE(broker);
  auto src = broker.value()->make_source("t", "g");
  ASSERT_TRUE(src);
  Counting c;
  ASSERT_TRUE(src.value()->start(c));
  for (int64_t off = 1; off < 5; ++off) {
    const size_t n = static_cast<size_t>(off);  // deliveries so far after this one
    ASSERT_TRUE(c.wait_count(n));
    EXPECT_TRUE(c.stays_at(n, 100ms)) << "the next suspect came before the commit";
    EXPECT_EQ(c.snapshot().back(), (std::pair<int64_t, uint32_t>{off, off == 3 ? 2u : 1u}));
    src.value()->commit(0, off + 1);
  }
  // Past the suspects: new events come as usual, not counted.
  publish_n(broker.value()->sink(), "t", 3, "more");
  ASSERT_TRUE(c.wait_count(7));
  for (size_t i = 4; i < 7; ++i) EXPECT_EQ(c.snapshot()[i].second, 0u);
}

TEST(LocalDeliveryCount, EventsHeldAtAGracefulStopAreNotSuspects) {
  TempDir dir;
  const std::string db = dir.file("q.db");
  auto broker = LocalBroker::open(options(db, 1));
  ASSERT_TRUE(broker);
  publish_n(broker.value()->sink(), "t", 5);
  {
    auto src = broker.value()->make_source("t", "g");
    ASSERT_TRUE(src);
    Counting c;
    ASSERT_TRUE(src.value()->start(c));
    ASSERT_TRUE(c.wait_count(5));
    src.value()->commit(0, 2);  // 2..4 held, never settled
    src.value()->stop();
  }
  auto src = broker.value()->make_source("t", "g");
  ASSERT_TRUE(src);
  Counting c;
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(3));  // in one go, as usual
  for (auto [offset, unsettled] : c.snapshot()) EXPECT_EQ(unsettled, 0u) << offset;
}

TEST(LocalDeliveryCount, AFileOfAnOlderSluiceGainsTheTables) {
  TempDir dir;
  const std::string db = dir.file("q.db");
  {
    auto broker = LocalBroker::open(options(db, 1));
    ASSERT_TRUE(broker);
    publish_n(broker.value()->sink(), "t", 2);
  }
  sql(db, "DROP TABLE handouts; DROP TABLE deliveries;");
  auto broker = LocalBroker::open(options(db, 1));
  ASSERT_TRUE(broker);
  auto src = broker.value()->make_source("t", "g");
  ASSERT_TRUE(src);
  Counting c;
  ASSERT_TRUE(src.value()->start(c));
  ASSERT_TRUE(c.wait_count(2));
  auto d = Db::open(db, {});
  ASSERT_TRUE(d);
  auto ends = d.value()->query_int("SELECT end_offset FROM handouts WHERE grp='g' AND topic='t'");
  ASSERT_TRUE(ends) << ends.error().message;
  EXPECT_EQ(ends.value(), 2);
}

}  // namespace
}  // namespace sluice::local::testing
