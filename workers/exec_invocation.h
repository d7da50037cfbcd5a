// One exec invocation: spawn, feed stdin, collect stdout, log stderr, enforce the
// timeout, reap, report. Internal to ExecRuntime.
//
// Lifecycle: created by ExecRuntime::invoke() (shared_ptr, because Asio handlers
// keep it alive while they are pending), start() posted to its io context, finish()
// calls the done callback exactly once when the process is reaped (or never
// spawned) and stdin/stdout/stderr are all closed; the object dies when the last
// handler holding it has run.
//
// Threads: everything below runs on the one thread of its io context (`ex_`);
// nothing is shared with other invocations. It reads the runtime's immutable settings and calls
// ExecRuntime::finished()/note_spawn(), which lock the runtime's own mutexes.
#pragma once

#include <array>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <memory>
#include <optional>
#include <string>

#include "workers/child_process.h"
#include "workers/exec_runtime.h"

namespace sluice::workers {

class ExecRuntime::Invocation : public std::enable_shared_from_this<Invocation> {
 public:
  using Executor = boost::asio::io_context::executor_type;  // one thread runs it

  Invocation(ExecRuntime& rt, uint64_t id, const Event& ev, InvokeCallback done);

  const Executor& executor() const { return ex_; }
  // Spawns and wires everything up. A spawn that fails for want of resources
  // (EMFILE, ENFILE, EAGAIN, ENOMEM) is tried again after a short backoff, for up to
  // the function's timeout: the invocation waits instead of failing.
  void start();
  void abort_stopped();  // the runtime is stopping: kill now, report crash "stopped"
  void on_timeout();     // the shard's watchdog: due now (unlinks it)
  // Last resort after the runtime's threads were joined with this still pending.
  void force_finish();

  DeadlineLink<Invocation> deadline_link;  // in its shard's deadline list while linked

 private:
  enum class Kill { none, timeout, stopped };

  void write_stdin();
  void read_stdout();
  void read_stderr();
  void on_stderr(std::string_view bytes);
  void link_deadline();    // joins the shard's deadline list (start order)
  void unlink_deadline();
  void on_exit(const ExitStatus& st);
  void maybe_finish();
  InvocationResult result();
  void finish(InvocationResult&& r);

  ExecRuntime& rt_;
  IoShard& shard_;
  const uint64_t id_;
  const Event& ev_;  // valid until done_ is called (Runtime contract)
  InvokeCallback done_;
  Executor ex_;
  // Before the spawn: the wait before trying it again; after a timeout: the SIGTERM grace.
  boost::asio::steady_timer deadline_;
  std::chrono::steady_clock::time_point first_spawn_{};  // the first try
  RestartBackoff spawn_backoff_{Millis{10}, Millis{500}};
  boost::asio::steady_timer drain_;     // pipes still open after exit
  std::unique_ptr<ChildProcess> child_;

  bool stdin_done_ = false, stdout_done_ = false, stderr_done_ = false;
  bool finished_ = false;
  Kill kill_ = Kill::none;
  bool sigkill_sent_ = false;

  std::string output_;           // stdout, up to max_output_bytes
  std::unique_ptr<char[]> chunk_;  // stdout is read into this, then appended to output_
  bool output_overflow_ = false;
  std::array<char, 4096> err_buf_{};
  std::optional<OutputLines> err_log_;  // made at the first stderr bytes
  std::string err_tail_;         // the last ~1 KiB of stderr, for the message
};

// One io thread: its context, and its invocations in start order, which is also
// deadline order (they share one timeout); one watchdog timer fires when the oldest
// is due, instead of a timer armed and cancelled per invocation. Touched on its own
// thread only.
struct ExecRuntime::IoShard {
  boost::asio::io_context io{1};
  boost::asio::steady_timer watchdog{io};
  DeadlineList<Invocation, &Invocation::deadline_link> deadlines;
  bool off = false;  // stopping: not re-armed
};

}  // namespace sluice::workers
