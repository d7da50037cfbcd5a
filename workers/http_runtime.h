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
// Lifecycle and threads as StdioRuntime: the process pool (process_pool.h: spawn,
// restart, retire, resize, stop) and this protocol run on one loop that owns
// everything (an io thread of its own, or the dispatcher's loop when lent:
// share_loop(), see runtime_loop.h); invoke() and resize() post to it; every handler
// holds the loop's Hold; stats() reads atomics.
#pragma once

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/log_limit.h"
#include "core/runtime.h"
#include "workers/pool_util.h"
#include "workers/process_pool.h"

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

class HttpRuntime final : public Runtime, private PoolProtocol {
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

  RuntimeLoop::Hold hold() noexcept { return pool_.hold(); }
  boost::asio::io_context& io() { return pool_.io(); }

  // PoolProtocol: HTTP on $PORT (on the loop; its state is the loop's alone).
  void guarded(const std::function<void()>& f) override { f(); }
  void on_starting() override;
  Result<PoolWorkerPtr> make_worker(Environment& env) override;
  void on_spawn(const PoolWorkerPtr& w) override;
  std::string not_ready(const PoolWorker& w) override;
  void on_exit(const PoolWorkerPtr& w, const std::string& reason) override;
  void on_retire(const PoolWorkerPtr& w) override;
  void goodbye(const PoolWorkerPtr& w) override;
  bool has_waiting() const override { return !waiting_.empty(); }
  void fail_waiting(Outcome o, const std::string& why) override;
  void shutdown() override;
  void teardown() override;

  void submit(CallPtr call);
  void dispatch();
  void poll_ready(const WorkerPtr& w);
  void read_stdout(const WorkerPtr& w);
  void send(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn, bool fresh);
  void on_response(const WorkerPtr& w, const CallPtr& c, std::shared_ptr<Conn> conn);
  template <class Broken>
  void on_read_error(const WorkerPtr& w, const CallPtr& c, const std::shared_ptr<Conn>& conn,
                     boost::system::error_code ec, bool nothing_read, const Broken& broken);
  void on_call_timeout(const CallPtr& c);
  void requeue_exhausted(const WorkerPtr& w, const CallPtr& c, boost::system::error_code ec);
  void complete(const CallPtr& c, InvocationResult&& r);

  const std::string name_;
  const Millis timeout_;
  const std::string ready_path_;
  const HttpOptions opts_;

  ProcessPool pool_;  // declared before everything registered with its loop

  // The loop's thread only.
  std::deque<CallPtr> waiting_;
  uint64_t next_call_ = 1;
  std::optional<boost::asio::steady_timer> redispatch_timer_;  // after requeue_exhausted()
  bool redispatch_pending_ = false;
  LogLimit exhausted_log_;  // connections delayed for want of fds/ports/memory
};

}  // namespace sluice::workers
