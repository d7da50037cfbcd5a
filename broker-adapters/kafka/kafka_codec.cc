#include "broker-adapters/kafka/kafka_codec.h"

#include <strings.h>

#include <algorithm>
#include <charconv>

#include "core/cloudevents.h"

namespace sluice::kafka {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool has_prefix_ci(std::string_view s, std::string_view prefix) {
  return s.size() > prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

Headers read_headers(const rd_kafka_message_t* msg) {
  Headers out;
  rd_kafka_headers_t* hdrs = nullptr;
  // The headers stay owned by the message.
  if (rd_kafka_message_headers(msg, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR || !hdrs) return out;
  out.reserve(rd_kafka_header_cnt(hdrs));
  const char* name = nullptr;
  const void* value = nullptr;
  size_t size = 0;
  for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &value, &size) ==
                     RD_KAFKA_RESP_ERR_NO_ERROR;
       ++i)
    out.push_back(Header{name, value ? std::string(static_cast<const char*>(value), size)
                                     : std::string()});
  return out;
}

// A record that is not a CloudEvent. Hot path (every plain record): few allocations.
void plain_event(Event& ev, const RecordMeta& rec, Headers headers, std::string data) {
  char num[48];
  auto [p1, e1] = std::to_chars(num, num + 20, rec.partition);
  *p1++ = '/';
  auto [p2, e2] = std::to_chars(p1, num + sizeof num, rec.offset);
  ev.id.reserve(rec.topic.size() + 1 + static_cast<size_t>(p2 - num));
  ev.id.append(rec.topic).append(1, '/').append(num, p2);
  ev.source.reserve(7 + rec.topic.size());
  ev.source.append("/kafka/").append(rec.topic);
  ev.type = kPlainType;
  if (rec.timestamp_ms > 0) ev.time = format_rfc3339(rec.timestamp_ms);
  for (const auto& h : headers)
    if (iequals(h.name, "content-type")) ev.datacontenttype = h.value;
  ev.headers = std::move(headers);
  ev.data = std::move(data);
}

}  // namespace

Event record_to_event(const rd_kafka_message_t* msg, std::string_view broker,
                      bool* decode_failed) {
  Event ev;
  record_to_event(msg, broker, ev, decode_failed);
  return ev;
}

void record_to_event(const rd_kafka_message_t* msg, std::string_view broker, Event& ev,
                     bool* decode_failed) {
  RecordMeta rec;
  rec.topic = rd_kafka_topic_name(msg->rkt);
  rec.partition = msg->partition;
  rec.offset = msg->offset;
  if (msg->key) rec.key = std::string_view(static_cast<const char*>(msg->key), msg->key_len);
  rd_kafka_timestamp_type_t tstype = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE;
  rec.timestamp_ms = rd_kafka_message_timestamp(msg, &tstype);
  if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE) rec.timestamp_ms = 0;
  std::string body(msg->payload ? static_cast<const char*>(msg->payload) : "", msg->len);
  decode_record(rec, read_headers(msg), std::move(body), broker, ev, decode_failed);
}

void decode_record(const RecordMeta& rec, Headers headers, std::string body,
                   std::string_view broker, Event& ev, bool* decode_failed) {
  bool binary = false;
  const std::string* content_type = nullptr;
  for (const auto& h : headers) {
    if (has_prefix_ci(h.name, cloudevents::kKafkaPrefix)) binary = true;
    if (iequals(h.name, "content-type")) content_type = &h.value;
  }
  const bool structured =
      !binary && content_type &&
      iequals(content_type->substr(0, content_type->find(';')),
              cloudevents::kStructuredContentType);

  if (decode_failed) *decode_failed = false;
  if (binary || structured) {
    Result<Event> parsed =
        binary ? cloudevents::parse_binary(headers, cloudevents::kKafkaPrefix, body, {})
               : cloudevents::parse_structured(body);
    if (parsed) {
      ev = std::move(parsed).value();
      if (structured)
        for (auto& h : headers)
          if (!iequals(h.name, "content-type")) ev.headers.push_back(std::move(h));
    } else {
      plain_event(ev, rec, std::move(headers), std::move(body));
      ev.set_header(std::string(kDecodeErrorHeader), parsed.error().message);
      if (decode_failed) *decode_failed = true;
    }
  } else {
    plain_event(ev, rec, std::move(headers), std::move(body));
  }
  if (rec.key) ev.key.assign(*rec.key);
  ev.broker.assign(broker);
  ev.topic.assign(rec.topic);
  ev.partition = rec.partition;
  ev.offset = rec.offset;
  ev.broker_timestamp_ms = rec.timestamp_ms;
}

bool is_plain_dead_letter(const Event& ev) {
  if (ev.type != kPlainType) return false;
  for (const auto& h : ev.headers)
    if (has_prefix_ci(h.name, kDeadLetterHeaderPrefix)) return true;
  return false;
}

rd_kafka_headers_t* event_headers(const Event& ev) {
  Headers hs;
  if (is_plain_dead_letter(ev)) {
    hs = ev.headers;
    // A content-type the event holds only as datacontenttype (it went through a
    // retry topic, where it travelled as a CloudEvent) goes back into the headers.
    const bool has_type = std::any_of(hs.begin(), hs.end(),
                                      [](const Header& h) { return iequals(h.name, "content-type"); });
    if (!has_type && !ev.datacontenttype.empty()) hs.push_back({"content-type", ev.datacontenttype});
  } else {
    hs = cloudevents::to_binary(ev, cloudevents::kKafkaPrefix);
  }
  rd_kafka_headers_t* out = rd_kafka_headers_new(hs.size());
  for (const auto& h : hs)
    rd_kafka_header_add(out, h.name.data(), static_cast<ssize_t>(h.name.size()), h.value.data(),
                        static_cast<ssize_t>(h.value.size()));
  return out;
}

}  // namespace sluice::kafka
