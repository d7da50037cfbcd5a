// The NATS codec's decoding (nats::msg_to_event) of a message built with nats.c's
// public API, as the sources hand it over: CloudEvents binary mode (ce-* headers),
// structured mode, or a plain message; the key from a header, the partitionkey or
// a subject token. Then the sink's encoding of the event (event_to_msg).
// Input: the subject on the first line, then header lines, an empty line and the
// payload (tests/fuzz/fuzz_input.h).
#include "broker-adapters/nats/nats_codec.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool opened = nats_Open(-1) == NATS_OK;  // as a connection does first
  SLUICE_FUZZ_CHECK(opened);
  std::string_view in = fuzz::as_text(data, size);
  const size_t eol = in.find('\n');
  if (eol == std::string_view::npos) return 0;
  const std::string subject(in.substr(0, eol));
  fuzz::Message m = fuzz::split_message(in.substr(eol + 1));
  if (subject.find('\0') != std::string::npos) return 0;  // a C string on the wire

  natsMsg* raw = nullptr;
  if (natsMsg_Create(&raw, subject.c_str(), nullptr, m.body.data(),
                     static_cast<int>(m.body.size())) != NATS_OK)
    return 0;
  nats::MsgPtr msg(raw);
  for (const Header& h : m.headers) {
    if (h.name.find('\0') != std::string::npos || h.value.find('\0') != std::string::npos)
      continue;
    (void)natsMsgHeader_Add(raw, h.name.c_str(), h.value.c_str());
  }
  const int token = static_cast<int>(size % 7) - 3;  // -3..3
  nats::KeyRule rule;
  rule.token = token;
  nats::MsgCoords at{"nats", size % 2 ? "ORDERS" : "", 42, 1764921600000};
  Event ev = nats::msg_to_event(raw, at, rule);
  SLUICE_FUZZ_CHECK(ev.topic == subject && !ev.id.empty() && !ev.type.empty());
  SLUICE_FUZZ_CHECK(ev.offset == (at.stream.empty() ? -1 : 42));
  (void)nats::event_to_msg(subject, ev);
  return 0;
}
