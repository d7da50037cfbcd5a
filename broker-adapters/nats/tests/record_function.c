/* An inproc function for the e2e tests (ABI of workers/inproc_abi.h): appends each
 * event's data to the file named by $SLUICE_TEST_RECORD_FILE (one write(2) with
 * O_APPEND per event), so the order the function saw events in can be checked. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "workers/inproc_abi.h"

static int fd = -1;

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* function_name, void** state) {
  (void)function_name;
  const char* path = getenv("SLUICE_TEST_RECORD_FILE");
  *state = 0;
  if (!path) return 1;
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return fd < 0;
}

int sluice_invoke(void* state, const sluice_event* event, sluice_result* result) {
  (void)state;
  ssize_t n = write(fd, event->data, event->data_len);
  result->status = n == (ssize_t)event->data_len ? SLUICE_OK : SLUICE_ERROR;
  return 0;
}

void sluice_free_result(void* state, sluice_result* result) {
  (void)state;
  (void)result;
}

void sluice_shutdown(void* state) {
  (void)state;
  if (fd >= 0) close(fd);
  fd = -1;
}
