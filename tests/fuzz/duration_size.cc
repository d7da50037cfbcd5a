// The duration and size parsers of the config (parse_duration, parse_size): a
// value or an error for any text; a duration is never negative.
#include "config/config.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  if (auto d = parse_duration(text)) {
    SLUICE_FUZZ_CHECK(d.value().count() >= 0);
  } else {
    SLUICE_FUZZ_CHECK(!d.error().message.empty());
  }
  if (auto s = parse_size(text); !s) SLUICE_FUZZ_CHECK(!s.error().message.empty());
  return 0;
}
