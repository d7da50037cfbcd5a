#include <algorithm>
#include <chrono>
#include <map>

#include "broker-adapters/nats/js_lookup.h"
#include "broker-adapters/nats/nats_broker.h"

namespace sluice::nats {
namespace {

Error no_event(const NatsConn& c, std::string_view stream, std::string_view topic, int64_t seq) {
  return Error{Errc::not_found, "nats broker '" + c.broker() + "': no event " + std::string(topic) +
                                    " at sequence " + std::to_string(seq) + " of stream '" +
                                    std::string(stream) + "'"};
}

// Messages per subject the stream holds among those `filter` matches (stream info with
// a subjects filter), added to `into`. Waits at most until `deadline`.
Result<void> subject_counts(NatsConn& c, const std::string& stream, const std::string& filter,
                            std::chrono::steady_clock::time_point deadline,
                            std::map<std::string, int64_t>& into) {
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter.c_str();
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - std::chrono::steady_clock::now());
  o.Wait = std::max<int64_t>(left.count(), 1);
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, c.js(), stream.c_str(), &o, &jerr);
  if (s != NATS_OK)
    return js_error("nats broker '" + c.broker() + "': counting " + filter + " in stream '" +
                        stream + "'",
                    s, jerr);
  if (const jsStreamStateSubjects* subs = si->State.Subjects)
    for (int i = 0; i < subs->Count; ++i)
      if (subs->List[i].Msgs > 0)
        into[subs->List[i].Subject] += static_cast<int64_t>(subs->List[i].Msgs);
  jsStreamInfo_Destroy(si);
  return ok();
}

Holdings to_holdings(const std::map<std::string, int64_t>& counts, size_t limit) {
  Holdings out;
  for (const auto& [subject, n] : counts) {
    if (out.topics.size() >= limit) {
      out.incomplete = "more than " + std::to_string(limit) + " subjects hold messages";
      break;
    }
    out.topics.push_back({subject, n});
  }
  return out;
}

}  // namespace

Result<std::vector<Event>> NatsBrowser::read(std::string_view topic, int32_t partition,
                                             int64_t from_offset, size_t limit) {
  std::vector<Event> out;
  if (partition > 0) return out;  // one partition: 0
  uint64_t seq = static_cast<uint64_t>(std::max<int64_t>(from_offset, 1));
  while (out.size() < limit) {
    SLUICE_TRY(next, next_message(conn_, stream_, seq, topic));
    if (!next) break;
    out.push_back(msg_to_event(next->msg.get(),
                               MsgCoords{conn_.broker(), stream_, next->sequence, next->timestamp_ms},
                               KeyRule{conn_.settings().key_header, conn_.settings().key_token}));
    seq = next->sequence + 1;
  }
  return out;
}

Result<Event> NatsBrowser::get(std::string_view topic, int32_t partition, int64_t offset) {
  if (partition > 0 || offset < 1) return no_event(conn_, stream_, topic, offset);
  natsMsg* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetMsg(&raw, conn_.js(), stream_.c_str(), static_cast<uint64_t>(offset),
                           nullptr, &jerr);
  if (s != NATS_OK) {
    Error e = js_error("nats broker '" + conn_.broker() + "': get " + std::string(topic) + "@" +
                           std::to_string(offset),
                       s, jerr);
    if (e.code == Errc::not_found) return no_event(conn_, stream_, topic, offset);
    return e;
  }
  MsgPtr m(raw);
  if (!subject_matches(topic, natsMsg_GetSubject(raw))) return no_event(conn_, stream_, topic, offset);
  return msg_to_event(raw, MsgCoords{conn_.broker(), stream_, natsMsg_GetSequence(raw),
                                     natsMsg_GetTime(raw) / 1000000},
                      KeyRule{conn_.settings().key_header, conn_.settings().key_token});
}

Result<void> NatsBrowser::remove(std::string_view topic, int32_t partition, int64_t offset) {
  SLUICE_TRY(get(topic, partition, offset));  // only events of this topic
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteMsg(conn_.js(), stream_.c_str(), static_cast<uint64_t>(offset), nullptr, &jerr);
  if (s != NATS_OK)
    return js_error("nats broker '" + conn_.broker() + "': delete " + std::string(topic) + "@" +
                        std::to_string(offset),
                    s, jerr);
  return ok();
}

Result<std::vector<PartitionLag>> NatsBrowser::lag(std::string_view topic, std::string_view group) {
  SLUICE_TRY(pl, consumer_lag(conn_, stream_, topic, group));
  return std::vector<PartitionLag>{std::move(pl)};
}

Result<Holdings> NatsBrowser::holdings(const std::vector<std::string>& names,
                                       std::chrono::milliseconds budget) {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  std::map<std::string, int64_t> counts;
  size_t asked = 0;
  for (; asked < names.size() && std::chrono::steady_clock::now() < deadline; ++asked) {
    std::map<std::string, int64_t> one;
    SLUICE_TRY(subject_counts(conn_, stream_, names[asked], deadline, one));
    for (const auto& [subject, n] : one) counts[names[asked]] += n;
  }
  Holdings out = to_holdings(counts, names.size());
  if (asked < names.size())
    out.incomplete = "no time left to count " + std::to_string(names.size() - asked) + " subjects";
  return out;
}

Result<Holdings> NatsBrowser::all_holdings(size_t limit, std::chrono::milliseconds budget) {
  std::map<std::string, int64_t> counts;
  SLUICE_TRY(subject_counts(conn_, stream_, ">", std::chrono::steady_clock::now() + budget, counts));
  return to_holdings(counts, limit);
}

}  // namespace sluice::nats
