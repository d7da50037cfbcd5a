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

Result<std::vector<std::string>> LocalBrowser::topics(size_t limit) {
  return q_.with_reader([&](LogReader& r) { return r.topics(limit); });
}

}  // namespace sluice::local
