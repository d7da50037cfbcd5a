/* The function of the engine scaling benchmark (engine_scaling.sh), for the `inproc`
 * runtime on its thread pool (workers/inproc_abi.h; NOT `inline: true`): every event
 * sleeps SLEEP_MS (5) milliseconds and succeeds with no output. Sleeping, not
 * spinning: a pool of 64 such threads waits in parallel on a 2-core machine, so what
 * bounds the drain is the number of workers the pool has, as with I/O-bound work.
 *
 * Environment of the sluice process (read at sluice_init):
 *   SCALING_SLEEP_MS    milliseconds per event (default 5)
 *   SCALING_STAMP_FILE  when set, one line "<unix ms> <data>" is appended to it for
 *                       every event whose data starts with "probe" (the backlog
 *                       reaction probes of engine_scaling.sh), and "first <unix ms>"
 *                       for the first event this process runs.
 * Times are CLOCK_REALTIME, so the script can compare them with its own clock. */
#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workers/inproc_abi.h"

static long g_sleep_ms = 5;
static const char* g_stamp_file = NULL;
static atomic_int g_first_done = 0;

static long long now_unix_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void stamp(const char* what, long long at) {
  FILE* f = fopen(g_stamp_file, "a");
  if (!f) return;
  fprintf(f, "%s %lld\n", what, at);
  fclose(f);
}

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* function_name, void** state) {
  (void)function_name;
  const char* ms = getenv("SCALING_SLEEP_MS");
  if (ms && *ms) g_sleep_ms = atol(ms);
  if (g_sleep_ms < 0) g_sleep_ms = 0;
  const char* f = getenv("SCALING_STAMP_FILE");
  g_stamp_file = (f && *f) ? f : NULL;
  *state = 0;
  return 0;
}

int sluice_invoke(void* state, const sluice_event* event, sluice_result* result) {
  (void)state;
  if (g_stamp_file) {
    long long at = now_unix_ms();
    int expected = 0;
    if (atomic_compare_exchange_strong(&g_first_done, &expected, 1)) stamp("first", at);
    if (event->data_len >= 5 && memcmp(event->data, "probe", 5) == 0) stamp("probe", at);
  }
  if (g_sleep_ms > 0) {
    struct timespec ts = {g_sleep_ms / 1000, (g_sleep_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
  }
  result->status = SLUICE_OK;
  return 0;
}

void sluice_free_result(void* state, sluice_result* result) {
  (void)state;
  (void)result;
}

void sluice_shutdown(void* state) { (void)state; }
