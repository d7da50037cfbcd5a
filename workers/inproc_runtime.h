// The `inproc` runtime: a shared library with the C ABI of inproc_abi.h, loaded
// with dlopen() into sluice (PRODUCT.md section 4). The fastest path, for TRUSTED
// code only: the library shares sluice's memory, privileges and fate (no rlimits,
// no process isolation; a crash in it is a crash of sluice).
//
// Two ways to call it:
//   - pool (default): a pool of threads calls sluice_invoke(); its size is
//     `concurrency` at start and follows resize() (at least 1). An invocation's
//     timeout runs from invoke(); when it passes, `timeout` is reported and the late
//     result is discarded (the thread cannot be killed and stays busy until the call
//     returns). One watchdog thread serves every deadline (no timer or wake-up per
//     invocation).
//   - inline (`inline: true`): invoke() calls the library on the caller's thread
//     (the dispatcher's) and calls `done` before it returns: no hand-off at all. A
//     call that took longer than the timeout is reported as `timeout`.
//
// Lifecycle: construct -> start() (dlopen, version check, sluice_init, threads) ->
// invoke()* -> stop(grace) (sluice_shutdown, dlclose) -> destroy.
// Threads: `mu_` guards the queue, the deadlines, the lifecycle and the thread
// count; pool threads (or the caller, inline) call the library and the done
// callbacks; the watchdog reports timeouts.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/runtime.h"
#include "workers/inproc_abi.h"

namespace sluice::workers {

struct InprocOptions {
  size_t max_output_bytes = size_t{16} << 20;  // a larger output is an `error`
  Millis stop_join_timeout{10000};  // stop(): how long to wait for stuck calls
};

class InprocRuntime final : public Runtime {
 public:
  // fn.command = [path/to/lib.so] (absolute after config loading when it has a '/').
  InprocRuntime(const FunctionConfig& fn, InprocOptions opts = {});
  InprocRuntime(const InprocRuntime&) = delete;
  InprocRuntime& operator=(const InprocRuntime&) = delete;
  ~InprocRuntime() override;

  std::string_view kind() const override { return "inproc"; }
  // Pool threads answer as soon as the library returns; inline calls answer at once.
  bool quick_answers() const override { return !inline_; }
  Result<void> start() override;
  void invoke(const Event& ev, InvokeCallback done) override;
  void stop(std::chrono::milliseconds grace) override;
  PoolStats stats() const override;
  void resize(size_t workers) override;

 private:
  struct Job;
  enum class State { created, running, stopping, stopped };

  void pool_thread();
  void watchdog();
  void run(const std::shared_ptr<Job>& job);
  InvocationResult call(const Event& e);  // the library call and its result checks
  void invoke_inline(const Event& ev, InvokeCallback done);
  void spawn_threads_locked();
  void report(const std::shared_ptr<Job>& job, InvocationResult&& r);

  const std::string name_;
  const std::string library_;
  const Millis timeout_;
  const InprocOptions opts_;
  const bool inline_;

  void* handle_ = nullptr;
  void* state_ptr_ = nullptr;
  sluice_invoke_fn invoke_fn_ = nullptr;
  sluice_free_result_fn free_fn_ = nullptr;
  sluice_shutdown_fn shutdown_fn_ = nullptr;

  std::thread watchdog_thread_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // queue not empty, or the target shrank
  std::condition_variable idle_cv_;  // inflight_ reached 0, or a thread exited
  std::condition_variable watch_cv_; // a first deadline to watch, or stopping
  bool watch_idle_ = false;          // the watchdog waits with no deadline at all
  State state_ = State::created;
  std::deque<std::shared_ptr<Job>> queue_;
  std::list<std::shared_ptr<Job>> in_call_;  // inside sluice_invoke now
  std::list<std::thread> threads_;
  size_t target_;
  size_t alive_ = 0;    // pool threads running
  size_t busy_ = 0;     // threads inside sluice_invoke (pool threads, or inline callers)
  std::atomic<size_t> inflight_{0};
};

}  // namespace sluice::workers
