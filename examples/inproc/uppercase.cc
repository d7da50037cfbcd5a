// An inproc function (runtime `inproc`, ABI of workers/inproc_abi.h): returns the
// event data upper-cased as text/plain; an empty event is rejected (it can never
// succeed, so it goes straight to the dead-letter queue).
//
// Build: CMake target `sluice_example_uppercase` (libsluice_example_uppercase.so);
// run it with examples/inproc/uppercase.yaml.
#include <cctype>
#include <cstdlib>
#include <cstring>

#include "workers/inproc_abi.h"

namespace {

char* copy_string(const char* s) {
  size_t n = std::strlen(s) + 1;
  auto* out = static_cast<char*>(std::malloc(n));
  if (out) std::memcpy(out, s, n);
  return out;
}

}  // namespace

extern "C" {

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* /*function_name*/, void** state) {
  *state = nullptr;  // no state needed; a real function might open a model or a pool here
  return 0;
}

int sluice_invoke(void* /*state*/, const sluice_event* ev, sluice_result* res) {
  if (ev->data_len == 0) {
    res->status = SLUICE_REJECTED;
    res->error_message = copy_string("empty event: nothing to upper-case");
    return 0;
  }
  auto* out = static_cast<uint8_t*>(std::malloc(ev->data_len));
  if (!out) return 1;  // an `error`: retried
  for (size_t i = 0; i < ev->data_len; ++i)
    out[i] = static_cast<uint8_t>(std::toupper(ev->data[i]));
  res->status = SLUICE_OK;
  res->output = out;
  res->output_len = ev->data_len;
  res->content_type = copy_string("text/plain");
  return 0;
}

void sluice_free_result(void* /*state*/, sluice_result* res) {
  std::free(res->output);
  std::free(res->content_type);
  std::free(res->error_message);
}

void sluice_shutdown(void* /*state*/) {}

}  // extern "C"
