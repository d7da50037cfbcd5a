#include <algorithm>

#include "broker-adapters/local/local_broker.h"

namespace sluice::local {

Result<std::vector<Event>> LocalBrowser::read(std::string_view topic, int32_t partition,
                                              int64_t from_offset, size_t limit) {
  return q_.with_reader([&](LogReader& r) -> Result<std::vector<Event>> {
    std::vector<Event> out;
    SLUICE_TRY(parts, r.partitions(topic));
    const int32_t first = partition < 0 ? 0 : partition;
    const int32_t last = partition < 0 ? parts - 1 : std::min(partition, parts - 1);
    for (int32_t p = first; p <= last && out.size() < limit; ++p) {
      SLUICE_TRY(r.read(topic, p, from_offset, limit - out.size(), [&](const RowView& row) {
        bool bad = false;
        out.push_back(row_to_event(row, topic, q_.options().broker, &bad));
      }));
    }
    return out;
  });
}

Result<Event> LocalBrowser::get(std::string_view topic, int32_t partition, int64_t offset) {
  return q_.with_reader([&](LogReader& r) -> Result<Event> {
    bool bad = false;
    SLUICE_TRY(ev, r.get(topic, partition, offset, q_.options().broker, &bad));
    if (!ev)
      return Error{Errc::not_found, "local broker " + q_.options().path + ": no event at " +
                                        std::string(topic) + "/" + std::to_string(partition) +
                                        "/" + std::to_string(offset)};
    return std::move(*ev);
  });
}

Result<void> LocalBrowser::remove(std::string_view topic, int32_t partition, int64_t offset) {
  return q_.with_reader([&](LogReader& r) -> Result<void> {
    SLUICE_TRY(removed, r.remove(topic, partition, offset));
    if (!removed)
      return Error{Errc::not_found, "local broker " + q_.options().path + ": no event at " +
                                        std::string(topic) + "/" + std::to_string(partition) +
                                        "/" + std::to_string(offset)};
    return ok();
  });
}

Result<std::vector<PartitionLag>> LocalBrowser::lag(std::string_view topic,
                                                    std::string_view group) {
  return q_.with_reader([&](LogReader& r) {
    return r.lag(q_.options().broker, topic, group, {});
  });
}

namespace {

// Events of `topic` in `r`: what a reader with no committed offset would get.
Result<int64_t> stored_events(LogReader& r, std::string_view broker, std::string_view topic) {
  SLUICE_TRY(parts, r.lag(broker, topic, "", {}));
  int64_t n = 0;
  for (const PartitionLag& p : parts) n += p.lag;
  return n;
}

// Counts `names` (in name order) until `limit` hold events or `budget` is spent.
Result<Holdings> count_topics(LogReader& r, std::string_view broker,
                              std::vector<std::string> names, size_t limit,
                              std::chrono::milliseconds budget) {
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  const auto deadline = std::chrono::steady_clock::now() + budget;
  Holdings out;
  for (const std::string& t : names) {
    if (out.topics.size() >= limit) {
      out.incomplete = "listed the first " + std::to_string(limit) + " topics that hold events";
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      out.incomplete = "stopped counting after " + std::to_string(budget.count()) + " ms";
      break;
    }
    SLUICE_TRY(n, stored_events(r, broker, t));
    if (n > 0) out.topics.push_back({t, n});
  }
  return out;
}

}  // namespace

Result<Holdings> LocalBrowser::holdings(const std::vector<std::string>& names,
                                        std::chrono::milliseconds budget) {
  return q_.with_reader([&](LogReader& r) {
    return count_topics(r, q_.options().broker, names, names.size(), budget);
  });
}

Result<Holdings> LocalBrowser::all_holdings(size_t limit, std::chrono::milliseconds budget) {
  return q_.with_reader([&](LogReader& r) -> Result<Holdings> {
    // Topics whose events are all gone still have a name: look at a few more than `limit`.
    const size_t scan = limit * 4 + 1;
    SLUICE_TRY(names, r.topics(scan));
    const bool more = names.size() >= scan;
    SLUICE_TRY(out, count_topics(r, q_.options().broker, std::move(names), limit, budget));
    if (more && out.incomplete.empty())
      out.incomplete = "only the first " + std::to_string(scan) + " topic names were looked at";
    return out;
  });
}

}  // namespace sluice::local
