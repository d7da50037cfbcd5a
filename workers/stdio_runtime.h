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
//     lines as "[fn <name>] [worker <pid>] <line>" (both capped, see StdioOptions).
//   - A start failing for want of fds, processes or memory is retried with the
//     restart backoff; the waiting invocations keep waiting (their timeouts run).
//
// Lifecycle: construct -> start() -> invoke()* / resize()* -> stop(grace) -> destroy.
// Threads: one loop reads every worker's stdout/stderr, owns the timers and runs
// every done callback. By default that is an io thread of the runtime's own; with
// share_loop() (the dispatcher offers its loop) it is the caller's own loop, so an
// answer reaches the dispatcher with no thread hand-off at all: the worker writes,
// the dispatcher thread reads it and takes the result in, and writes the next Invoke.
// invoke() sends on the calling thread: it picks the worker and writes the Invoke
// frame straight into its stdin pipe (non-blocking; what does not fit is left to the
// loop), so a call costs no thread hand-off on the way in either.
// `state_mu_` guards the pool (workers, calls, write buffers); callbacks run with it
// released. The process pool (process_pool.h: spawn, restart, retire, resize, stop)
// runs its handlers inside it; its own lifecycle mutex comes after it. The own io thread polls for up to
// `StdioOptions::spin` after the last thing it handled before it sleeps, so the next
// answer of a busy pool does not pay a thread wake-up (a worker round trip is a few
// microseconds; waking a sleeping thread costs more on a VM); the dispatcher's loop
// does the same while quick_answers() invocations run.
// The loop is the pool's RuntimeLoop (runtime_loop.h): every handler given to it holds
// a Hold, stop() returns only once none is left, and a lent loop is held by shared_ptr.
// Timeouts: every call has the same timeout, so the calls in submission order are in
// deadline order; one timer watches the oldest (no timer per call).
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/system/error_code.hpp>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "config/config.h"
#include "core/runtime.h"
#include "workers/frame.h"
#include "workers/pool_util.h"
#include "workers/process_pool.h"

namespace sluice::workers {

struct StdioOptions {
  Millis kill_grace{2000};        // after Goodbye / an unanswered Cancel: then SIGKILL
  Millis restart_initial{100};    // restart backoff
  Millis restart_max{10000};
  // A Result's output, error message and emitted events together larger: `error`.
  size_t max_output_bytes = size_t{16} << 20;
  // stderr logged per worker: 1 MiB a minute, the rest dropped and reported.
  LogBudgetOptions stderr_budget{size_t{1} << 20, Millis{60000}};
  // Log frames logged per invocation (message bytes); the frame that crosses it is
  // cut and marked "… [truncated N bytes]", later ones dropped (one line reports
  // them when the invocation completes). Log frames of no invocation (id 0, or one
  // already answered) share a budget per worker of the size of `stderr_budget`.
  size_t max_log_bytes = size_t{64} << 10;
  size_t initial_workers = 0;     // 0: max(workers.min, 1)
  // How long the own io thread keeps polling after the last thing it handled (an
  // answer, a timer) before it sleeps; 0 = sleep at once. Costs CPU only around
  // activity. Unused on a lent loop (the dispatcher's polls: DispatcherOptions::spin).
  std::chrono::microseconds spin{50};
};

class StdioRuntime final : public Runtime, private PoolProtocol {
 public:
  StdioRuntime(const FunctionConfig& fn, std::string base_dir, StdioOptions opts = {});
  StdioRuntime(const StdioRuntime&) = delete;
  StdioRuntime& operator=(const StdioRuntime&) = delete;
  ~StdioRuntime() override;

  std::string_view kind() const override { return "stdio"; }
  bool quick_answers() const override { return true; }
  Result<void> start() override;
  void share_loop(std::shared_ptr<boost::asio::io_context> loop) override;
  void invoke(const Event& ev, InvokeCallback done) override;
  // Waits up to `grace` for running invocations, sends Goodbye to every worker,
  // SIGKILLs what has not exited `kill_grace` later; leftovers get `crash`
  // ("stopped"). Every callback has been called when it returns. Idempotent.
  void stop(std::chrono::milliseconds grace) override;
  PoolStats stats() const override;
  void resize(size_t workers) override;

  // Pids of the live worker processes (for tests and `sluice functions`).
  // The worker template's pid while it is ready, else -1 (tests).
  pid_t template_pid() const { return pool_.template_pid(); }
  std::vector<pid_t> worker_pids() const;

 private:
  struct Worker;
  using WorkerPtr = std::shared_ptr<Worker>;
  struct Call {
    Call(uint64_t id_, const Event& ev_, InvokeCallback done_)
        : id(id_), ev(&ev_), done(std::move(done_)) {}
    uint64_t id;
    const Event* ev;
    InvokeCallback done;          // empty once reported
    DeadlineLink<Call> deadline;  // in the deadline list while unreported
    // After a timeout: waits for the late answer.
    std::unique_ptr<boost::asio::steady_timer> grace;
    std::weak_ptr<Worker> worker;  // set once sent
    bool sent = false;
    bool timed_out = false;
    size_t log_bytes = 0;      // Log message bytes seen for it
    uint64_t log_dropped = 0;  // of those, not logged (over StdioOptions::max_log_bytes)
    uint32_t log_frames_dropped = 0;
  };
  struct Finished {
    InvokeCallback done;
    InvocationResult result;
  };

  RuntimeLoop::Hold hold() noexcept { return pool_.hold(); }
  boost::asio::io_context& io() { return pool_.io(); }

  // Runs `f` with state_mu_ held, then the callbacks it finished (io thread only).
  template <class F>
  void locked(F&& f);

  // PoolProtocol: the frame protocol (state_mu_ held, on the loop).
  void guarded(const std::function<void()>& f) override;
  void on_starting() override;
  void on_started() override { arm_watchdog(); }
  Result<PoolWorkerPtr> make_worker(Environment& env) override;
  void on_spawn(const PoolWorkerPtr& w) override;
  std::string not_ready(const PoolWorker& w) override;
  void on_exit(const PoolWorkerPtr& w, const std::string& reason) override;
  void goodbye(const PoolWorkerPtr& w) override;
  bool has_waiting() const override { return !waiting_.empty(); }
  void fail_waiting(Outcome o, const std::string& why) override;
  void shutdown() override;
  void teardown() override;

  // All below run with state_mu_ held; on the io thread unless marked "any thread".
  void submit(std::unique_ptr<Call> call);  // any thread
  void dispatch();                          // any thread
  void read_stdout(const WorkerPtr& w);
  void on_stdout(const WorkerPtr& w, boost::system::error_code ec, size_t n);
  void on_frame(const WorkerPtr& w, v1::Frame& f);
  void on_log(const WorkerPtr& w, const v1::Log& l);
  void send(const WorkerPtr& w, std::string_view bytes);  // any thread
  void flush_writes(const WorkerPtr& w);                  // any thread
  void arm_watchdog();
  void expire_due();
  void on_call_timeout(Call& c);
  void complete(uint64_t id, InvocationResult&& r);  // any thread; queues the callback

  const std::string name_;
  const Millis timeout_;
  const StdioOptions opts_;

  std::mutex state_mu_;  // guards the pool and everything down to wbuf_
  ProcessPool pool_;     // declared before everything registered with its loop
  std::unordered_map<uint64_t, std::unique_ptr<Call>> calls_;  // live and timed-out calls
  std::deque<uint64_t> waiting_;  // calls not yet sent to a worker
  DeadlineList<Call, &Call::deadline> deadlines_;  // unreported calls, oldest first
  std::vector<Finished> finished_;  // reported, callback not yet run
  v1::Frame scratch_;               // reused to encode Invoke frames
  std::string wbuf_;
  uint64_t next_call_ = 1;
  std::optional<boost::asio::steady_timer> watchdog_;  // fires when the oldest call is due
  bool watchdog_off_ = false;                          // stopped: not re-armed

  std::atomic<uint64_t> log_dropped_{0};  // bytes, for stats()
};

}  // namespace sluice::workers
