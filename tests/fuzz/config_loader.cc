// The config loader (load_config_string): any text yields a config or a list of
// errors, each with a message; never an exception or a crash.
#include "config/config.h"
#include "tests/fuzz/fuzz_input.h"

using namespace sluice;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(fuzz::as_text(data, size));
  LoadResult r = load_config_string(yaml, "/nonexistent/sluice-fuzz");
  SLUICE_FUZZ_CHECK(r.config.has_value() == r.errors.empty());
  for (const ConfigError& e : r.errors) {
    SLUICE_FUZZ_CHECK(!e.message.empty());
    (void)e.to_string();
  }
  return 0;
}
