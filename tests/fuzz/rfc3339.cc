// RFC 3339 timestamps (parse_rfc3339: the CloudEvents `time` attribute and the
// dead-letter failure times; format_rfc3339: any unix-ms value, e.g. a time read
// from a retry header). Parsing accepts or refuses any text; a parsed time formats
// to text that parses back to the same instant (to the millisecond) when it lies in
// the years 0000-9999 UTC (an offset can move a valid local time outside them, and
// RFC 3339 has no form for such an instant).
#include <cstring>

#include "core/event.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr int64_t kYear0 = -62167219200000;       // 0000-01-01T00:00:00Z
  constexpr int64_t kYear10000 = 253402300800000;  // 10000-01-01T00:00:00Z
  if (auto t = parse_rfc3339(fuzz::as_text(data, size));
      t && t.value() >= kYear0 && t.value() < kYear10000) {
    const std::string text = format_rfc3339(t.value());
    auto back = parse_rfc3339(text);
    SLUICE_FUZZ_CHECK(back.has_value() && back.value() == t.value());
  }
  if (size >= 8) {
    int64_t ms = 0;
    std::memcpy(&ms, data, sizeof ms);
    const std::string text = format_rfc3339(ms);
    SLUICE_FUZZ_CHECK(!text.empty());
  }
  return 0;
}
