// Delivery counts of the local queue, for crash quarantine (dispatcher/age.h,
// retry.max_crashes): which events a consumer group's source handed out and did not
// see settled because the engine died, and how often.
//
// The rule (docs/CONFIG.md "Crash quarantine"):
//  - While reading normally, the source records per partition the end of what it has
//    handed out (`handouts`), before it hands a batch out. A graceful stop clears it:
//    events held then and redelivered later are explained (not crashes).
//  - A source starting where a record is left finds [committed, end): events the
//    engine held when it died. These are suspects. They are handed out ONE AT A TIME
//    (every partition of the source waits), each one's count in `deliveries`
//    incremented durably before it is handed out, the next only after its commit is
//    durable. So an engine that dies again is known to have died on that event, and
//    the events it merely held are not blamed.
//  - A suspect's Delivery::unsettled = 1 (the death that left it) + its count before
//    this hand-out. The dispatcher dead-letters it as `crash` when that reaches
//    retry.max_crashes, before invoking it.
// Writes use the reader's connection with synchronous=NORMAL: durable when the
// process dies (what this is about), not necessarily at power loss.
//
// Threads: owned by one LocalSource; used on its reader thread, and by its
// destructor after that thread has been joined.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "broker-adapters/local/sqlite_db.h"
#include "core/result.h"

namespace sluice::local {

class DeliveryCount {
 public:
  // Prepares its statements on `db` (the source's reader connection).
  static Result<DeliveryCount> open(Db& db, std::string group, std::string topic);

  // The recorded handed-out end per partition (left by a source that did not stop
  // gracefully, or by one still isolating suspects).
  Result<std::map<int32_t, int64_t>> handed_out();
  // Records the handed-out ends (one transaction), before the events are handed out.
  Result<void> set_handed_out(const std::vector<std::pair<int32_t, int64_t>>& ends);
  // A graceful stop: nothing held is a suspect.
  Result<void> clear_handed_out();

  // Adds one to the count of a suspect about to be handed out; the count before.
  Result<uint32_t> count(int32_t partition, int64_t offset);
  // Takes back count() for a suspect that was not settled at a graceful stop.
  Result<void> uncount(int32_t partition, int64_t offset);
  // Forgets the counts of events below `next_offset` (settled).
  Result<void> forget_below(int32_t partition, int64_t next_offset);

 private:
  Result<uint32_t> stored(int32_t partition, int64_t offset);
  Result<void> store(int32_t partition, int64_t offset, uint32_t n);
  DeliveryCount(Db& db, std::string group, std::string topic)
      : db_(&db), group_(std::move(group)), topic_(std::move(topic)) {}
  Db* db_;
  std::string group_, topic_;
  Stmt get_ends_, set_end_, clear_ends_, get_count_, set_count_, trim_;
};

}  // namespace sluice::local
