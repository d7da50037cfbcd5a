// Read-side SQL of the local queue on one connection: partitions of a topic, rows
// of a partition, committed offsets, lag, single-row get/remove, and the cheap
// "did another connection write?" probe (PRAGMA data_version).
//
// Threads: not thread-safe. Each LocalSource owns one on its reader thread; the
// LocalQueue owns one for browsing and lag, guarded by its query mutex.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker-adapters/local/sqlite_db.h"
#include "core/broker.h"
#include "core/event.h"

namespace sluice::local {

// One stored message as read; the views are valid only inside the visitor.
struct RowView {
  int32_t partition = 0;
  int64_t offset = 0;
  int64_t ts_ms = 0;
  std::string_view key;
  std::string_view body;
};

// The header set on events whose stored body does not decode.
inline constexpr const char* kDecodeErrorHeader = "sluice-decode-error";

// Turns a stored row into an Event with its coordinates set. A body that does not
// decode becomes a raw event (id "<topic>/<partition>/<offset>", data = the bytes,
// header sluice-decode-error = why) and `*decode_failed` is set.
Event row_to_event(const RowView& row, std::string_view topic, std::string_view broker,
                   bool* decode_failed);

class LogReader {
 public:
  static Result<std::unique_ptr<LogReader>> open(const std::string& path,
                                                 const DbOptions& opt);

  Db& db() { return *db_; }

  // Partition count of `topic`; 0 when the topic does not exist yet.
  Result<int32_t> partitions(std::string_view topic);
  // Calls `fn` for up to `limit` rows of (topic, partition) with offset >= from, in
  // offset order. Returns how many rows were visited.
  Result<size_t> read(std::string_view topic, int32_t partition, int64_t from, size_t limit,
                      const std::function<void(const RowView&)>& fn);
  // The event at (topic, partition, offset) as row_to_event makes it; nullopt if none.
  Result<std::optional<Event>> get(std::string_view topic, int32_t partition, int64_t offset,
                                   std::string_view broker, bool* decode_failed);
  Result<bool> remove(std::string_view topic, int32_t partition, int64_t offset);

  // Committed next offsets of `group` on `topic` by partition (absent = none).
  Result<std::map<int32_t, int64_t>> committed(std::string_view group, std::string_view topic);
  // Records that `group` consumes `topic`: retention then keeps what it has not read.
  Result<void> register_consumer(std::string_view group, std::string_view topic);

  // Lag of every partition; `overlay` holds in-memory commits not yet written.
  Result<std::vector<PartitionLag>> lag(std::string_view broker, std::string_view topic,
                                        std::string_view group,
                                        const std::map<int32_t, int64_t>& overlay);

  // Up to `limit` topics with a partition whose next offset is past 0, by name.
  Result<std::vector<std::string>> topics(size_t limit);

  // Changes when another connection commits a write (PRAGMA data_version).
  Result<int64_t> data_version();

 private:
  explicit LogReader(std::unique_ptr<Db> db) : db_(std::move(db)) {}
  Result<void> prepare_all();

  std::unique_ptr<Db> db_;
  // Statements are declared after db_ and so finalized before it closes.
  Stmt partitions_, read_, get_, remove_, committed_, register_, bounds_, oldest_ts_,
      data_version_, topics_;
};

}  // namespace sluice::local
