// The `stdio` runtime: long-lived worker processes speaking the frame protocol of
// schemas/worker.proto (v1) on stdin/stdout (PRODUCT.md section 4).
//
// A pool of processes; each takes many invocations at once (up to the `max_inflight`
// its Hello announced), matched by id. An invocation goes to the ready worker with
// the fewest in flight; while none is ready it waits (its timeout runs).
//   - start-up: the worker must send Hello within `start_timeout`; a wrong protocol
//     version gets a Goodbye naming both versions, garbage or silence a clear error.
//     A worker that fails to start fails every waiting invocation with `error` (no
//     hang) and is started again with backoff.
//   - timeout: the invocation completes with `timeout` and a Cancel is sent; if the
//     worker does not answer it within `kill_grace`, the worker is killed (process
//     group) and restarted.
//   - crash (exit, signal, broken pipe, protocol error): every invocation the worker
//     held completes with `crash` — never success; the dispatcher retries them. The
//     worker is restarted with backoff (doubling from `restart_initial` to
//     `restart_max`, reset by the next answered invocation).
//   - Log frames go to sluice's log as "[fn <name>] [event <id>] <message>"; stderr
//     lines as "[fn <name>] [worker <pid>] <line>" (capped, see StdioOptions).
//
// Lifecycle: construct -> start() -> invoke()* / resize()* -> stop(grace) -> destroy.
// Threads: one io thread owns every worker, pipe, timer and the call table; invoke()
// and resize() post to it; done callbacks run on it. `mu_` guards only the lifecycle
// state; the counters read by stats() are atomics.
#pragma once

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/runtime.h"
#include "workers/environment.h"
#include "workers/frame.h"
#include "workers/pool_util.h"
#include "workers/process.h"

namespace sluice::workers {

struct StdioOptions {
  Millis kill_grace{2000};        // after Goodbye / an unanswered Cancel: then SIGKILL
  Millis restart_initial{100};    // restart backoff
  Millis restart_max{10000};
  size_t max_output_bytes = size_t{16} << 20;  // Result.output larger: `error`
  size_t max_stderr_bytes = size_t{1} << 20;   // stderr logged per worker life
  size_t initial_workers = 0;     // 0: max(workers.min, 1)
};

class StdioRuntime final : public Runtime {
 public:
  StdioRuntime(const FunctionConfig& fn, std::string base_dir, StdioOptions opts = {});
  StdioRuntime(const StdioRuntime&) = delete;
  StdioRuntime& operator=(const StdioRuntime&) = delete;
  ~StdioRuntime() override;

  std::string_view kind() const override { return "stdio"; }
  Result<void> start() override;
  void invoke(const Event& ev, InvokeCallback done) override;
  // Waits up to `grace` for running invocations, sends Goodbye to every worker,
  // SIGKILLs what has not exited `kill_grace` later; leftovers get `crash`
  // ("stopped"). Every callback has been called when it returns. Idempotent.
  void stop(std::chrono::milliseconds grace) override;
  PoolStats stats() const override;
  void resize(size_t workers) override;

  // Pids of the live worker processes (for tests and `sluice functions`).
  std::vector<pid_t> worker_pids() const;

 private:
  struct Worker;
  struct Call;
  using WorkerPtr = std::shared_ptr<Worker>;
  enum class State { created, running, stopping, stopped };

  // All below run on the io thread.
  void submit(std::unique_ptr<Call> call);
  void dispatch();
  void maintain();
  void spawn_worker();
  void read_stdout(const WorkerPtr& w);
  void read_stderr(const WorkerPtr& w);
  void on_frame(const WorkerPtr& w, v1::Frame& f);
  void send(const WorkerPtr& w, std::string bytes);
  void flush_writes(const WorkerPtr& w);
  void on_call_timeout(uint64_t id);
  void complete(uint64_t id, InvocationResult&& r);
  void fail_worker(const WorkerPtr& w, const std::string& why);  // kill; crash on exit
  void on_worker_exit(const WorkerPtr& w);
  void fail_waiting(Outcome o, const std::string& why);
  void retire(const WorkerPtr& w);
  void shutdown_workers();
  size_t live_workers() const;

  const std::string name_;
  const std::vector<std::string> command_;
  const std::string base_dir_;
  const Millis timeout_;
  const Millis start_timeout_;
  const ProcessLimits limits_;
  const StdioOptions opts_;
  Environment env_;

  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      guard_;
  std::thread thread_;

  // io thread only.
  std::vector<WorkerPtr> workers_;
  std::unordered_map<uint64_t, std::unique_ptr<Call>> calls_;  // live and timed-out calls
  std::deque<uint64_t> waiting_;  // calls not yet sent to a worker
  uint64_t next_call_ = 1;
  uint64_t next_worker_ = 1;
  size_t target_ = 1;
  RestartBackoff backoff_;
  boost::asio::steady_timer restart_timer_;
  bool restart_pending_ = false;
  std::string last_start_error_;

  std::atomic<size_t> alive_{0};     // processes spawned, not yet reaped
  std::atomic<size_t> inflight_{0};  // invocations not yet reported

  mutable std::mutex mu_;
  std::condition_variable cv_;  // inflight_ reaching 0, alive_ reaching 0
  State state_ = State::created;
  std::vector<pid_t> pids_;  // guarded by mu_, for worker_pids()
};

}  // namespace sluice::workers
