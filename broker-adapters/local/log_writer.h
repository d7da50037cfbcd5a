// Write-side SQL of the local queue on one connection: group-committed appends,
// committed-offset writes and retention, each as one BEGIN IMMEDIATE transaction.
//
// Threads: not thread-safe; owned by LocalQueue and used only on its writer thread
// (or, once that thread has exited, under LocalQueue's after-stop mutex).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "broker-adapters/local/sqlite_db.h"
#include "core/broker.h"
#include "core/event.h"
#include "event.pb.h"

namespace sluice::local {

// One queued publish. `reject` set = answered with that error, never written.
struct Append {
  std::string topic;
  Event event;
  PublishCallback done;
  std::optional<Error> reject;
};

// (group, topic, partition) -> next offset to consume.
using OffsetKey = std::tuple<std::string, std::string, int32_t>;
using OffsetMap = std::map<OffsetKey, int64_t>;

struct TrimResult {
  int64_t deleted = 0;
  bool more = false;  // a partition had more to delete than one pass takes
};

class LogWriter {
 public:
  static Result<std::unique_ptr<LogWriter>> open(const std::string& path, const DbOptions& opt,
                                                 std::string broker_name,
                                                 int32_t default_partitions);

  // Writes every non-rejected append in ONE transaction. On success acks[i] holds the
  // coordinates of items[i] (rejected items: untouched); on error nothing is written.
  Result<void> append(std::span<Append> items, std::vector<PublishAck>& acks);
  // Upserts committed offsets in one transaction.
  Result<void> write_offsets(const OffsetMap& offsets);
  // Deletes, on topics some group consumes, rows below the lowest committed offset
  // of those groups (a group without a commit on a partition holds it at 0). At
  // most `max_rows` per partition per call.
  Result<TrimResult> trim(int64_t max_rows);
  // After a full disk: commits a row of `bytes` zeros to `space_probe` and deletes it
  // again, so success means a write of about that size reaches the disk now. Leaves
  // nothing behind (a row left by a failed delete goes with the next probe).
  Result<void> probe_space(int64_t bytes);
  // PRAGMA max_page_count on this connection: caps the file (SQLITE_FULL beyond it).
  // Tests simulate a full disk with it; 0 is ignored.
  Result<void> set_max_page_count(int64_t pages);

 private:
  struct TopicTx {
    int32_t partitions = 0;
    std::vector<int64_t> next;
    std::vector<char> touched;
  };

  LogWriter(std::unique_ptr<Db> db, std::string broker, int32_t partitions)
      : db_(std::move(db)), broker_(std::move(broker)), default_partitions_(partitions) {}
  Result<void> prepare_all();
  Result<void> begin();
  Result<void> commit();
  void rollback();
  Result<TopicTx*> load_topic(std::unordered_map<std::string, TopicTx>& tx,
                              const std::string& topic);

  std::unique_ptr<Db> db_;
  std::string broker_;
  int32_t default_partitions_;
  std::unordered_map<std::string, uint32_t> round_robin_;  // keyless partition choice
  v1::Event proto_;   // reused to serialize each event
  std::string body_;  // reused serialization buffer
  // Statements are declared after db_ and so finalized before it closes.
  Stmt begin_, commit_, rollback_, topic_get_, topic_add_, head_get_, head_put_, insert_,
      offset_put_, trim_topics_, trim_groups_, trim_offsets_, trim_delete_, probe_put_,
      probe_clear_;
};

}  // namespace sluice::local
