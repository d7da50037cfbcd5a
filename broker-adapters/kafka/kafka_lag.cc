#include "broker-adapters/kafka/kafka_lag.h"

#include "core/clock.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

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

void peek_settings(rd_kafka_conf_t* conf) {
  char err[256];
  // One record per partition is wanted: stop prefetching after the first fetch.
  // (A smaller max.partition.fetch.bytes does not help: the broker returns a record
  // batch whole or not at all, and batches of a busy producer are up to 1 MB.)
  for (auto [k, v] : {std::pair{"queued.min.messages", "1"},
                      std::pair{"fetch.wait.max.ms", "100"}})
    rd_kafka_conf_set(conf, k, v, err, sizeof err);
}

void peek_lag_seconds(rd_kafka_t* reader, std::vector<PartitionLag>& lags, int64_t now_ms,
                      std::chrono::milliseconds timeout) {
  // partition -> (offset of the oldest unconsumed record, entry)
  std::map<int32_t, std::pair<int64_t, PartitionLag*>> want;
  for (auto& l : lags) {
    if (l.lag <= 0) {
      l.lag_seconds = 0.0;
      continue;
    }
    l.lag_seconds.reset();
    want.emplace(l.partition, std::pair{l.end - l.lag, &l});
  }
  if (want.empty()) return;
  const std::string topic = lags.front().topic;
  PartList list(rd_kafka_topic_partition_list_new(static_cast<int>(want.size())));
  for (const auto& [p, w] : want)
    rd_kafka_topic_partition_list_add(list.get(), topic.c_str(), p)->offset = w.first;
  if (rd_kafka_resp_err_t err = rd_kafka_assign(reader, list.get())) {
    spdlog::debug("kafka: lag peek of {}: assign: {}", topic, rd_kafka_err2str(err));
    return;
  }
  const auto deadline = deadline_in(timeout);
  size_t left = want.size();
  while (left > 0) {
    const auto rest = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (rest.count() <= 0) break;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(reader, static_cast<int>(rest.count()));
    if (!m) break;
    auto it = want.find(m->partition);
    // Errors (EOF: the records were removed meanwhile) and records from before the
    // wanted offset (an earlier assignment) leave the entry as it is.
    if (!m->err && it != want.end() && it->second.second && m->offset >= it->second.first &&
        topic == rd_kafka_topic_name(m->rkt)) {
      rd_kafka_timestamp_type_t type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
      const int64_t ts = rd_kafka_message_timestamp(m, &type);
      if (type != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && ts >= 0)
        it->second.second->lag_seconds = std::max<int64_t>(0, now_ms - ts) / 1000.0;
      it->second.second = nullptr;  // done
      --left;
    }
    rd_kafka_message_destroy(m);
  }
  rd_kafka_assign(reader, nullptr);
}

void LagPeeker::fill(std::vector<PartitionLag>& lags, std::chrono::milliseconds timeout) {
  std::lock_guard g(mu_);
  const bool behind = std::any_of(lags.begin(), lags.end(), [](auto& l) { return l.lag > 0; });
  if (behind && !reader_) {
    auto r = make_reader(cfg_, group_, peek_settings);
    if (!r) {
      spdlog::warn("kafka broker {}: lag_seconds unknown: {}", cfg_.name, r.error().message);
      for (auto& l : lags) l.lag_seconds = l.lag > 0 ? std::nullopt : std::optional(0.0);
      return;
    }
    reader_.emplace(std::move(r).value());
  }
  peek_lag_seconds(reader_ ? reader_->rk.get() : nullptr, lags, now_unix_ms(), timeout);
}

}  // namespace sluice::kafka
