// JetStream look-ups shared by JetStreamSource::lag and NatsBrowser (not on the
// hot path): the next stored message of a subject filter, and a consumer's lag.
// Synchronous request/replies on the broker's connection; any thread.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "broker-adapters/nats/nats_codec.h"
#include "broker-adapters/nats/nats_conn.h"
#include "core/broker.h"

namespace sluice::nats {

struct StoredMsg {
  MsgPtr msg;  // subject, headers and data as stored
  uint64_t sequence = 0;
  int64_t timestamp_ms = 0;
};

// The first message of `stream` with sequence >= from_seq whose subject matches
// `filter` (STREAM.MSG.GET with next_by_subj); nullopt when there is none.
Result<std::optional<StoredMsg>> next_message(NatsConn& c, std::string_view stream,
                                              uint64_t from_seq, std::string_view filter);

// Lag of durable `group` on `stream`: num_pending + num_ack_pending; lag_seconds
// from the oldest unacknowledged message (0 when nothing waits). An error, never a
// zero, when the consumer cannot be asked.
Result<PartitionLag> consumer_lag(NatsConn& c, std::string_view stream, std::string_view topic,
                                  std::string_view group);

}  // namespace sluice::nats
