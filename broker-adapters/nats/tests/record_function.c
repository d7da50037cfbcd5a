/* An inproc function for the e2e tests (ABI of workers/inproc_abi.h): appends each
 * event's data to the file named by $SLUICE_TEST_RECORD_FILE (one write(2) with
 * O_APPEND per event), so the order the function saw events in can be checked.
 * With $SLUICE_TEST_RECORD_STAMPS set it writes one line per event instead,
 * "<key or -> <data> <CLOCK_MONOTONIC ns>\n", so that a test can see when each
 * invocation started (tests/e2e/rate_limit_e2e_test.cc). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "workers/inproc_abi.h"

static int fd = -1;
static int stamps = 0;

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* function_name, void** state) {
  (void)function_name;
  const char* path = getenv("SLUICE_TEST_RECORD_FILE");
  *state = 0;
  if (!path) return 1;
  stamps = getenv("SLUICE_TEST_RECORD_STAMPS") != 0;
  fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  return fd < 0;
}

static ssize_t write_stamped(const sluice_event* event) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  char line[1024];
  const char* key = event->key[0] ? event->key : "-";
  const int data_len = event->data_len < 256 ? (int)event->data_len : 256;
  int n = snprintf(line, sizeof line, "%.256s %.*s %lld\n", key, data_len,
                   (const char*)event->data, (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec);
  if (n < 0 || n >= (int)sizeof line) n = (int)sizeof line - 1;
  return write(fd, line, (size_t)n) == (ssize_t)n ? 0 : -1;
}

int sluice_invoke(void* state, const sluice_event* event, sluice_result* result) {
  (void)state;
  if (stamps) {
    result->status = write_stamped(event) == 0 ? SLUICE_OK : SLUICE_ERROR;
    return 0;
  }
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
