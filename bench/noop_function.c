/* The no-op function of the broker benchmarks (bench/kafka, bench/nats, e2e.sh), for
 * the `inproc` runtime (workers/inproc_abi.h): every event succeeds with no output.
 * What is measured is sluice around it: consume, dispatch, invoke, commit or ack. */
#include "workers/inproc_abi.h"

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* function_name, void** state) {
  (void)function_name;
  *state = 0;
  return 0;
}

int sluice_invoke(void* state, const sluice_event* event, sluice_result* result) {
  (void)state;
  (void)event;
  result->status = SLUICE_OK;
  return 0;
}

void sluice_free_result(void* state, sluice_result* result) {
  (void)state;
  (void)result;
}

void sluice_shutdown(void* state) { (void)state; }
