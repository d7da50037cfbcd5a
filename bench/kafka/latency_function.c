/* The latency function of the Kafka benchmark (kafka_latency.sh), for the `inproc`
 * runtime (workers/inproc_abi.h). Each record's value starts with the time it was
 * produced, in microseconds since the epoch (CLOCK_REALTIME, decimal text, written by
 * `bench_kafka paced`); the function adds now - that time to a histogram of 10 us
 * buckets. Records without a time (the warm-up) are not counted. At shutdown the
 * percentiles go to the file named by SLUICE_BENCH_LATENCY_OUT, as one line:
 *   count=N p50_us=X p99_us=Y p999_us=Z max_us=M
 * Thread-safe (atomic counters), so it also works on the inproc thread pool. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "workers/inproc_abi.h"

#define BUCKET_US 10
#define BUCKETS 100001 /* up to 1 s; the last bucket collects everything above */

static _Atomic unsigned long counts[BUCKETS];
static _Atomic unsigned long seen;
static _Atomic long long max_us;

static long long now_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  return (long long)t.tv_sec * 1000000LL + t.tv_nsec / 1000;
}

uint32_t sluice_abi_version(void) { return SLUICE_ABI_VERSION; }

int sluice_init(const char* function_name, void** state) {
  (void)function_name;
  *state = 0;
  return 0;
}

int sluice_invoke(void* state, const sluice_event* event, sluice_result* result) {
  (void)state;
  long long ts = 0;
  for (size_t i = 0; i < event->data_len && event->data[i] >= '0' && event->data[i] <= '9'; ++i)
    ts = ts * 10 + (event->data[i] - '0');
  if (ts > 0) {
    long long d = now_us() - ts;
    if (d < 0) d = 0;
    size_t b = (size_t)(d / BUCKET_US);
    if (b >= BUCKETS) b = BUCKETS - 1;
    atomic_fetch_add(&counts[b], 1);
    atomic_fetch_add(&seen, 1);
    long long m = atomic_load(&max_us);
    while (d > m && !atomic_compare_exchange_weak(&max_us, &m, d)) {
    }
  }
  result->status = SLUICE_OK;
  return 0;
}

void sluice_free_result(void* state, sluice_result* result) {
  (void)state;
  (void)result;
}

static long long percentile(unsigned long total, double p) {
  unsigned long want = (unsigned long)(p * (double)total), run = 0;
  if (want >= total) want = total - 1;
  for (size_t b = 0; b < BUCKETS; ++b) {
    run += atomic_load(&counts[b]);
    if (run > want) return (long long)((b + 1) * BUCKET_US); /* upper edge of the bucket */
  }
  return -1;
}

void sluice_shutdown(void* state) {
  (void)state;
  const char* out = getenv("SLUICE_BENCH_LATENCY_OUT");
  if (!out) return;
  FILE* f = fopen(out, "w");
  if (!f) return;
  unsigned long total = atomic_load(&seen);
  if (total == 0) {
    fprintf(f, "count=0\n");
  } else {
    fprintf(f, "count=%lu p50_us=%lld p99_us=%lld p999_us=%lld max_us=%lld\n", total,
            percentile(total, 0.50), percentile(total, 0.99), percentile(total, 0.999),
            (long long)atomic_load(&max_us));
  }
  fclose(f);
}
