#include "broker-adapters/nats/nats_codec.h"

#include <strings.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>

#include "broker-adapters/nats/nats_conn.h"
#include "core/cloudevents.h"

#if SLUICE_HAVE_NATSMSG_FREE
extern "C" void natsMsg_free(void* msg);  // nats.c msg.c: what its collector runs
#endif

namespace sluice::nats {
namespace {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

bool has_prefix_ci(std::string_view s, std::string_view prefix) {
  return s.size() > prefix.size() && iequals(s.substr(0, prefix.size()), prefix);
}

// Fills `ev` (fresh) in place: an Event is large, a move per message shows.
void plain_event(Event& ev, const MsgCoords& at, std::string_view subject, Headers headers,
                 std::string data) {
  if (at.stream.empty()) {
    ev.id = new_event_id();
    ev.source = "/nats";
  } else {
    char seq[24];
    const auto r = std::to_chars(seq, seq + sizeof seq, at.sequence);
    ev.id.reserve(at.stream.size() + 1 + static_cast<size_t>(r.ptr - seq));
    ev.id.append(at.stream).append(1, '/').append(seq, r.ptr);
    ev.source.reserve(6 + at.stream.size());
    ev.source.append("/nats/").append(at.stream);
  }
  ev.type = std::string(kPlainType);
  ev.subject = std::string(subject);
  for (const auto& h : headers)
    if (iequals(h.name, "content-type")) ev.datacontenttype = h.value;
  ev.headers = std::move(headers);
  ev.data = std::move(data);
}

}  // namespace

std::string_view subject_token(std::string_view subject, int n) {
  if (n == 0 || subject.empty()) return {};
  // Walk from the front (n > 0) or the back (n < 0) without allocating.
  size_t begin = 0, end = subject.size();
  if (n > 0) {
    for (int i = 1; i < n; ++i) {
      size_t dot = subject.find('.', begin);
      if (dot == std::string_view::npos) return {};
      begin = dot + 1;
    }
    size_t dot = subject.find('.', begin);
    end = dot == std::string_view::npos ? subject.size() : dot;
  } else {
    for (int i = -1; i > n; --i) {
      size_t dot = subject.rfind('.', end - 1);
      if (dot == std::string_view::npos || dot == 0) return {};
      end = dot;
    }
    size_t dot = end == 0 ? std::string_view::npos : subject.rfind('.', end - 1);
    begin = dot == std::string_view::npos ? 0 : dot + 1;
  }
  return subject.substr(begin, end - begin);
}

namespace {

// A decimal number of 1..19 digits that fits int64 (nats_ParseInt64's rules).
bool parse_u63(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  if (v > static_cast<uint64_t>(INT64_MAX)) return false;
  out = v;
  return true;
}

}  // namespace

bool parse_ack_subject(std::string_view reply, AckMeta& out) {
  constexpr std::string_view kPrefix = "$JS.ACK.";
  if (reply.size() <= kPrefix.size() || reply.substr(0, kPrefix.size()) != kPrefix) return false;
  reply.remove_prefix(kPrefix.size());
  // Up to 9 tokens after the prefix; whatever follows the 9th is not looked at.
  std::string_view tok[9];
  size_t n = 0, begin = 0;
  bool more = false;  // a 10th token or more follows
  for (;;) {
    const size_t dot = reply.find('.', begin);
    if (n == 9) {
      more = true;
      break;
    }
    tok[n++] = reply.substr(begin, dot == std::string_view::npos ? dot : dot - begin);
    if (dot == std::string_view::npos) break;
    begin = dot + 1;
  }
  size_t at = 0;  // index of <stream>
  if (n == 7 && !more) {
    out.domain = {};
  } else if (n == 9) {
    out.domain = tok[0] == "_" ? std::string_view{} : tok[0];
    at = 2;
  } else {
    return false;
  }
  uint64_t ts = 0;
  if (tok[at].empty() || tok[at + 1].empty() || !parse_u63(tok[at + 2], out.delivered) ||
      !parse_u63(tok[at + 3], out.stream_seq) || !parse_u63(tok[at + 4], out.consumer_seq) ||
      !parse_u63(tok[at + 5], ts) || !parse_u63(tok[at + 6], out.pending))
    return false;
  out.stream = tok[at];
  out.consumer = tok[at + 1];
  out.timestamp_ns = static_cast<int64_t>(ts);
  return true;
}

Headers read_headers(natsMsg* m) {
  Headers out;
  const char** keys = nullptr;
  int nkeys = 0;
  if (natsMsgHeader_Keys(m, &keys, &nkeys) != NATS_OK) return out;
  for (int i = 0; i < nkeys; ++i) {
    const char** values = nullptr;
    int nvalues = 0;
    if (natsMsgHeader_Values(m, keys[i], &values, &nvalues) != NATS_OK) continue;
    for (int j = 0; j < nvalues; ++j) out.push_back(Header{keys[i], values[j] ? values[j] : ""});
    free(values);
  }
  free(keys);
  return out;
}

void free_msg(natsMsg* m) {
  if (!m) return;
#if SLUICE_HAVE_NATSMSG_FREE
  natsMsg_free(m);
#else
  natsMsg_Destroy(m);
#endif
}

Event msg_to_event(natsMsg* m, const MsgCoords& at, const KeyRule& rule, bool* bad) {
  const std::string_view subject = natsMsg_GetSubject(m);
  const char* data = natsMsg_GetData(m);
  std::string body(data ? data : "", static_cast<size_t>(natsMsg_GetDataLength(m)));
  Headers headers = read_headers(m);

  bool binary = false;
  const std::string* content_type = nullptr;
  const std::string* key = nullptr;
  for (const auto& h : headers) {
    if (has_prefix_ci(h.name, cloudevents::kHttpPrefix)) binary = true;
    if (iequals(h.name, "content-type")) content_type = &h.value;
    if (!key && iequals(h.name, rule.header)) key = &h.value;
  }
  const bool structured =
      !binary && content_type &&
      iequals(content_type->substr(0, content_type->find(';')), cloudevents::kStructuredContentType);

  Event ev;
  std::string explicit_key = key ? *key : std::string();
  if (binary || structured) {
    Result<Event> parsed = binary ? cloudevents::parse_binary(headers, cloudevents::kHttpPrefix,
                                                              body, {})
                                  : cloudevents::parse_structured(body);
    if (parsed) {
      ev = std::move(parsed).value();
      if (structured) {
        for (auto& h : headers)
          if (!iequals(h.name, "content-type")) ev.headers.push_back(std::move(h));
      }
    } else {
      plain_event(ev, at, subject, std::move(headers), std::move(body));
      ev.set_header(std::string(kDecodeErrorHeader), parsed.error().message);
      if (bad) *bad = true;
    }
  } else {
    plain_event(ev, at, subject, std::move(headers), std::move(body));
  }
  if (!explicit_key.empty()) ev.key = std::move(explicit_key);
  else if (ev.key.empty()) ev.key.assign(subject_token(subject, rule.token));
  ev.broker.assign(at.broker);
  ev.topic.assign(subject);
  ev.partition = 0;
  ev.offset = at.stream.empty() ? -1 : static_cast<int64_t>(at.sequence);
  ev.broker_timestamp_ms = at.timestamp_ms;
  return ev;
}

Result<MsgPtr> event_to_msg(std::string_view subject, const Event& ev) {
  const std::string subj(subject);
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subj.c_str(), nullptr, ev.data.data(),
                                static_cast<int>(ev.data.size()));
  if (s != NATS_OK) return nats_error("nats: message for '" + subj + "'", s, Errc::invalid_argument);
  MsgPtr m(raw);
  for (const auto& h : cloudevents::to_binary(ev, cloudevents::kHttpPrefix)) {
    if (h.name.empty() || h.name.find_first_of(":\r\n") != std::string::npos ||
        h.value.find_first_of("\r\n") != std::string::npos)
      return Error{Errc::invalid_argument,
                   "nats: header '" + h.name + "' cannot travel as a NATS header (CR/LF or ':')"};
    s = natsMsgHeader_Add(m.get(), h.name.c_str(), h.value.c_str());
    if (s != NATS_OK)
      return nats_error("nats: header '" + h.name + "'", s, Errc::invalid_argument);
  }
  return m;
}

}  // namespace sluice::nats
