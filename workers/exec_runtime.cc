#include "workers/exec_runtime.h"

#include "core/clock.h"

#include <signal.h>

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "workers/exec_invocation.h"
#include "workers/logger.h"
#include "core/thread_guard.h"

namespace sluice::workers {

namespace asio = boost::asio;

namespace {

ExecOptions checked(ExecOptions o) {
  if (o.io_threads == 0) o.io_threads = 1;
  return o;
}

}  // namespace

ExecRuntime::ExecRuntime(const FunctionConfig& fn, std::string base_dir, ExecOptions opts)
    : name_(fn.name),
      command_(fn.command),
      base_dir_(std::move(base_dir)),
      timeout_(fn.timeout),
      limits_(limits_of(fn)),
      opts_(checked(opts)) {
  for (unsigned i = 0; i < opts_.io_threads; ++i)
    shards_.push_back(std::make_unique<IoShard>());  // one thread each
  env_ = function_environment(fn);
}

ExecRuntime::~ExecRuntime() { stop(Millis{0}); }

Result<void> ExecRuntime::start() {
  std::lock_guard lk(mu_);
  if (auto checked = check_start("exec", state_ == State::created, name_, command_, base_dir_);
      !checked)
    return checked;
  // Looked up once, not at every spawn.
  if (auto exe = resolve_command(command_[0])) exe_ = std::move(exe).value();
  // A child that exits without reading all of stdin turns our write into EPIPE;
  // without this, the SIGPIPE would kill sluice. Children get default dispositions.
  ::signal(SIGPIPE, SIG_IGN);
  for (auto& shard : shards_) {
    guards_.emplace_back(shard->io.get_executor());
    asio::post(shard->io, [this, l = shard.get()] { arm_watchdog(*l); });
    threads_.emplace_back([ctx = &shard->io] { run_guarded("exec io", [ctx] { ctx->run(); }); });
  }
  state_ = State::running;
  return ok();
}

void ExecRuntime::invoke(const Event& ev, InvokeCallback done) {
  std::shared_ptr<Invocation> inv;
  const char* refusal = "runtime stopped";
  bool post_refusal = false;
  {
    std::lock_guard lk(mu_);
    switch (state_) {
      case State::created: refusal = "runtime not started"; break;
      case State::stopping: post_refusal = true; break;
      case State::stopped: break;
      case State::running:
        inv = std::make_shared<Invocation>(*this, next_id_, ev, std::move(done));
        live_.emplace(next_id_++, inv);
        break;
    }
  }
  if (inv) {
    asio::post(inv->executor(), [inv] { inv->start(); });
    return;
  }
  InvocationResult r = failure(Outcome::error, refusal);
  if (post_refusal)  // the threads are still running: keep callbacks off the caller
    asio::post(next_shard().io,
               [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
  else
    done(std::move(r));
}

void ExecRuntime::stop(std::chrono::milliseconds grace) {
  if (on_own_thread())
    throw std::logic_error("ExecRuntime::stop() called on one of its own threads");
  {
    std::unique_lock lk(mu_);
    if (state_ == State::created) state_ = State::stopped;
    if (state_ == State::stopping) idle_.wait(lk, [&] { return state_ == State::stopped; });
    if (state_ == State::stopped) return;
    state_ = State::stopping;
  }
  if (!wait_idle_for(grace)) {
    std::vector<std::shared_ptr<Invocation>> left;
    {
      std::lock_guard lk(mu_);
      for (auto& [id, weak] : live_)
        if (auto inv = weak.lock()) left.push_back(std::move(inv));
    }
    log().warn("[fn {}] stopping: killing {} running invocation(s)", name_, left.size());
    for (auto& inv : left) asio::post(inv->executor(), [inv] { inv->abort_stopped(); });
    if (!wait_idle_for(opts_.kill_grace + opts_.pipe_drain_timeout + Millis{10000})) {
      log().error("[fn {}] stopping: invocations did not end after SIGKILL; abandoning them",
                  name_);
      for (auto& shard : shards_) shard->io.stop();
    }
  }
  for (auto& shard : shards_)
    asio::post(shard->io, [l = shard.get()] {
      l->off = true;
      l->watchdog.cancel();
    });
  guards_.clear();
  for (auto& t : threads_) t.join();
  threads_.clear();
  std::vector<std::shared_ptr<Invocation>> stuck;  // only when io_.stop() was needed
  {
    std::lock_guard lk(mu_);
    for (auto& [id, weak] : live_)
      if (auto inv = weak.lock()) stuck.push_back(std::move(inv));
  }
  for (auto& inv : stuck) inv->force_finish();
  {
    std::lock_guard lk(mu_);
    live_.clear();
    state_ = State::stopped;
  }
  idle_.notify_all();
}

PoolStats ExecRuntime::stats() const {
  std::lock_guard lk(mu_);
  PoolStats s{workers_.load(), live_.size()};
  s.stderr_dropped_bytes = stderr_dropped_.load(std::memory_order_relaxed);
  return s;
}

ExecRuntime::IoShard& ExecRuntime::next_shard() {
  return *shards_[next_io_.fetch_add(1, std::memory_order_relaxed) % shards_.size()];
}

bool ExecRuntime::on_own_thread() const {
  for (const auto& shard : shards_)
    if (shard->io.get_executor().running_in_this_thread()) return true;
  return false;
}

// Armed at or before the oldest deadline: at most `timeout_` from now, and an
// invocation started later is due later still. Fires about once per timeout when
// idle.
void ExecRuntime::arm_watchdog(IoShard& shard) {
  if (timeout_.count() <= 0 || shard.off) return;
  shard.watchdog.expires_at(shard.deadlines.next_check(timeout_));
  shard.watchdog.async_wait([this, l = &shard](boost::system::error_code ec) {
    if (!ec) expire_due(*l);
  });
}

void ExecRuntime::expire_due(IoShard& shard) {
  const auto now = std::chrono::steady_clock::now();
  while (Invocation* due = shard.deadlines.due(now)) due->on_timeout();  // unlinks it
  arm_watchdog(shard);
}

void ExecRuntime::finished(uint64_t id) {
  std::lock_guard lk(mu_);
  live_.erase(id);
  if (live_.empty()) idle_.notify_all();
}

bool ExecRuntime::wait_idle_for(std::chrono::milliseconds d) {
  std::unique_lock lk(mu_);
  return idle_.wait_for(lk, d, [&] { return live_.empty(); });
}

void ExecRuntime::note_spawn(const Error* failure) {
  std::lock_guard lk(spawn_mu_);
  if (!failure) {
    last_spawn_error_.clear();
    return;
  }
  if (failure->message == last_spawn_error_) return;
  last_spawn_error_ = failure->message;
  log().error("[fn {}] {} (logged once until a start succeeds)", name_, failure->message);
}

}  // namespace sluice::workers
