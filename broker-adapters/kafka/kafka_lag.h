// Lag of a consumer group on a topic: per partition, the group's committed offset
// against the high watermark (rd_kafka_committed + rd_kafka_query_watermark_offsets).
//
// A partition with no committed offset counts what is really there (high - low
// watermark), not the whole offset range; a committed offset below the log start
// counts from the log start. Any failed query is an Error, never a zero lag.
// lag_seconds is left unknown (nullopt).
//
// Thread-safe as librdkafka is: may run on any thread beside the client's poll thread.
#pragma once

#include <chrono>
#include <string_view>
#include <vector>

#include "broker-adapters/kafka/kafka_client.h"
#include "core/broker.h"

namespace sluice::kafka {

// `rk` is a consumer whose group.id is `group`.
Result<std::vector<PartitionLag>> query_lag(rd_kafka_t* rk, std::string_view broker,
                                            std::string_view topic, std::string_view group,
                                            std::chrono::milliseconds timeout = kQueryTimeout);

}  // namespace sluice::kafka
