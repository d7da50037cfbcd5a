#include <algorithm>
#include <map>
#include <set>

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

struct TopicParts {
  std::string name;
  int32_t partitions = 0;
};

// Every topic of the cluster (one metadata request for all of them, so that asking
// never creates a topic where the cluster auto-creates), in name order.
Result<std::vector<TopicParts>> list_topics(rd_kafka_t* rk, const std::string& where,
                                            std::chrono::milliseconds timeout) {
  const rd_kafka_metadata_t* md = nullptr;
  if (rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 1, nullptr, &md, static_cast<int>(timeout.count())))
    return kafka_error(where + ": listing topics", err);
  std::vector<TopicParts> out;
  for (int i = 0; i < md->topic_cnt; ++i)
    if (!md->topics[i].err && md->topics[i].partition_cnt > 0)
      out.push_back({md->topics[i].topic, md->topics[i].partition_cnt});
  rd_kafka_metadata_destroy(md);
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  return out;
}

// Topics per offsets request: each partition is one entry of two requests.
constexpr size_t kTopicsPerRequest = 200;

// Events of each of `topics` (sum over partitions of high - low watermark), from two
// ListOffsets requests per kTopicsPerRequest topics (earliest, latest; librdkafka
// batches them per partition leader), until `limit` hold events or `deadline`.
Result<Holdings> count_topics(rd_kafka_t* rk, const std::string& where,
                              const std::vector<TopicParts>& topics, size_t limit,
                              std::chrono::steady_clock::time_point deadline) {
  Holdings out;
  for (size_t first = 0; first < topics.size(); first += kTopicsPerRequest) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      out.incomplete = "no time left to count " + std::to_string(topics.size() - first) + " topics";
      break;
    }
    const size_t last = std::min(topics.size(), first + kTopicsPerRequest);
    PartList ends[2];
    for (int which = 0; which < 2; ++which) {
      ends[which].reset(rd_kafka_topic_partition_list_new(0));
      for (size_t i = first; i < last; ++i)
        for (int32_t p = 0; p < topics[i].partitions; ++p)
          rd_kafka_topic_partition_list_add(ends[which].get(), topics[i].name.c_str(), p)->offset =
              which == 0 ? RD_KAFKA_OFFSET_BEGINNING : RD_KAFKA_OFFSET_END;
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      if (rd_kafka_resp_err_t err = rd_kafka_offsets_for_times(
              rk, ends[which].get(), static_cast<int>(std::max<int64_t>(left.count(), 1))))
        return kafka_error(where + ": counting events", err);
    }
    std::map<std::string, int64_t> events;
    for (int e = 0; e < ends[0]->cnt; ++e) {
      const auto& low = ends[0]->elems[e];
      const auto& high = ends[1]->elems[e];
      if (low.err || high.err || low.offset < 0 || high.offset < 0) continue;
      events[low.topic] += std::max<int64_t>(0, high.offset - low.offset);
    }
    for (size_t i = first; i < last; ++i) {
      auto it = events.find(topics[i].name);
      if (it == events.end() || it->second <= 0) continue;
      if (out.topics.size() >= limit) {
        out.incomplete = "more than " + std::to_string(limit) + " topics hold events";
        return out;
      }
      out.topics.push_back({it->first, it->second});
    }
  }
  return out;
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

Result<Holdings> KafkaBrowser::holdings(const std::vector<std::string>& names,
                                        std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  const std::string where = "kafka broker " + cfg_.name;
  SLUICE_TRY(r, make_reader(cfg_, cfg_.kafka().group + "-browser"));
  SLUICE_TRY(all, list_topics(r.rk.get(), where, std::min(budget, kQueryTimeout)));
  const std::set<std::string> wanted(names.begin(), names.end());
  std::erase_if(all, [&](const TopicParts& t) { return !wanted.count(t.name); });
  return count_topics(r.rk.get(), where, all, all.size(), deadline);
}

Result<Holdings> KafkaBrowser::all_holdings(size_t limit, std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  const std::string where = "kafka broker " + cfg_.name;
  SLUICE_TRY(r, make_reader(cfg_, cfg_.kafka().group + "-browser"));
  SLUICE_TRY(all, list_topics(r.rk.get(), where, std::min(budget, kQueryTimeout)));
  // __consumer_offsets, __transaction_state, _schemas...: the cluster's own.
  std::erase_if(all, [](const TopicParts& t) { return t.name.starts_with('_'); });
  return count_topics(r.rk.get(), where, all, limit, deadline);
}

}  // namespace sluice::kafka
