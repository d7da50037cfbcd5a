// ${VAR} expansion of config values (config/vars.h: expand_vars): a value or a one-line
// error for any text, never longer than the limit, and text without '$' unchanged.
#include "config/vars.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  // A small fixed environment: A is set, B is set and empty, others are unset.
  auto env = [](std::string_view name) -> std::optional<std::string> {
    if (name == "A") return std::string("value-of-a");
    if (name == "B") return std::string();
    return std::nullopt;
  };
  auto r = config::expand_vars(text, env);
  if (r) {
    SLUICE_FUZZ_CHECK(r.value().size() <= config::kMaxExpanded);
    if (text.find('$') == std::string_view::npos) SLUICE_FUZZ_CHECK(r.value() == text);
  } else {
    SLUICE_FUZZ_CHECK(!r.error().message.empty());
    SLUICE_FUZZ_CHECK(r.error().message.find('\n') == std::string::npos ||
                      text.find('\n') != std::string_view::npos);
  }
  return 0;
}
