// The `http` runtime (the of-watchdog idea; PRODUCT.md section 4): long-lived
// worker processes that serve HTTP on a port sluice gives them in $PORT.
//
//   - start-up: sluice picks a free loopback port, starts the command with PORT set,
//     and GETs `ready_path` (default /healthz) every 50 ms until it answers 2xx;
//     not ready within `start_timeout`, or exited: the start failed, every waiting
//     invocation fails with `error` (no hang) and the start is retried with backoff.
//   - each event is POSTed to `/` in CloudEvents binary mode (ce-* headers,
//     Content-Type = datacontenttype, body = data) over keep-alive connections
//     (Boost.Beast), one request per connection at a time, connections reused.
//   - response: 2xx = `success` (body = output, Content-Type = content_type);
//     429 / 503 = `error` with InvocationResult::retry_after from Retry-After
//     (seconds or an HTTP date) — back pressure, the dispatcher retries later;
//     any other status = `error` ("HTTP 500: <body>"); a body over
//     `max_output_bytes` = `error`.
//   - connection refused / reset / not HTTP: `crash`; the process is killed (its
//     whole group) and restarted with backoff; every invocation it held gets `crash`.
//     (A reused keep-alive connection that fails before any response byte is retried
//     once on a fresh connection: the server may have closed it while idle. A new
//     connection that cannot be opened for want of fds, ports or memory is not the
//     server's fault: the invocation goes back to the queue for 50 ms.)
//   - timeout: the connection is closed and the invocation gets `timeout`.
//   - stdout and stderr of the process are logged line by line (capped).
//
// Lifecycle and threads as StdioRuntime: one loop owns everything (an io thread of its
// own, or the dispatcher's loop when lent: share_loop(), see runtime_loop.h); invoke()
// and resize() post to it; `mu_` guards the lifecycle; stats() reads atomics.
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
#include "core/log_limit.h"
#include "core/runtime.h"
#include "workers/environment.h"
#include "workers/pool_util.h"
#include "workers/process.h"
#include "workers/runtime_loop.h"

namespace sluice::workers {

struct HttpOptions {
  Millis kill_grace{2000};      // retire: SIGTERM, then SIGKILL this much later
  Millis restart_initial{100};  // restart backoff
  Millis restart_max{10000};
  Millis ready_poll{50};
  size_t max_output_bytes = size_t{16} << 20;
  // stdout and stderr logged per worker, each: 1 MiB a minute, the rest dropped
  // and reported (pool_util.h).
  LogBudgetOptions output_budget{size_t{1} << 20, Millis{60000}};
  size_t initial_workers = 0;              // 0: max(workers.min, 1)
  std::string path = "/";                  // where events are POSTed
};

// Retry-After: delta-seconds or an HTTP date (RFC 9110 section 10.2.3); nullopt when
// unparsable. A date in the past gives 0.
std::optional<Millis> parse_retry_after(std::string_view value, int64_t now_unix_ms);

class HttpRuntime final : public Runtime {
 public:
  HttpRuntime(const FunctionConfig& fn, std::string base_dir, HttpOptions opts = {});
  HttpRuntime(const HttpRuntime&) = delete;
  HttpRuntime& operator=(const HttpRuntime&) = delete;
  ~HttpRuntime() override;

  std::string_view kind() const override { return "http"; }
  Result<void> start() override;
  void share_loop(std::shared_ptr<boost::asio::io_context> loop) override;
  void invoke(const Event& ev, InvokeCallback done) override;
  void stop(std::chrono::milliseconds grace) override;
  PoolStats stats() const override;
  void resize(size_t workers) override;

  std::vector<pid_t> worker_pids() const;

 private:
  struct Worker;
  struct Conn;
  struct Call;
  using WorkerPtr = std::shared_ptr<Worker>;
  using CallPtr = std::shared_ptr<Call>;
  enum class State { created, running, stopping, stopped };

  RuntimeLoop::Hold hold() noexcept { return loop_.hold(); }
  boost::asio::io_context& io() { return loop_.io(); }

  void submit(CallPtr call);
  void dispatch();
  void maintain();
  void spawn_worker();
  void schedule_restart();
  void poll_ready(const WorkerPtr& w);
  void read_output(const WorkerPtr& w, bool err);
  void send(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn, bool fresh);
  void on_response(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn);
  template <class Broken>
  void on_read_error(const WorkerPtr& w, const CallPtr& c, const std::shared_ptr<Conn>& conn,
                     boost::system::error_code ec, bool nothing_read, const Broken& broken);
  void on_call_timeout(const CallPtr& c);
  void requeue_exhausted(const WorkerPtr& w, const CallPtr& c, boost::system::error_code ec);
  void complete(const CallPtr& c, InvocationResult&& r);
  void fail_worker(const WorkerPtr& w, const std::string& why);
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
  const std::string ready_path_;
  const ProcessLimits limits_;
  const HttpOptions opts_;
  Environment env_;

  RuntimeLoop loop_;  // declared before everything registered with it

  // The loop's thread only.
  std::vector<WorkerPtr> workers_;
  std::deque<CallPtr> waiting_;
  size_t target_ = 1;
  uint64_t next_call_ = 1;
  RestartBackoff backoff_;
  std::optional<boost::asio::steady_timer> restart_timer_;  // made on the loop in start()
  bool restart_pending_ = false;
  std::optional<boost::asio::steady_timer> redispatch_timer_;  // after requeue_exhausted()
  bool redispatch_pending_ = false;
  std::string last_start_error_;
  LogLimit exhausted_log_;  // starts delayed for want of fds/processes/memory

  std::atomic<size_t> alive_{0};
  std::atomic<size_t> inflight_{0};
  std::atomic<uint64_t> output_dropped_{0};  // bytes, for stats()

  mutable std::mutex mu_;
  std::condition_variable cv_;
  State state_ = State::created;
  std::vector<pid_t> pids_;
};

}  // namespace sluice::workers
