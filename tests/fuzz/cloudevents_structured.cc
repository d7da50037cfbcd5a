// CloudEvents structured mode (application/cloudevents+json): any bytes parse or
// fail with an error value; an event that parses survives sluice's own encoding
// (to_structured) with the same attributes, extensions and data.
#include <algorithm>

#include "core/cloudevents.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ev = cloudevents::parse_structured(fuzz::as_text(data, size));
  if (!ev) return 0;
  const Event& a = ev.value();
  auto again = cloudevents::parse_structured(cloudevents::to_structured(a));
  SLUICE_FUZZ_CHECK(again.has_value());
  const Event& b = again.value();
  SLUICE_FUZZ_CHECK(a.id == b.id && a.source == b.source && a.type == b.type);
  SLUICE_FUZZ_CHECK(a.specversion == b.specversion && a.subject == b.subject);
  SLUICE_FUZZ_CHECK(a.time == b.time && a.dataschema == b.dataschema);
  SLUICE_FUZZ_CHECK(a.datacontenttype == b.datacontenttype);
  SLUICE_FUZZ_CHECK(a.data == b.data);
  SLUICE_FUZZ_CHECK(a.key == b.key);
  auto ea = a.extensions, eb = b.extensions;
  std::sort(ea.begin(), ea.end());
  std::sort(eb.begin(), eb.end());
  SLUICE_FUZZ_CHECK(ea == eb);
  return 0;
}
