// CloudEvents binary mode: headers (HTTP/NATS "ce-" with percent-decoding, Kafka
// "ce_" as they are) and a body. Any input parses or fails with an error value; an
// event that parses survives sluice's own encoding (to_binary) unchanged.
// Input: header lines, an empty line, the body (tests/fuzz/fuzz_input.h).
#include <algorithm>

#include "core/cloudevents.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

namespace {

void round_trip(const fuzz::Message& m, std::string_view prefix) {
  auto ev = cloudevents::parse_binary(m.headers, prefix, m.body, {});
  if (!ev) return;
  const Event& a = ev.value();
  auto again = cloudevents::parse_binary(cloudevents::to_binary(a, prefix), prefix, a.data, {});
  SLUICE_FUZZ_CHECK(again.has_value());
  const Event& b = again.value();
  SLUICE_FUZZ_CHECK(a.id == b.id && a.source == b.source && a.type == b.type);
  SLUICE_FUZZ_CHECK(a.specversion == b.specversion && a.subject == b.subject);
  SLUICE_FUZZ_CHECK(a.time == b.time && a.dataschema == b.dataschema);
  SLUICE_FUZZ_CHECK(a.datacontenttype == b.datacontenttype);
  SLUICE_FUZZ_CHECK(a.data == b.data && a.key == b.key && a.headers == b.headers);
  auto ea = a.extensions, eb = b.extensions;
  std::sort(ea.begin(), ea.end());
  std::sort(eb.begin(), eb.end());
  SLUICE_FUZZ_CHECK(ea == eb);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const fuzz::Message m = fuzz::split_message(fuzz::as_text(data, size));
  round_trip(m, cloudevents::kHttpPrefix);
  round_trip(m, cloudevents::kKafkaPrefix);
  // The explicit Content-Type argument (HTTP passes the request's) wins over a header.
  auto ev = cloudevents::parse_binary(m.headers, cloudevents::kHttpPrefix, m.body, "text/plain");
  if (ev) SLUICE_FUZZ_CHECK(ev.value().datacontenttype == "text/plain");
  return 0;
}
