#include "broker-adapters/local/log_reader.h"

#include <algorithm>

namespace sluice::local {

Event row_to_event(const RowView& row, std::string_view topic, std::string_view broker,
                   bool* decode_failed) {
  auto decoded = decode(row.body);
  Event ev;
  if (decoded) {
    ev = std::move(decoded).value();
    *decode_failed = false;
  } else {
    // Never dropped: the raw bytes go on, marked, so the function or the DLQ sees them.
    ev.id = std::string(topic) + "/" + std::to_string(row.partition) + "/" +
            std::to_string(row.offset);
    ev.source = "sluice://local/" + std::string(topic);
    ev.type = "sluice.undecodable";
    ev.data.assign(row.body.data(), row.body.size());
    ev.key.assign(row.key.data(), row.key.size());
    ev.set_header(kDecodeErrorHeader, decoded.error().message);
    *decode_failed = true;
  }
  ev.broker.assign(broker.data(), broker.size());
  ev.topic.assign(topic.data(), topic.size());
  ev.partition = row.partition;
  ev.offset = row.offset;
  ev.broker_timestamp_ms = row.ts_ms;
  return ev;
}

Result<std::unique_ptr<LogReader>> LogReader::open(const std::string& path,
                                                   const DbOptions& opt) {
  SLUICE_TRY(db, Db::open(path, opt));
  std::unique_ptr<LogReader> r(new LogReader(std::move(db)));
  SLUICE_TRY(r->prepare_all());
  return r;
}

Result<void> LogReader::prepare_all() {
  SLUICE_TRY(db_->prepare_into(partitions_, "SELECT partitions FROM topics WHERE name=?1"));
  SLUICE_TRY(db_->prepare_into(read_, 
                        "SELECT \"offset\", ts_ms, key, body FROM messages WHERE topic=?1 "
                        "AND \"partition\"=?2 AND \"offset\">=?3 ORDER BY \"offset\" LIMIT ?4"));
  SLUICE_TRY(db_->prepare_into(get_, "SELECT ts_ms, key, body FROM messages WHERE topic=?1 AND "
                                "\"partition\"=?2 AND \"offset\"=?3"));
  SLUICE_TRY(db_->prepare_into(remove_, "DELETE FROM messages WHERE topic=?1 AND "
                                   "\"partition\"=?2 AND \"offset\"=?3"));
  SLUICE_TRY(db_->prepare_into(committed_, "SELECT \"partition\", next_offset FROM offsets "
                                      "WHERE grp=?1 AND topic=?2"));
  SLUICE_TRY(db_->prepare_into(register_, "INSERT OR IGNORE INTO consumers(grp, topic) VALUES(?1, ?2)"));
  SLUICE_TRY(db_->prepare_into(bounds_, 
                          "SELECT COALESCE((SELECT next_offset FROM heads WHERE topic=?1 AND "
                          "\"partition\"=?2), 0), COALESCE((SELECT MAX(\"offset\")+1 FROM "
                          "messages WHERE topic=?1 AND \"partition\"=?2), 0), (SELECT "
                          "MIN(\"offset\") FROM messages WHERE topic=?1 AND \"partition\"=?2)"));
  SLUICE_TRY(db_->prepare_into(oldest_ts_, "SELECT ts_ms FROM messages WHERE topic=?1 AND "
                                      "\"partition\"=?2 AND \"offset\">=?3 ORDER BY "
                                      "\"offset\" LIMIT 1"));
  SLUICE_TRY(db_->prepare_into(data_version_, "PRAGMA data_version"));
  SLUICE_TRY(db_->prepare_into(topics_, "SELECT DISTINCT topic FROM heads WHERE next_offset > 0 "
                                        "ORDER BY topic LIMIT ?1"));
  return ok();
}

Result<std::vector<std::string>> LogReader::topics(size_t limit) {
  Stmt& s = topics_.reset();
  SLUICE_TRY(s.bind(1, static_cast<int64_t>(limit)));
  std::vector<std::string> out;
  for (;;) {
    SLUICE_TRY(row, s.step());
    if (!row) break;
    out.emplace_back(s.blob(0));
  }
  s.reset();
  return out;
}

Result<int32_t> LogReader::partitions(std::string_view topic) {
  Stmt& s = partitions_.reset();
  SLUICE_TRY(s.bind_text(1, topic));
  SLUICE_TRY(row, s.step());
  int32_t n = row ? static_cast<int32_t>(s.int64(0)) : 0;
  s.reset();
  return n;
}

Result<size_t> LogReader::read(std::string_view topic, int32_t partition, int64_t from,
                               size_t limit, const std::function<void(const RowView&)>& fn) {
  Stmt& s = read_.reset();
  SLUICE_TRY(s.bind_text(1, topic));
  SLUICE_TRY(s.bind(2, partition));
  SLUICE_TRY(s.bind(3, from));
  SLUICE_TRY(s.bind(4, static_cast<int64_t>(limit)));
  size_t n = 0;
  for (;;) {
    SLUICE_TRY(row, s.step());
    if (!row) break;
    fn(RowView{partition, s.int64(0), s.int64(1), s.blob(2), s.blob(3)});
    ++n;
  }
  s.reset();
  return n;
}

Result<std::optional<Event>> LogReader::get(std::string_view topic, int32_t partition,
                                            int64_t offset, std::string_view broker,
                                            bool* decode_failed) {
  Stmt& s = get_.reset();
  SLUICE_TRY(s.bind_text(1, topic));
  SLUICE_TRY(s.bind(2, partition));
  SLUICE_TRY(s.bind(3, offset));
  SLUICE_TRY(row, s.step());
  std::optional<Event> out;
  if (row)
    out = row_to_event(RowView{partition, offset, s.int64(0), s.blob(1), s.blob(2)}, topic,
                       broker, decode_failed);
  // Always reset: a statement left open would pin this connection's read snapshot.
  s.reset();
  return out;
}

Result<bool> LogReader::remove(std::string_view topic, int32_t partition, int64_t offset) {
  Stmt& s = remove_.reset();
  SLUICE_TRY(s.bind_text(1, topic));
  SLUICE_TRY(s.bind(2, partition));
  SLUICE_TRY(s.bind(3, offset));
  SLUICE_TRY(s.run());
  bool removed = db_->changes() > 0;
  s.reset();
  return removed;
}

Result<std::map<int32_t, int64_t>> LogReader::committed(std::string_view group,
                                                        std::string_view topic) {
  Stmt& s = committed_.reset();
  SLUICE_TRY(s.bind_text(1, group));
  SLUICE_TRY(s.bind_text(2, topic));
  return s.partition_values();
}

Result<void> LogReader::register_consumer(std::string_view group, std::string_view topic) {
  Stmt& s = register_.reset();
  SLUICE_TRY(s.bind_text(1, group));
  SLUICE_TRY(s.bind_text(2, topic));
  SLUICE_TRY(s.run());
  s.reset();
  return ok();
}

Result<std::vector<PartitionLag>> LogReader::lag(std::string_view broker,
                                                 std::string_view topic,
                                                 std::string_view group,
                                                 const std::map<int32_t, int64_t>& overlay) {
  SLUICE_TRY(parts, partitions(topic));
  SLUICE_TRY(done, committed(group, topic));
  const int64_t now = now_unix_ms();
  std::vector<PartitionLag> out;
  out.reserve(static_cast<size_t>(parts));
  for (int32_t p = 0; p < parts; ++p) {
    PartitionLag l;
    l.broker = broker;
    l.topic = topic;
    l.group = group;
    l.partition = p;
    if (auto it = done.find(p); it != done.end()) l.committed = it->second;
    if (auto it = overlay.find(p); it != overlay.end())
      l.committed = std::max(l.committed, it->second);

    Stmt& b = bounds_.reset();
    SLUICE_TRY(b.bind_text(1, topic));
    SLUICE_TRY(b.bind(2, p));
    SLUICE_TRY(b.step());
    l.end = std::max(b.int64(0), b.int64(1));
    const int64_t first = b.is_null(2) ? l.end : b.int64(2);
    b.reset();

    const int64_t start = std::max(l.committed, first);
    l.lag = std::max<int64_t>(0, l.end - start);
    if (l.lag == 0) {
      l.lag_seconds = 0.0;
    } else {
      Stmt& o = oldest_ts_.reset();
      SLUICE_TRY(o.bind_text(1, topic));
      SLUICE_TRY(o.bind(2, p));
      SLUICE_TRY(o.bind(3, start));
      SLUICE_TRY(row, o.step());
      if (row) l.lag_seconds = std::max<int64_t>(0, now - o.int64(0)) / 1000.0;
      o.reset();
    }
    out.push_back(std::move(l));
  }
  return out;
}

Result<int64_t> LogReader::data_version() {
  Stmt& s = data_version_.reset();
  SLUICE_TRY(row, s.step());
  int64_t v = row ? s.int64(0) : 0;
  s.reset();
  return v;
}

}  // namespace sluice::local
