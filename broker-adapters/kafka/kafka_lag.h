// Lag of a consumer group on a topic, per partition:
//  - messages: the group's committed offset against the high watermark
//    (rd_kafka_committed + rd_kafka_query_watermark_offsets). A partition with no
//    committed offset counts what is really there (high - low watermark), not the
//    whole offset range; a committed offset below the log start counts from the log
//    start. Any failed query is an Error, never a zero lag.
//  - seconds: now minus the timestamp of the oldest unconsumed record (the record
//    at the committed offset, or at the log start when nothing is committed), read
//    by a consumer that assigns the lagging partitions at that offset and takes one
//    record of each. Offsets cannot give it (offsetsForTimes maps a time to an
//    offset, not the other way round). 0 when the lag is 0; left unknown (nullopt,
//    never 0) when the record cannot be read within the time bound or carries no
//    timestamp.
//
// query_lag/peek_lag_seconds are thread-safe as librdkafka is. LagPeeker serializes
// its calls with its own mutex (`mu_`, which guards the lazily made reader).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "broker-adapters/kafka/kafka_client.h"
#include "core/broker.h"

namespace sluice::kafka {

// How long one peek for lag_seconds may take (all partitions together).
inline constexpr std::chrono::milliseconds kPeekTimeout{2000};

// `rk` is a consumer whose group.id is `group`. lag_seconds is left unset.
Result<std::vector<PartitionLag>> query_lag(rd_kafka_t* rk, std::string_view broker,
                                            std::string_view topic, std::string_view group,
                                            std::chrono::milliseconds timeout = kQueryTimeout);

// Sets lag_seconds of every entry of `lags` (one topic): 0 where lag is 0; for the
// others the age of the record at offset end - lag, relative to `now_ms` (unix ms;
// never negative). `reader` must be a consumer that is not subscribed (it is
// assigned, then unassigned). Entries whose record does not arrive within
// `timeout` keep an unset lag_seconds.
void peek_lag_seconds(rd_kafka_t* reader, std::vector<PartitionLag>& lags, int64_t now_ms,
                      std::chrono::milliseconds timeout = kPeekTimeout);

// The librdkafka settings of a reader that peeks: fetch little, prefetch nothing.
void peek_settings(rd_kafka_conf_t* conf);

// A reader kept for the lag peeks of one source (made at the first peek that needs
// it, reused after, closed with the peeker). Thread-safe (one peek at a time).
class LagPeeker {
 public:
  LagPeeker(BrokerConfig cfg, std::string group)
      : cfg_(std::move(cfg)), group_(std::move(group)) {}
  void fill(std::vector<PartitionLag>& lags, std::chrono::milliseconds timeout = kPeekTimeout);

 private:
  const BrokerConfig cfg_;
  const std::string group_;
  std::mutex mu_;
  std::optional<Reader> reader_;  // under mu_
};

}  // namespace sluice::kafka
