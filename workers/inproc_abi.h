/* The sluice inproc function ABI, version 1 (runtime `inproc`).
 *
 * An inproc function is a shared library loaded into the sluice process with
 * dlopen(). It runs with sluice's own privileges and memory: a crash, a hang that
 * ignores its timeout or a memory bug takes sluice down with it. FOR TRUSTED CODE
 * ONLY; run anything else with the exec, stdio or http runtime.
 *
 * The library exports these C symbols:
 *
 *   uint32_t sluice_abi_version(void);
 *       Returns SLUICE_ABI_VERSION it was built against. sluice refuses a library
 *       whose version it does not speak (clear error at start-up).
 *
 *   int sluice_init(const char* function_name, void** state);
 *       Called once at start-up, before any invoke. Set *state to anything (it is
 *       passed back to every other call). Return 0 on success; non-zero fails the
 *       runtime's start, and no other function is called (free what you
 *       allocated before returning it; the library is unloaded).
 *
 *   int sluice_invoke(void* state, const sluice_event* event, sluice_result* result);
 *       Runs the function on one event. Called from several sluice threads at once
 *       (up to the pool size): it must be thread-safe. `event` and its strings
 *       stay valid only during the call. Fill `result` (zeroed by sluice) and
 *       return 0; a non-zero return is an `error` with no output.
 *       A C++ exception must not escape (sluice reports it as `crash`, but no
 *       guarantee holds for what the library left half-done).
 *
 *   void sluice_free_result(void* state, sluice_result* result);
 *       Frees what sluice_invoke allocated in `result` (output, content_type,
 *       error_message). Called once per sluice_invoke that returned 0, after
 *       sluice has copied the result.
 *
 *   void sluice_shutdown(void* state);
 *       Called once at stop, after the last invoke returned.
 *
 * Timeouts: a thread cannot be killed safely. When an invocation passes the
 * function's timeout, sluice reports `timeout` and discards the late result; the
 * thread stays busy until sluice_invoke returns.
 */
#ifndef SLUICE_INPROC_ABI_H
#define SLUICE_INPROC_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SLUICE_ABI_VERSION 1u

/* Strings are NUL-terminated UTF-8 ("" when absent); data is bytes. */
typedef struct sluice_event {
  const char* id;
  const char* source;
  const char* type;
  const char* subject;
  const char* time;
  const char* datacontenttype;
  const char* topic;
  const char* key;
  const uint8_t* data;
  size_t data_len;
  uint32_t attempt; /* 0 on the first delivery */
} sluice_event;

typedef enum sluice_status {
  SLUICE_OK = 0,
  SLUICE_ERROR = 1,    /* retried under the function's policy */
  SLUICE_REJECTED = 2  /* permanently bad: straight to the dead-letter queue */
} sluice_status;

typedef struct sluice_result {
  int32_t status;        /* a sluice_status */
  uint8_t* output;       /* the result bytes, may be NULL when output_len is 0 */
  size_t output_len;
  char* content_type;    /* NUL-terminated, or NULL */
  char* error_message;   /* NUL-terminated, or NULL */
  uint32_t retry_after_ms; /* a hint for the next attempt's delay; 0 = policy */
} sluice_result;

typedef uint32_t (*sluice_abi_version_fn)(void);
typedef int (*sluice_init_fn)(const char* function_name, void** state);
typedef int (*sluice_invoke_fn)(void* state, const sluice_event* event, sluice_result* result);
typedef void (*sluice_free_result_fn)(void* state, sluice_result* result);
typedef void (*sluice_shutdown_fn)(void* state);

#ifdef __cplusplus
}
#endif

#endif /* SLUICE_INPROC_ABI_H */
