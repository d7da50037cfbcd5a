#include "broker-adapters/nats/js_lookup.h"

#include <nlohmann/json.hpp>

#include "core/cloudevents.h"

namespace sluice::nats {
namespace {

// "NATS/1.0\r\nName: value\r\n...\r\n\r\n" -> headers of `m`.
Result<void> add_header_block(natsMsg* m, std::string_view block) {
  size_t pos = block.find("\r\n");
  if (pos == std::string_view::npos) return Error{Errc::corrupt, "stored headers without a status line"};
  pos += 2;
  while (pos < block.size()) {
    size_t end = block.find("\r\n", pos);
    if (end == std::string_view::npos) end = block.size();
    std::string_view line = block.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string name(line.substr(0, colon));
    std::string_view v = line.substr(colon + 1);
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    natsStatus s = natsMsgHeader_Add(m, name.c_str(), std::string(v).c_str());
    if (s != NATS_OK) return nats_error("stored header '" + name + "'", s, Errc::corrupt);
  }
  return ok();
}

}  // namespace

Result<std::optional<StoredMsg>> next_message(NatsConn& c, std::string_view stream,
                                              uint64_t from_seq, std::string_view filter) {
  const std::string who = "nats broker '" + c.broker() + "': stream '" + std::string(stream) + "'";
  const std::string subject = "$JS.API.STREAM.MSG.GET." + std::string(stream);
  nlohmann::json req = {{"seq", std::max<uint64_t>(from_seq, 1)}, {"next_by_subj", filter}};
  const std::string body = req.dump();
  natsMsg* reply = nullptr;
  natsStatus s = natsConnection_Request(&reply, c.nc(), subject.c_str(), body.data(),
                                        static_cast<int>(body.size()), 5000);
  if (s != NATS_OK) return nats_error(who + ": message get", s);
  MsgPtr r(reply);
  const char* data = natsMsg_GetData(reply);
  auto j = nlohmann::json::parse(std::string_view(data ? data : "", natsMsg_GetDataLength(reply)),
                                 nullptr, false);
  if (j.is_discarded() || !j.is_object())
    return Error{Errc::corrupt, who + ": message get: reply is not JSON"};
  if (j.contains("error")) {
    const auto& e = j["error"];
    if (e.value("code", 0) == 404) return std::optional<StoredMsg>{};
    return Error{Errc::io, who + ": message get: " + e.value("description", std::string("error"))};
  }
  if (!j.contains("message") || !j["message"].is_object())
    return Error{Errc::corrupt, who + ": message get: no message in the reply"};
  const auto& m = j["message"];
  StoredMsg out;
  out.sequence = m.value("seq", uint64_t{0});
  if (auto t = parse_rfc3339(m.value("time", std::string()))) out.timestamp_ms = t.value();
  std::string payload;
  if (m.contains("data") && m["data"].is_string()) {
    auto d = cloudevents::base64_decode(m["data"].get<std::string>());
    if (!d) return Error{Errc::corrupt, who + ": message get: bad data encoding"};
    payload = std::move(d).value();
  }
  const std::string subj = m.value("subject", std::string());
  natsMsg* raw = nullptr;
  s = natsMsg_Create(&raw, subj.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
  if (s != NATS_OK) return nats_error(who + ": message get", s, Errc::internal);
  out.msg.reset(raw);
  if (m.contains("hdrs") && m["hdrs"].is_string()) {
    auto h = cloudevents::base64_decode(m["hdrs"].get<std::string>());
    if (!h) return Error{Errc::corrupt, who + ": message get: bad header encoding"};
    SLUICE_TRY(add_header_block(raw, h.value()));
  }
  return std::optional<StoredMsg>(std::move(out));
}

Result<PartitionLag> consumer_lag(NatsConn& c, std::string_view stream, std::string_view topic,
                                  std::string_view group) {
  const std::string st(stream), g(group);
  const std::string who = "nats broker '" + c.broker() + "': consumer '" + g + "' on stream '" + st + "'";
  jsConsumerInfo* ci = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&ci, c.js(), st.c_str(), g.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return js_error(who + ": lag", s, jerr);
  PartitionLag pl;
  pl.broker = c.broker();
  pl.topic = std::string(topic);
  pl.group = g;
  pl.partition = 0;
  pl.committed = static_cast<int64_t>(ci->AckFloor.Stream) + 1;
  pl.lag = static_cast<int64_t>(ci->NumPending) + ci->NumAckPending;
  const uint64_t floor = ci->AckFloor.Stream;
  jsConsumerInfo_Destroy(ci);

  jsStreamInfo* si = nullptr;
  s = js_GetStreamInfo(&si, c.js(), st.c_str(), nullptr, &jerr);
  if (s != NATS_OK) return js_error(who + ": lag (stream info)", s, jerr);
  pl.end = static_cast<int64_t>(si->State.LastSeq) + 1;
  jsStreamInfo_Destroy(si);

  if (pl.lag == 0) {
    pl.lag_seconds = 0.0;
  } else if (auto oldest = next_message(c, stream, floor + 1, topic); oldest && oldest.value()) {
    const int64_t age_ms = now_unix_ms() - oldest.value()->timestamp_ms;
    pl.lag_seconds = std::max<int64_t>(0, age_ms) / 1000.0;
  }  // else: unknown (nullopt), the count is still exact
  return pl;
}

}  // namespace sluice::nats
