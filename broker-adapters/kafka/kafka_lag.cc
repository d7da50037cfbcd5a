#include "broker-adapters/kafka/kafka_lag.h"

#include <algorithm>

namespace sluice::kafka {

Result<std::vector<PartitionLag>> query_lag(rd_kafka_t* rk, std::string_view broker,
                                            std::string_view topic, std::string_view group,
                                            std::chrono::milliseconds timeout) {
  const std::string t(topic);
  const std::string where = "kafka broker " + std::string(broker) + ": lag of " + t + " for " +
                            std::string(group);
  auto count = partition_count(rk, topic, timeout);
  if (!count) return Error{count.error().code, where + ": " + count.error().message,
                           count.error().retriable};
  std::vector<int32_t> parts(count.value());
  for (int32_t p = 0; p < count.value(); ++p) parts[p] = p;
  PartList list = make_list(topic, parts);
  const int ms = static_cast<int>(timeout.count());
  if (rd_kafka_resp_err_t err = rd_kafka_committed(rk, list.get(), ms))
    return kafka_error(where + ": committed offsets", err);

  std::vector<PartitionLag> out;
  out.reserve(parts.size());
  for (int i = 0; i < list->cnt; ++i) {
    const rd_kafka_topic_partition_t& el = list->elems[i];
    if (el.err)
      return kafka_error(where + ": committed offset of partition " +
                             std::to_string(el.partition), el.err);
    int64_t low = 0, high = 0;
    if (rd_kafka_resp_err_t err =
            rd_kafka_query_watermark_offsets(rk, t.c_str(), el.partition, &low, &high, ms))
      return kafka_error(where + ": watermarks of partition " + std::to_string(el.partition),
                         err);
    PartitionLag l;
    l.broker = std::string(broker);
    l.topic = t;
    l.group = std::string(group);
    l.partition = el.partition;
    l.committed = el.offset >= 0 ? el.offset : -1;
    l.end = high;
    l.lag = std::max<int64_t>(0, high - std::max(l.committed, low));
    out.push_back(std::move(l));
  }
  return out;
}

}  // namespace sluice::kafka
