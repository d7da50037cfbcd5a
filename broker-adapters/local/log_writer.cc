#include "broker-adapters/local/log_writer.h"

#include <sqlite3.h>
#include <spdlog/spdlog.h>

#include <algorithm>

#include "broker-adapters/local/murmur2.h"

namespace sluice::local {

Result<std::unique_ptr<LogWriter>> LogWriter::open(const std::string& path,
                                                   const DbOptions& opt,
                                                   std::string broker_name,
                                                   int32_t default_partitions) {
  SLUICE_TRY(db, Db::open(path, opt));
  std::unique_ptr<LogWriter> w(
      new LogWriter(std::move(db), std::move(broker_name), default_partitions));
  SLUICE_TRY(w->prepare_all());
  return w;
}

Result<void> LogWriter::prepare_all() {
  SLUICE_TRY(db_->prepare_into(begin_, "BEGIN IMMEDIATE"));
  SLUICE_TRY(db_->prepare_into(commit_, "COMMIT"));
  SLUICE_TRY(db_->prepare_into(rollback_, "ROLLBACK"));
  SLUICE_TRY(db_->prepare_into(topic_get_, "SELECT partitions FROM topics WHERE name=?1"));
  SLUICE_TRY(db_->prepare_into(topic_add_, "INSERT INTO topics(name, partitions) VALUES(?1, ?2)"));
  // The next offset: the stored head, or past the newest row should a head be missing.
  SLUICE_TRY(db_->prepare_into(head_get_, 
                            "SELECT MAX(COALESCE((SELECT next_offset FROM heads WHERE "
                            "topic=?1 AND \"partition\"=?2), 0), COALESCE((SELECT "
                            "MAX(\"offset\")+1 FROM messages WHERE topic=?1 AND "
                            "\"partition\"=?2), 0))"));
  SLUICE_TRY(db_->prepare_into(head_put_, 
                            "INSERT INTO heads(topic, \"partition\", next_offset) "
                            "VALUES(?1, ?2, ?3) ON CONFLICT(topic, \"partition\") "
                            "DO UPDATE SET next_offset=excluded.next_offset"));
  SLUICE_TRY(db_->prepare_into(insert_, 
                          "INSERT INTO messages(topic, \"partition\", \"offset\", ts_ms, key, "
                          "body) VALUES(?1, ?2, ?3, ?4, ?5, ?6)"));
  SLUICE_TRY(db_->prepare_into(offset_put_, 
                              "INSERT INTO offsets(grp, topic, \"partition\", next_offset) "
                              "VALUES(?1, ?2, ?3, ?4) ON CONFLICT(grp, topic, \"partition\") "
                              "DO UPDATE SET next_offset=excluded.next_offset"));
  SLUICE_TRY(db_->prepare_into(trim_topics_, "SELECT topic FROM consumers UNION SELECT topic FROM offsets"));
  SLUICE_TRY(db_->prepare_into(trim_groups_, "SELECT COUNT(*) FROM (SELECT grp FROM consumers "
                                        "WHERE topic=?1 UNION SELECT grp FROM offsets "
                                        "WHERE topic=?1)"));
  SLUICE_TRY(db_->prepare_into(trim_offsets_, "SELECT \"partition\", COUNT(*), MIN(next_offset) "
                                         "FROM offsets WHERE topic=?1 GROUP BY \"partition\""));
  SLUICE_TRY(db_->prepare_into(trim_delete_, 
                               "DELETE FROM messages WHERE topic=?1 AND \"partition\"=?2 AND "
                               "\"offset\"<?3 AND \"offset\"<COALESCE((SELECT MIN(\"offset\") "
                               "FROM messages WHERE topic=?1 AND \"partition\"=?2), 0)+?4"));
  SLUICE_TRY(db_->prepare_into(probe_put_, "INSERT INTO space_probe(pad) VALUES(zeroblob(?1))"));
  SLUICE_TRY(db_->prepare_into(probe_clear_, "DELETE FROM space_probe"));
  return ok();
}

Result<void> LogWriter::probe_space(int64_t bytes) {
  auto tx = [&](bool put) -> Result<void> {
    SLUICE_TRY(begin());
    auto body = [&]() -> Result<void> {
      SLUICE_TRY(probe_clear_.reset().run());
      probe_clear_.reset();
      if (put) {
        SLUICE_TRY(probe_put_.reset().bind(1, bytes));
        SLUICE_TRY(probe_put_.run());
        probe_put_.reset();
      }
      return commit();
    };
    if (auto r = body(); !r) {
      rollback();
      return r;
    }
    return ok();
  };
  SLUICE_TRY(tx(true));
  return tx(false);
}

Result<void> LogWriter::set_max_page_count(int64_t pages) {
  if (pages <= 0) return ok();
  const std::string sql = "PRAGMA max_page_count=" + std::to_string(pages);
  SLUICE_TRY(db_->query_int(sql.c_str()));
  return ok();
}

Result<void> LogWriter::begin() {
  SLUICE_TRY(begin_.reset().run());
  begin_.reset();
  return ok();
}

Result<void> LogWriter::commit() {
  SLUICE_TRY(commit_.reset().run());
  commit_.reset();
  return ok();
}

void LogWriter::rollback() {
  // SQLite may already have rolled back (e.g. SQLITE_FULL); then there is nothing to do.
  if (sqlite3_get_autocommit(db_->handle())) return;
  if (auto r = rollback_.reset().run(); !r)
    spdlog::error("{} (rollback)", r.error().message);
  rollback_.reset();
}

Result<LogWriter::TopicTx*> LogWriter::load_topic(std::unordered_map<std::string, TopicTx>& tx,
                                                  const std::string& topic) {
  TopicTx t;
  Stmt& g = topic_get_.reset();
  SLUICE_TRY(g.bind_text(1, topic));
  SLUICE_TRY(found, g.step());
  t.partitions = found ? static_cast<int32_t>(g.int64(0)) : default_partitions_;
  g.reset();
  if (!found) {
    // First publish creates the topic; its partition count never changes after.
    Stmt& a = topic_add_.reset();
    SLUICE_TRY(a.bind_text(1, topic));
    SLUICE_TRY(a.bind(2, t.partitions));
    SLUICE_TRY(a.run());
    a.reset();
  }
  if (t.partitions <= 0)
    return Error{Errc::corrupt, "local broker " + db_->path() + ": topic '" + topic +
                                    "' has " + std::to_string(t.partitions) + " partitions"};
  t.next.resize(static_cast<size_t>(t.partitions));
  t.touched.assign(static_cast<size_t>(t.partitions), 0);
  // Read inside the transaction: another process may have appended since last time.
  for (int32_t p = 0; p < t.partitions; ++p) {
    Stmt& h = head_get_.reset();
    SLUICE_TRY(h.bind_text(1, topic));
    SLUICE_TRY(h.bind(2, p));
    SLUICE_TRY(h.step());
    t.next[static_cast<size_t>(p)] = h.int64(0);
    h.reset();
  }
  return &tx.emplace(topic, std::move(t)).first->second;
}

Result<void> LogWriter::append(std::span<Append> items, std::vector<PublishAck>& acks) {
  acks.assign(items.size(), PublishAck{});
  SLUICE_TRY(begin());
  auto body = [&]() -> Result<void> {
    std::unordered_map<std::string, TopicTx> tx;  // cached for this transaction only
    const int64_t now = now_unix_ms();
    for (size_t i = 0; i < items.size(); ++i) {
      Append& a = items[i];
      if (a.reject) continue;
      TopicTx* t = nullptr;
      if (auto it = tx.find(a.topic); it != tx.end()) {
        t = &it->second;
      } else {
        SLUICE_TRY(loaded, load_topic(tx, a.topic));
        t = loaded;
      }
      Event& ev = a.event;
      const int32_t p = ev.key.empty()
                            ? static_cast<int32_t>(round_robin_[a.topic]++ %
                                                   static_cast<uint32_t>(t->partitions))
                            : partition_for_key(ev.key, t->partitions);
      const int64_t off = t->next[static_cast<size_t>(p)]++;
      t->touched[static_cast<size_t>(p)] = 1;
      ev.topic = a.topic;
      ev.partition = p;
      ev.offset = off;
      ev.broker = broker_;
      ev.broker_timestamp_ms = now;
      proto_.Clear();
      to_proto(ev, &proto_);
      if (!proto_.SerializeToString(&body_))
        return Error{Errc::internal, "local broker: event " + ev.id + " does not serialize"};

      Stmt& s = insert_.reset();
      SLUICE_TRY(s.bind_text(1, a.topic));
      SLUICE_TRY(s.bind(2, p));
      SLUICE_TRY(s.bind(3, off));
      SLUICE_TRY(s.bind(4, now));
      SLUICE_TRY(s.bind_blob(5, ev.key));
      SLUICE_TRY(s.bind_blob(6, body_));
      SLUICE_TRY(s.run());
      s.reset();
      acks[i].topic = a.topic;
      acks[i].partition = p;
      acks[i].offset = off;
    }
    for (auto& [topic, t] : tx) {
      for (int32_t p = 0; p < t.partitions; ++p) {
        if (!t.touched[static_cast<size_t>(p)]) continue;
        Stmt& h = head_put_.reset();
        SLUICE_TRY(h.bind_text(1, topic));
        SLUICE_TRY(h.bind(2, p));
        SLUICE_TRY(h.bind(3, t.next[static_cast<size_t>(p)]));
        SLUICE_TRY(h.run());
        h.reset();
      }
    }
    return commit();
  };
  if (auto r = body(); !r) {
    rollback();
    return r;
  }
  return ok();
}

Result<void> LogWriter::write_offsets(const OffsetMap& offsets) {
  if (offsets.empty()) return ok();
  SLUICE_TRY(begin());
  auto body = [&]() -> Result<void> {
    for (const auto& [k, next] : offsets) {
      Stmt& s = offset_put_.reset();
      SLUICE_TRY(s.bind_text(1, std::get<0>(k)));
      SLUICE_TRY(s.bind_text(2, std::get<1>(k)));
      SLUICE_TRY(s.bind(3, std::get<2>(k)));
      SLUICE_TRY(s.bind(4, next));
      SLUICE_TRY(s.run());
      s.reset();
    }
    return commit();
  };
  if (auto r = body(); !r) {
    rollback();
    return r;
  }
  return ok();
}

Result<TrimResult> LogWriter::trim(int64_t max_rows) {
  SLUICE_TRY(begin());
  TrimResult res;
  auto body = [&]() -> Result<void> {
    std::vector<std::string> topics;
    Stmt& ts = trim_topics_.reset();
    for (;;) {
      SLUICE_TRY(row, ts.step());
      if (!row) break;
      auto v = ts.blob(0);
      topics.emplace_back(v.data(), v.size());
    }
    ts.reset();
    for (const std::string& topic : topics) {
      Stmt& tp = topic_get_.reset();
      SLUICE_TRY(tp.bind_text(1, topic));
      SLUICE_TRY(exists, tp.step());
      const int32_t parts = exists ? static_cast<int32_t>(tp.int64(0)) : 0;
      tp.reset();
      if (parts <= 0) continue;

      Stmt& gs = trim_groups_.reset();
      SLUICE_TRY(gs.bind_text(1, topic));
      SLUICE_TRY(gs.step());
      const int64_t groups = gs.int64(0);
      gs.reset();

      // floor[p] = lowest committed offset over the groups; 0 if one has none there.
      std::vector<int64_t> floor(static_cast<size_t>(parts), 0);
      Stmt& os = trim_offsets_.reset();
      SLUICE_TRY(os.bind_text(1, topic));
      for (;;) {
        SLUICE_TRY(row, os.step());
        if (!row) break;
        const int64_t p = os.int64(0);
        if (p >= 0 && p < parts && os.int64(1) == groups)
          floor[static_cast<size_t>(p)] = std::max<int64_t>(0, os.int64(2));
      }
      os.reset();

      for (int32_t p = 0; p < parts; ++p) {
        if (floor[static_cast<size_t>(p)] <= 0) continue;
        Stmt& d = trim_delete_.reset();
        SLUICE_TRY(d.bind_text(1, topic));
        SLUICE_TRY(d.bind(2, p));
        SLUICE_TRY(d.bind(3, floor[static_cast<size_t>(p)]));
        SLUICE_TRY(d.bind(4, max_rows));
        SLUICE_TRY(d.run());
        const int64_t n = db_->changes();
        d.reset();
        res.deleted += n;
        if (n >= max_rows) res.more = true;
      }
    }
    return commit();
  };
  if (auto r = body(); !r) {
    rollback();
    return r.error();
  }
  return res;
}

}  // namespace sluice::local
