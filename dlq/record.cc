#include "dlq/record.h"

#include <charconv>
#include <nlohmann/json.hpp>

namespace sluice::dlq {

namespace {
std::string h(std::string_view suffix) { return std::string(kHeaderPrefix) + std::string(suffix); }

bool is_dlq_header(const std::string& name) {
  return name.size() > kHeaderPrefix.size() &&
         std::equal(kHeaderPrefix.begin(), kHeaderPrefix.end(), name.begin(),
                    [](char a, char b) { return a == std::tolower(static_cast<unsigned char>(b)); });
}

template <class T>
bool parse_int(std::string_view s, T& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}
}  // namespace

Event make_record(const Event& original, const Failure& f, const seal::Keyring& keys) {
  Event e = original;
  // Drop any dlq headers of an earlier dead-lettering (a replayed event failing again).
  std::erase_if(e.headers, [](const Header& x) { return is_dlq_header(x.name); });
  e.headers.push_back({h("function"), f.function});
  e.headers.push_back({h("error-class"), f.error_class ? f.error_class : dead_letter_reason(f.outcome)});
  e.headers.push_back({h("error-message"), f.message});
  e.headers.push_back({h("attempts"), std::to_string(f.attempts)});
  e.headers.push_back({h("first-failure-time"), format_rfc3339(f.first_failure_ms)});
  e.headers.push_back({h("last-failure-time"), format_rfc3339(f.last_failure_ms)});
  e.headers.push_back({h("original-broker"), original.broker});
  e.headers.push_back({h("original-topic"), original.topic});
  e.headers.push_back({h("original-partition"), std::to_string(original.partition)});
  e.headers.push_back({h("original-offset"), std::to_string(original.offset)});
  e.headers.push_back({h("event-id"), original.id});
  e.attempt = 0;
  e.first_attempt_time_ms = 0;
  keys.apply(seal::Kind::dead_letter, e, f.function);
  return e;
}

Result<Record> parse_record(Event stored, const seal::Keyring* keys) {
  Record r;
  const std::string* fn = stored.header(h("function"));
  if (!fn)
    return Error{Errc::invalid_argument,
                 "event " + stored.id + " is not a dead letter (no sluice-dlq-function header)"};
  r.function = *fn;
  auto get = [&](std::string_view k) -> std::string {
    const std::string* v = stored.header(h(k));
    return v ? *v : std::string();
  };
  r.error_class = get("error-class");
  r.error_message = get("error-message");
  parse_int(get("attempts"), r.attempts);
  if (auto t = parse_rfc3339(get("first-failure-time"))) r.first_failure_ms = t.value();
  if (auto t = parse_rfc3339(get("last-failure-time"))) r.last_failure_ms = t.value();
  r.original_broker = get("original-broker");
  r.original_topic = get("original-topic");
  parse_int(get("original-partition"), r.original_partition);
  parse_int(get("original-offset"), r.original_offset);
  r.id = record_id(stored.topic, stored.partition, stored.offset);
  if (!keys) {
    r.unverified_reason = "no control key to check its seal with";
  } else if (auto v = keys->verify(seal::Kind::dead_letter, stored, r.function);
             v == seal::Verdict::verified) {
    r.verified = true;
  } else {
    r.unverified_reason = seal::to_string(v);
  }
  r.event = std::move(stored);
  return r;
}

Event original_event(const Record& r) {
  Event e = r.event;
  std::erase_if(e.headers, [](const Header& x) { return is_dlq_header(x.name); });
  e.broker.clear();
  e.topic.clear();
  e.partition = -1;
  e.offset = -1;
  e.broker_timestamp_ms = 0;
  e.attempt = 0;
  e.first_attempt_time_ms = 0;
  return e;
}

std::string record_id(std::string_view topic, int32_t partition, int64_t offset) {
  return std::string(topic) + ":" + std::to_string(partition) + ":" + std::to_string(offset);
}

Result<RecordId> parse_record_id(std::string_view id) {
  RecordId r;
  auto bad = [&] {
    return Error{Errc::invalid_argument, "bad dead-letter id '" + std::string(id) +
                                             "': expected TOPIC:PARTITION:OFFSET, e.g. f.dlq:0:17"};
  };
  auto last = id.rfind(':');
  if (last == std::string_view::npos || last == 0) return bad();
  auto mid = id.rfind(':', last - 1);
  if (mid == std::string_view::npos || mid == 0) return bad();
  r.topic = std::string(id.substr(0, mid));
  if (!parse_int(id.substr(mid + 1, last - mid - 1), r.partition) ||
      !parse_int(id.substr(last + 1), r.offset) || r.partition < 0 || r.offset < 0)
    return bad();
  return r;
}

std::string to_json(const Record& r, bool with_data) {
  nlohmann::json j{{"id", r.id},
                   {"function", r.function},
                   {"error_class", r.error_class},
                   {"error_message", r.error_message},
                   {"attempts", r.attempts},
                   {"first_failure_time", format_rfc3339(r.first_failure_ms)},
                   {"last_failure_time", format_rfc3339(r.last_failure_ms)},
                   {"original", {{"broker", r.original_broker},
                                 {"topic", r.original_topic},
                                 {"partition", r.original_partition},
                                 {"offset", r.original_offset}}},
                   {"event_id", r.event.id},
                   {"type", r.event.type},
                   {"source", r.event.source},
                   {"key", r.event.key},
                   {"verified", r.verified}};
  if (!r.verified) j["unverified_reason"] = r.unverified_reason;
  if (with_data) {
    nlohmann::json headers = nlohmann::json::object();
    for (const auto& x : r.event.headers) headers[x.name] = x.value;
    j["headers"] = headers;
    j["datacontenttype"] = r.event.datacontenttype;
    j["data"] = r.event.data;  // nlohmann escapes; binary is replaced by U+FFFD on dump
  }
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace sluice::dlq
