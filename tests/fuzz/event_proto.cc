// The protobuf Event envelope (core/event.h decode: the local queue's stored form
// and the inproc/stdio wire): any bytes decode or fail with Errc::corrupt; what
// decodes re-encodes to bytes that decode to the same event.
#include "core/event.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto ev = decode(fuzz::as_text(data, size));
  if (!ev) {
    SLUICE_FUZZ_CHECK(ev.error().code == Errc::corrupt);
    return 0;
  }
  const Event& a = ev.value();
  (void)a.byte_size();
  auto again = decode(encode(a));
  SLUICE_FUZZ_CHECK(again.has_value());
  const Event& b = again.value();
  SLUICE_FUZZ_CHECK(a.id == b.id && a.source == b.source && a.specversion == b.specversion);
  SLUICE_FUZZ_CHECK(a.type == b.type && a.datacontenttype == b.datacontenttype);
  SLUICE_FUZZ_CHECK(a.dataschema == b.dataschema && a.subject == b.subject && a.time == b.time);
  SLUICE_FUZZ_CHECK(a.extensions == b.extensions && a.data == b.data);
  SLUICE_FUZZ_CHECK(a.broker == b.broker && a.topic == b.topic && a.key == b.key);
  SLUICE_FUZZ_CHECK(a.partition == b.partition && a.offset == b.offset);
  SLUICE_FUZZ_CHECK(a.headers == b.headers && a.broker_timestamp_ms == b.broker_timestamp_ms);
  SLUICE_FUZZ_CHECK(a.attempt == b.attempt && a.first_attempt_time_ms == b.first_attempt_time_ms);
  return 0;
}
