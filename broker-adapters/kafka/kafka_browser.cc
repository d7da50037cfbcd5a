#include <algorithm>

#include "broker-adapters/kafka/kafka_broker.h"

#include "broker-adapters/kafka/kafka_codec.h"
#include "broker-adapters/kafka/kafka_lag.h"
#include "core/clock.h"

namespace sluice::kafka {
namespace {

constexpr auto kReadTimeout = std::chrono::seconds(10);  // per partition read

// Appends records of `topic`/`p` from `from` until the end or `limit`.
Result<void> read_partition(const BrokerConfig& cfg, rd_kafka_t* rk, const std::string& topic,
                            int32_t p, int64_t from, size_t limit, std::vector<Event>& out) {
  const std::string where = "kafka broker " + cfg.name + ": reading " + topic + "/" +
                            std::to_string(p);
  int64_t low = 0, high = 0;
  if (rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(
          rk, topic.c_str(), p, &low, &high, static_cast<int>(kQueryTimeout.count())))
    return kafka_error(where, err);
  const int64_t start = std::max(from, low);
  if (start >= high) return ok();
  PartList l = make_list(topic, {p});
  l->elems[0].offset = start;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(rk, l.get())) return kafka_error(where, err);
  const auto deadline = deadline_in(kReadTimeout);
  Result<void> res = ok();
  while (out.size() < limit) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk, 200);
    if (!m) {
      if (std::chrono::steady_clock::now() < deadline) continue;
      res = Error{Errc::timeout, where + ": no answer within 10 s", true};
      break;
    }
    const rd_kafka_resp_err_t err = m->err;
    const int64_t offset = m->offset;
    if (!err && m->partition == p) out.push_back(record_to_event(m, cfg.name));
    rd_kafka_message_destroy(m);
    if (err == RD_KAFKA_RESP_ERR__PARTITION_EOF) break;
    if (err) {
      res = kafka_error(where, err);
      break;
    }
    if (offset + 1 >= high) break;
  }
  rd_kafka_assign(rk, nullptr);
  return res;
}

}  // namespace

Result<std::vector<Event>> KafkaBrowser::read(std::string_view topic, int32_t partition,
                                              int64_t from_offset, size_t limit) {
  const std::string t(topic);
  SLUICE_TRY(r, make_reader(cfg_, cfg_.kafka().group + "-browser"));
  SLUICE_TRY(count, partition_count(r.rk.get(), topic));
  std::vector<Event> out;
  const int32_t first = partition < 0 ? 0 : partition;
  const int32_t last = partition < 0 ? count - 1 : std::min(partition, count - 1);
  for (int32_t p = first; p <= last && out.size() < limit; ++p) {
    SLUICE_TRY(read_partition(cfg_, r.rk.get(), t, p, from_offset, limit, out));
  }
  return out;
}

Result<Event> KafkaBrowser::get(std::string_view topic, int32_t partition, int64_t offset) {
  SLUICE_TRY(events, read(topic, partition < 0 ? 0 : partition, offset, 1));
  if (events.empty() || events.front().offset != offset)
    return Error{Errc::not_found, "kafka broker " + cfg_.name + ": no record at " +
                                      std::string(topic) + "/" + std::to_string(partition) +
                                      "/" + std::to_string(offset)};
  return std::move(events.front());
}

Result<void> KafkaBrowser::remove(std::string_view topic, int32_t partition, int64_t offset) {
  return Error{Errc::invalid_argument, "Kafka cannot delete records"};
}

Result<std::vector<PartitionLag>> KafkaBrowser::lag(std::string_view topic,
                                                    std::string_view group) {
  SLUICE_TRY(r, make_reader(cfg_, std::string(group), peek_settings));
  SLUICE_TRY(lags, query_lag(r.rk.get(), cfg_.name, topic, group));
  peek_lag_seconds(r.rk.get(), lags, now_unix_ms());
  return lags;
}

}  // namespace sluice::kafka
