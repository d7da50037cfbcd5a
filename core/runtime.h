// How user code runs: the Runtime interface the dispatcher calls, and the outcome
// of one invocation (STYLE.md "three outcomes, one owner").
//
// A Runtime is one function's worker pool (exec, stdio, http, inproc). It never
// retries and never dead-letters: it reports what happened, and the dispatcher
// decides.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/event.h"
#include "core/result.h"

namespace boost::asio {
class io_context;
}

namespace sluice {

enum class Outcome : uint8_t {
  success,
  error,     // the function reported failure (non-zero exit, error frame, HTTP 5xx)
  timeout,   // it ran past its timeout and was killed
  crash,     // the worker died (killed by a signal, broken pipe)
  rejected,  // the function refused the event as permanently bad
};
const char* to_string(Outcome o) noexcept;  // "success", "error", ...
// The dead-letter error class of a final outcome: "error"|"timeout"|"crash"|"rejected".
const char* dead_letter_reason(Outcome o) noexcept;

// What the dispatcher does with an outcome.
enum class Verdict : uint8_t { ok, retry, fatal };
constexpr Verdict classify(Outcome o) noexcept {
  switch (o) {
    case Outcome::success: return Verdict::ok;
    case Outcome::rejected: return Verdict::fatal;
    default: return Verdict::retry;
  }
}

struct InvocationResult {
  Outcome outcome = Outcome::success;
  std::string output;        // the result bytes (stdout, Result.output, body)
  std::string content_type;  // of `output`, if the function said
  std::string message;       // error text, one line (stderr tail, exit status, ...)
  std::optional<std::chrono::milliseconds> retry_after;  // a hint from the function
  std::vector<Event> emitted;                            // fan-out events (stdio)
};

// Called exactly once per invoke(), on a runtime thread; must not block.
using InvokeCallback = std::function<void(InvocationResult&&)>;

struct PoolStats {
  size_t workers = 0;   // processes / slots alive now
  size_t inflight = 0;  // invocations running now
  // Totals since start(), for metrics: bytes a function wrote to stderr (or an http
  // server's stdout) and in stdio Log frames that were over their caps and not
  // logged.
  uint64_t stderr_dropped_bytes = 0;
  uint64_t log_dropped_bytes = 0;
};

class Runtime {
 public:
  virtual ~Runtime() = default;
  virtual std::string_view kind() const = 0;  // "exec", "stdio", "http", "inproc"
  // True when an answer usually comes back within microseconds of invoke() on another
  // thread (a long-lived worker on a pipe, a thread pool calling a library): while
  // such invocations run, the dispatcher polls for their results for a short while
  // instead of sleeping (DispatcherOptions::spin). False: it sleeps at once.
  virtual bool quick_answers() const { return false; }
  // The event loop of the thread that calls invoke() (the dispatcher's). A runtime
  // whose answers come back on descriptors (pipes) may read them on that loop
  // instead of on a thread of its own: an answer then reaches its caller without a
  // thread hand-off, and `done` runs on the loop's thread. Offered before start();
  // later offers are ignored, and a runtime that cannot use it ignores it. The
  // lender keeps running the loop from before start() until after stop() has
  // returned, and does not call stop() on the loop's thread.
  virtual void share_loop(std::shared_ptr<boost::asio::io_context> loop) {}
  virtual Result<void> start() = 0;
  // Runs the function on `ev`. `ev` stays valid until `done` has been called.
  // The timeout comes from the function's config.
  virtual void invoke(const Event& ev, InvokeCallback done) = 0;
  // Stops taking work; waits up to `grace` for running invocations, then kills.
  virtual void stop(std::chrono::milliseconds grace) = 0;
  virtual PoolStats stats() const = 0;
  // The live pool size, set by the autoscaler from any thread. Growing starts
  // workers; shrinking retires idle ones and lets the running invocations of the
  // others finish first (none is cut short). 0 = scale to zero: the next invoke()
  // starts one worker again. A no-op for runtimes without standing workers.
  virtual void resize(size_t workers) {}
};

}  // namespace sluice
