#include "broker-adapters/local/delivery_count.h"

#include <algorithm>

namespace sluice::local {

Result<DeliveryCount> DeliveryCount::open(Db& db, std::string group, std::string topic) {
  DeliveryCount c(db, std::move(group), std::move(topic));
  SLUICE_TRY(db.exec("PRAGMA synchronous=NORMAL"));
  SLUICE_TRY(db.prepare_into(c.get_ends_, "SELECT \"partition\", end_offset FROM handouts "
                                          "WHERE grp=?1 AND topic=?2"));
  SLUICE_TRY(db.prepare_into(
      c.set_end_, "INSERT INTO handouts(grp, topic, \"partition\", end_offset) "
                  "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(grp, topic, \"partition\") "
                  "DO UPDATE SET end_offset=excluded.end_offset"));
  SLUICE_TRY(db.prepare_into(c.clear_ends_, "DELETE FROM handouts WHERE grp=?1 AND topic=?2"));
  SLUICE_TRY(db.prepare_into(c.get_count_,
                             "SELECT count FROM deliveries WHERE grp=?1 AND topic=?2 AND "
                             "\"partition\"=?3 AND \"offset\"=?4"));
  SLUICE_TRY(db.prepare_into(
      c.set_count_, "INSERT INTO deliveries(grp, topic, \"partition\", \"offset\", count) "
                    "VALUES(?1, ?2, ?3, ?4, ?5) ON CONFLICT(grp, topic, \"partition\", "
                    "\"offset\") DO UPDATE SET count=excluded.count"));
  SLUICE_TRY(db.prepare_into(c.trim_, "DELETE FROM deliveries WHERE grp=?1 AND topic=?2 AND "
                                      "\"partition\"=?3 AND \"offset\"<?4"));
  return c;
}

Result<std::map<int32_t, int64_t>> DeliveryCount::handed_out() {
  Stmt& s = get_ends_.reset();
  SLUICE_TRY(s.bind_text(1, group_));
  SLUICE_TRY(s.bind_text(2, topic_));
  return s.partition_values();
}

Result<void> DeliveryCount::set_handed_out(const std::vector<std::pair<int32_t, int64_t>>& ends) {
  if (ends.empty()) return ok();
  SLUICE_TRY(db_->exec("BEGIN IMMEDIATE"));
  for (const auto& partition_end : ends) {
    Stmt& s = set_end_.reset();
    auto r = [&]() -> Result<void> {
      SLUICE_TRY(s.bind_text(1, group_));
      SLUICE_TRY(s.bind_text(2, topic_));
      SLUICE_TRY(s.bind(3, partition_end.first));
      SLUICE_TRY(s.bind(4, partition_end.second));
      return s.run();
    }();
    s.reset();
    if (!r) {
      (void)db_->exec("ROLLBACK");
      return r;
    }
  }
  if (auto r = db_->exec("COMMIT"); !r) {
    (void)db_->exec("ROLLBACK");
    return r;
  }
  return ok();
}

Result<void> DeliveryCount::clear_handed_out() {
  Stmt& s = clear_ends_.reset();
  SLUICE_TRY(s.bind_text(1, group_));
  SLUICE_TRY(s.bind_text(2, topic_));
  auto r = s.run();
  s.reset();
  return r;
}

Result<uint32_t> DeliveryCount::stored(int32_t partition, int64_t offset) {
  Stmt& g = get_count_.reset();
  SLUICE_TRY(g.bind_text(1, group_));
  SLUICE_TRY(g.bind_text(2, topic_));
  SLUICE_TRY(g.bind(3, partition));
  SLUICE_TRY(g.bind(4, offset));
  SLUICE_TRY(row, g.step());
  const int64_t n = row ? std::clamp<int64_t>(g.int64(0), 0, UINT32_MAX - 1) : 0;
  g.reset();
  return static_cast<uint32_t>(n);
}

Result<void> DeliveryCount::store(int32_t partition, int64_t offset, uint32_t n) {
  Stmt& s = set_count_.reset();
  SLUICE_TRY(s.bind_text(1, group_));
  SLUICE_TRY(s.bind_text(2, topic_));
  SLUICE_TRY(s.bind(3, partition));
  SLUICE_TRY(s.bind(4, offset));
  SLUICE_TRY(s.bind(5, int64_t{n}));
  auto r = s.run();
  s.reset();
  return r;
}

Result<uint32_t> DeliveryCount::count(int32_t partition, int64_t offset) {
  SLUICE_TRY(before, stored(partition, offset));
  SLUICE_TRY(store(partition, offset, before + 1));
  return before;
}

Result<void> DeliveryCount::uncount(int32_t partition, int64_t offset) {
  SLUICE_TRY(n, stored(partition, offset));
  return store(partition, offset, n > 0 ? n - 1 : 0);
}

Result<void> DeliveryCount::forget_below(int32_t partition, int64_t next_offset) {
  Stmt& s = trim_.reset();
  SLUICE_TRY(s.bind_text(1, group_));
  SLUICE_TRY(s.bind_text(2, topic_));
  SLUICE_TRY(s.bind(3, partition));
  SLUICE_TRY(s.bind(4, next_offset));
  auto r = s.run();
  s.reset();
  return r;
}

}  // namespace sluice::local
