// The pool of long-lived worker processes behind the stdio and http runtimes: spawn,
// readiness deadline, restart backoff, retire, resize, stop, the pid list and the
// lifecycle state. What the processes speak is not its business: a PoolProtocol
// (StdioRuntime: frames on stdin/stdout; HttpRuntime: HTTP on $PORT) makes each worker,
// says when one is ready, dispatches the invocations and fails what a dead worker held.
//
//   - start(): the checks every process runtime makes (pool_util.h), then
//     max(workers.min, 1) workers are spawned on the loop; resize(n) spawns or retires
//     (a starting worker first, else the ready one with the least load).
//   - a worker not ready within `start_timeout` is killed; one that exits unasked is
//     restarted after the backoff (doubling from `restart_initial` to `restart_max`,
//     reset by answered()); when it never got ready and none is, every waiting
//     invocation fails with `error` ("worker failed to start: ...").
//   - a spawn failing for want of fds, processes or memory is retried after the
//     backoff and the waiting invocations keep waiting; any other spawn error fails
//     them (logged once until it changes).
//   - retire: the worker takes no new invocation; once it holds none the protocol says
//     goodbye and it is SIGKILLed `kill_grace` later if still there.
//   - every worker's stderr is logged line by line within `stderr_budget`.
//   - with PoolOptions::worker_template the pool keeps a WorkerTemplate (worker_template.h) and forks new workers from it while
//     it is ready, else spawns; a template that dies is restarted after the backoff,
//     one that turns out unsupported is not tried again. It is no worker: not in the
//     pid list, not counted in stats().
//   - stop(grace): waits up to `grace` for invocations in flight, has the protocol fail
//     the rest with `crash` ("stopped"), retires every worker (SIGKILL for one still
//     holding calls), waits for them to exit, then releases everything on the loop.
//
// Threads: everything runs on one RuntimeLoop (runtime_loop.h: an io thread of its
// own, or the dispatcher's loop, lent by share_loop()). Every handler the pool gives
// the loop holds a Hold and runs its work inside PoolProtocol::guarded(), the
// protocol's exclusive section (stdio: its state mutex; http: nothing, its state is
// the loop's). Methods marked "guarded" must be called inside it; maintain() may be
// called inside it from any thread (it posts what must run on the loop). `mu_` guards
// the lifecycle state and the pid list (lock order: the protocol's lock, then mu_);
// stats() reads atomics.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/log_limit.h"
#include "core/result.h"
#include "core/runtime.h"
#include "workers/child_process.h"
#include "workers/environment.h"
#include "workers/pool_util.h"
#include "workers/process.h"
#include "workers/runtime_loop.h"
#include "workers/worker_template.h"

namespace sluice::workers {

// One worker process. A protocol derives its own worker (its pipes' or connections'
// state) from this. Held by the pool's list and by the handlers pending on it;
// touched on the pool's loop only (inside guarded()).
struct PoolWorker {
  enum class St { starting, ready, retiring, dying };

  explicit PoolWorker(boost::asio::io_context& io) : timer(io) {}
  PoolWorker(const PoolWorker&) = delete;
  PoolWorker& operator=(const PoolWorker&) = delete;
  virtual ~PoolWorker() = default;

  // The invocations it is working on (retire picks the least loaded; logged when it
  // is killed), and whether it still holds any (a retired worker is let go at none).
  virtual size_t load() const = 0;
  virtual bool holds_calls() const = 0;

  std::unique_ptr<ChildProcess> child;  // set by the pool once spawned
  St st = St::starting;
  bool retired = false;       // stopped on purpose (resize, stop): no restart
  bool ever_ready = false;    // its handshake succeeded
  bool exited = false;        // reaped
  bool goodbye_sent = false;  // a goodbye is on its way: a failure kills kill_grace later
  int open_pipes = 1;         // output pipes not yet at EOF (stderr; http adds stdout)
  boost::asio::steady_timer timer;  // start deadline, then the kill grace / last words
  std::string prefix;               // "[fn <name>] [worker <pid>]"
  std::string death;                // why sluice killed it
  std::optional<OutputLines> err;   // its stderr, logged
  std::array<char, 4096> ebuf{};
};
using PoolWorkerPtr = std::shared_ptr<PoolWorker>;

// What a runtime implements for the pool: its wire protocol. Called on the pool's loop
// inside guarded(), except guarded() itself and on_starting().
class PoolProtocol {
 public:
  virtual ~PoolProtocol() = default;
  // Runs `f` in the protocol's exclusive section; finished callbacks run after it.
  virtual void guarded(const std::function<void()>& f) = 0;
  // In start(), before the loop runs anything: make the loop's timers.
  virtual void on_starting() {}
  // The first handler on the loop.
  virtual void on_started() {}
  // A new worker, before its process is spawned; may add to `env` (PORT). An error
  // fails the start (retriable: for want of fds, processes or memory).
  virtual Result<PoolWorkerPtr> make_worker(Environment& env) = 0;
  // Spawned (child and prefix set, stderr read by the pool): read its output, begin
  // the handshake or the readiness polling; call ProcessPool::ready() when it is.
  virtual void on_spawn(const PoolWorkerPtr& w) = 0;
  // Why a worker still starting after `start_timeout` failed its start.
  virtual std::string not_ready(const PoolWorker& w) = 0;
  // Reaped: fail what it held with `crash` ("worker crashed: " + reason), close its
  // channels.
  virtual void on_exit(const PoolWorkerPtr& w, const std::string& reason) = 0;
  // Retired: it takes no new invocation (called at once)...
  virtual void on_retire(const PoolWorkerPtr&) {}
  // ...and, once it holds none, is asked to go (the pool SIGKILLs it kill_grace later).
  virtual void goodbye(const PoolWorkerPtr& w) = 0;
  virtual bool has_waiting() const = 0;  // invocations waiting for a worker
  virtual void fail_waiting(Outcome o, const std::string& why) = 0;
  // stop(): report every invocation, held or waiting, as `crash` ("stopped").
  virtual void shutdown() = 0;
  // stop(), last: release the protocol's timers and sockets (workers go after it).
  virtual void teardown() = 0;
};

struct PoolOptions {
  Millis kill_grace{2000};
  Millis restart_initial{100};
  Millis restart_max{10000};
  LogBudgetOptions stderr_budget{size_t{1} << 20, Millis{60000}};
  size_t initial_workers = 0;  // 0: max(workers.min, 1)
  // The own io thread polls this long after its last event before it sleeps (0: not).
  std::chrono::microseconds spin{0};
  // How long a fork request to the worker template may block the loop before the
  // template is killed and the worker spawned instead.
  Millis template_fork_timeout{100};
  // Keep a worker template (started with the pool, before any worker) while running.
  bool worker_template = false;
};

class ProcessPool {
 public:
  // `kind` ("stdio", "http") names the runtime in errors. Every worker gets the
  // function's clean environment plus SLUICE_FUNCTION (and what make_worker adds).
  ProcessPool(std::string kind, const FunctionConfig& fn, std::string base_dir, PoolOptions opts,
              PoolProtocol& protocol);
  ProcessPool(const ProcessPool&) = delete;
  ProcessPool& operator=(const ProcessPool&) = delete;
  ~ProcessPool();  // after stop()

  // The Runtime calls, from the runtime's owner.
  void share_loop(std::shared_ptr<boost::asio::io_context> loop);
  Result<void> start();
  // Blocks; not on the loop's thread (std::logic_error). Every invocation has been
  // reported when it returns. Idempotent.
  void stop(Millis grace);
  void resize(size_t workers);  // posts
  PoolStats stats() const;
  std::vector<pid_t> pids() const;

  // invoke(), any thread: nullptr when running (the call is counted in flight until
  // call_done()); else the call is refused: "" when the refusal was posted to the loop
  // (stopping), or the refusal text for the caller to report with its locks released.
  const char* admit(InvokeCallback& done);
  void call_done();  // a call was reported: out of the in-flight count

  RuntimeLoop::Hold hold() noexcept { return loop_.hold(); }
  boost::asio::io_context& io() { return loop_.io(); }
  bool on_loop_thread() { return loop_.on_loop_thread(); }
  const std::string& name() const { return name_; }
  Millis start_timeout() const { return start_timeout_; }
  size_t inflight() const { return inflight_.load(); }
  std::atomic<uint64_t>* output_dropped() { return &output_dropped_; }

  // Guarded, on the loop.
  const std::vector<PoolWorkerPtr>& workers() const { return workers_; }
  void ready(PoolWorker& w);            // its handshake succeeded
  void answered() { backoff_.reset(); }  // a worker answered: restarts start quick again
  void fail_worker(const PoolWorkerPtr& w, const std::string& why);  // kill; restart on exit
  void retire(const PoolWorkerPtr& w);
  // The worker template's pid while it is ready, else -1 (any thread; tests).
  pid_t template_pid() const { return template_pid_.load(); }
  // Guarded, any thread: spawns up to the target (one worker at least while
  // invocations wait), unless a restart is pending.
  void maintain();

 private:
  enum class State { created, running, stopping, stopped };

  void spawn_worker();
  Result<std::unique_ptr<ChildProcess>> spawn_child(const Environment& env);
  void start_template();
  void on_template_change();
  void read_stderr(const PoolWorkerPtr& w);
  void on_worker_exit(const PoolWorkerPtr& w);
  void schedule_restart();
  void kill_later(const PoolWorkerPtr& w);  // SIGKILL kill_grace from now
  void apply_resize(size_t workers);
  void shutdown_workers();
  size_t live_workers() const;

  const std::string kind_;
  const std::string name_;
  const std::vector<std::string> command_;
  const std::string base_dir_;
  const Millis start_timeout_;
  const ProcessLimits limits_;
  const PoolOptions opts_;
  const Environment env_;
  PoolProtocol& proto_;

  RuntimeLoop loop_;  // declared before everything registered with it

  // Guarded.
  std::vector<PoolWorkerPtr> workers_;
  size_t target_ = 1;
  RestartBackoff backoff_;
  std::optional<boost::asio::steady_timer> restart_timer_;  // made in start()
  bool restart_pending_ = false;
  bool maintain_posted_ = false;
  std::string last_start_error_;
  LogLimit exhausted_log_;  // starts delayed for want of fds/processes/memory
  std::unique_ptr<WorkerTemplate> template_;
  std::optional<boost::asio::steady_timer> template_timer_;  // made in start()
  RestartBackoff template_backoff_;
  std::atomic<pid_t> template_pid_{-1};

  std::atomic<size_t> alive_{0};     // processes spawned, not yet reaped
  std::atomic<size_t> inflight_{0};  // invocations not yet reported
  std::atomic<uint64_t> output_dropped_{0};  // bytes of output not logged, for stats()

  mutable std::mutex mu_;
  std::condition_variable cv_;  // inflight_ reaching 0, alive_ reaching 0, stopped
  State state_ = State::created;
  std::vector<pid_t> pids_;  // guarded by mu_
};

}  // namespace sluice::workers
