// The `exec` runtime: one process per event, classic CGI / watchdog style
// (PRODUCT.md section 4). The contract for function authors is in README.md:
// event data on stdin, result on stdout, exit 0 = success, exit 65 (EX_DATAERR) =
// rejected, other exits = error; CE_* / SLUICE_* variables describe the event.
//
// Lifecycle: construct -> start() -> invoke()* -> stop(grace) -> destroy (the
// destructor calls stop(0) when needed). Non-copyable.
//
// Threads and ownership:
//   - The runtime owns `io_threads` boost::asio::io_contexts (default 1), each run
//     by one thread, started in start() and joined in stop(); invocations are dealt
//     to them in turn. (One context shared by several threads made them contend for
//     its scheduler lock on every handler.) Every invocation runs on the one thread
//     of its context (no strand needed): its child process, pipes, timers and
//     buffers belong to that thread only. done callbacks are called there.
//   - invoke(), stats() and stop() may be called from any thread except the
//     runtime's own threads (stop() joins them; do not call it from a callback).
//   - `mu_` guards the lifecycle state and the table of live invocations (read by
//     stop() to kill what is left); it is never held while user callbacks run.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/log_limit.h"
#include "core/runtime.h"
#include "workers/environment.h"
#include "workers/pool_util.h"
#include "workers/process.h"

namespace sluice::workers {

struct ExecOptions {
  // After a timeout: SIGTERM to the process group, SIGKILL this much later.
  Millis kill_grace{2000};
  // After the process exited: how long its pipes may stay open (a background
  // process that left the process group can hold them) before sluice closes them.
  Millis pipe_drain_timeout{2000};
  // More stdout than this: the group is killed and the outcome is `error`.
  size_t max_output_bytes = size_t{16} << 20;
  // stderr logged per invocation: 64 KiB a minute; the rest is drained, dropped and
  // reported (pool_util.h).
  LogBudgetOptions stderr_budget{size_t{64} << 10, Millis{60000}};
  // Threads running the runtime's io_context.
  unsigned io_threads = 1;
};

class ExecRuntime final : public Runtime {
 public:
  // `base_dir` is the working directory of every process (the config file's
  // directory); relative commands such as ./handler.sh resolve against it.
  ExecRuntime(const FunctionConfig& fn, std::string base_dir, ExecOptions opts = {});
  ExecRuntime(const ExecRuntime&) = delete;
  ExecRuntime& operator=(const ExecRuntime&) = delete;
  ~ExecRuntime() override;

  std::string_view kind() const override { return "exec"; }
  // Checks the command and base_dir, sets SIGPIPE to SIG_IGN process-wide (a child
  // that exits without reading stdin must not kill sluice), starts the threads.
  Result<void> start() override;
  // Before start() or after stop(): `done` gets outcome `error` ("runtime not
  // started" / "runtime stopped") at once, on the calling thread; while stopping
  // it is posted to a runtime thread. Otherwise one process runs `ev`, and `done`
  // is called on a runtime thread once the process is reaped and its pipes drained.
  void invoke(const Event& ev, InvokeCallback done) override;
  // Stops taking work, waits up to `grace` for running invocations, then SIGKILLs
  // the remaining process groups; their callbacks get `crash` / "stopped". Every
  // callback has been called when stop() returns. Idempotent.
  void stop(std::chrono::milliseconds grace) override;
  // workers = processes alive now; inflight = invocations not reported yet (an
  // invocation leaves the count just before its callback runs).
  PoolStats stats() const override;
  // exec has no standing workers (one process per event, bounded by the dispatcher's
  // in-flight budget): the size is recorded for stats only.
  void resize(size_t workers) override { desired_ = workers; }

  const std::string& function() const { return name_; }

 private:
  class Invocation;  // exec_invocation.h; one per invoke()
  enum class State { created, running, stopping, stopped };

  void finished(uint64_t id);                // an invocation is about to call back
  void note_spawn(const Error* failure);     // logs a spawn failure once per cause
  bool wait_idle_for(std::chrono::milliseconds d);  // inflight == 0 within d

  // Immutable after construction; read by invocations on any runtime thread.
  const std::string name_;
  const std::vector<std::string> command_;
  const std::string base_dir_;
  const Millis timeout_;  // <= 0: no timeout
  const ProcessLimits limits_;
  const ExecOptions opts_;
  Environment env_;  // the clean base environment (PATH, HOME, fn env)
  // command_[0] looked up in PATH once, by start() (before the io threads run; read
  // only after): empty when it was not found then, and every spawn searches again.
  std::string exe_;

  using Guard = boost::asio::executor_work_guard<boost::asio::io_context::executor_type>;
  struct IoShard;  // exec_invocation.h
  IoShard& next_shard();        // the shard of the next invocation
  bool on_own_thread() const;  // the caller is one of the io threads
  void arm_watchdog(IoShard& shard);
  void expire_due(IoShard& shard);

  std::vector<std::unique_ptr<IoShard>> shards_;  // one per io thread
  std::vector<Guard> guards_;  // keep the contexts running until stop()
  std::atomic<size_t> next_io_{0};
  std::vector<std::thread> threads_;
  std::atomic<size_t> workers_{0};  // processes spawned and not yet reaped
  std::atomic<uint64_t> stderr_dropped_{0};  // bytes, for stats()
  std::atomic<size_t> desired_{0};  // the last resize()

  mutable std::mutex mu_;
  std::condition_variable idle_;  // signalled when `live_` becomes empty
  State state_ = State::created;
  uint64_t next_id_ = 0;
  std::unordered_map<uint64_t, std::weak_ptr<Invocation>> live_;

  LogLimit exhausted_log_;        // spawns delayed for want of fds/processes/memory
  std::mutex spawn_mu_;           // guards last_spawn_error_
  std::string last_spawn_error_;  // logged once until a spawn succeeds again
};

}  // namespace sluice::workers
