/* An inproc function for the crash-quarantine e2e tests (ABI of workers/inproc_abi.h):
 * an event whose data is "kill" crashes the whole process (SIGSEGV, as a bug in a
 * library would); any other event's data is appended, with a newline, to the file
 * named by $SLUICE_TEST_RECORD_FILE. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
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
  if (event->data_len == 4 && memcmp(event->data, "kill", 4) == 0) raise(SIGSEGV);
  char line[256];
  size_t n = event->data_len < sizeof line - 1 ? event->data_len : sizeof line - 1;
  memcpy(line, event->data, n);
  line[n++] = '\n';
  result->status = write(fd, line, n) == (ssize_t)n ? SLUICE_OK : SLUICE_ERROR;
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
