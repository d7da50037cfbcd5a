#include "workers/process_pool.h"

#include <signal.h>

#include <boost/asio/post.hpp>
#include <stdexcept>

#include "core/io_loop.h"
#include "workers/logger.h"

namespace sluice::workers {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

Environment worker_environment(const FunctionConfig& fn) {
  Environment env = function_environment(fn);
  env.set("SLUICE_FUNCTION", fn.name);
  return env;
}

}  // namespace

ProcessPool::ProcessPool(std::string kind, const FunctionConfig& fn, std::string base_dir,
                         PoolOptions opts, PoolProtocol& protocol)
    : kind_(std::move(kind)),
      name_(fn.name),
      command_(fn.command),
      base_dir_(std::move(base_dir)),
      start_timeout_(fn.start_timeout),
      limits_(limits_of(fn)),
      opts_(opts),
      env_(worker_environment(fn)),
      proto_(protocol),
      target_(opts.initial_workers ? opts.initial_workers : std::max<size_t>(fn.workers.min, 1)),
      backoff_(opts.restart_initial, opts.restart_max),
      template_backoff_(opts.restart_initial, opts.restart_max) {}

ProcessPool::~ProcessPool() = default;

void ProcessPool::share_loop(std::shared_ptr<asio::io_context> loop) {
  std::lock_guard lk(mu_);
  if (state_ == State::created) loop_.lend(std::move(loop));
}

Result<void> ProcessPool::start() {
  std::lock_guard lk(mu_);
  if (auto checked = check_start(kind_, state_ == State::created, name_, command_, base_dir_);
      !checked)
    return checked;
  ::signal(SIGPIPE, SIG_IGN);  // a dead worker's pipe or socket must give EPIPE, not kill sluice
  restart_timer_.emplace(io());
  template_timer_.emplace(io());
  proto_.on_starting();
  // After each thing handled the own thread keeps polling for `spin`: the next answer of
  // a busy pool is caught without a wake-up. An idle runtime sleeps.
  loop_.start([this] { run_spinning(io(), opts_.spin); });
  state_ = State::running;
  asio::post(io(), [this, h = hold()] {
    proto_.guarded([&] {
      proto_.on_started();
      // The template first: a worker needed now is spawned while it starts.
      if (opts_.worker_template) start_template();
      maintain();
    });
  });
  return ok();
}

const char* ProcessPool::admit(InvokeCallback& done) {
  std::lock_guard lk(mu_);
  switch (state_) {
    case State::running: ++inflight_; return nullptr;
    case State::created: return "runtime not started";
    case State::stopping:  // the loop still runs: keep the callback off the caller
      asio::post(io(), [done = std::move(done), h = hold()]() mutable {
        done(failure(Outcome::error, "runtime stopped"));
      });
      return "";
    case State::stopped: break;
  }
  return "runtime stopped";
}

void ProcessPool::call_done() {
  // Leaves the count before the callback runs (as exec does), so stats() no longer
  // counts it then; stop() still waits for the callback, which runs on the loop.
  if (--inflight_ == 0) {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
}

size_t ProcessPool::live_workers() const {
  size_t n = 0;
  for (const PoolWorkerPtr& w : workers_)
    if (w->st == PoolWorker::St::starting || w->st == PoolWorker::St::ready) ++n;
  return n;
}

void ProcessPool::maintain() {
  {
    std::lock_guard lk(mu_);
    if (state_ != State::running) return;
  }
  const size_t want = std::max(target_, proto_.has_waiting() ? size_t{1} : size_t{0});
  if (restart_pending_ || live_workers() >= want) return;
  if (!on_loop_thread()) {  // spawning starts loop work: do it there
    if (!maintain_posted_) {
      maintain_posted_ = true;
      asio::post(io(), [this, h = hold()] {
        proto_.guarded([&] {
          maintain_posted_ = false;
          maintain();
        });
      });
    }
    return;
  }
  while (!restart_pending_ && live_workers() < want) spawn_worker();
}

void ProcessPool::schedule_restart() {
  if (restart_pending_) return;
  restart_pending_ = true;
  restart_timer_->expires_after(backoff_.next());
  restart_timer_->async_wait([this, h = hold()](error_code ec) {
    if (ec) return;
    proto_.guarded([&] {
      restart_pending_ = false;
      maintain();
    });
  });
}

void ProcessPool::spawn_worker() {
  Environment env = env_;
  Result<PoolWorkerPtr> made = proto_.make_worker(env);
  Result<std::unique_ptr<ChildProcess>> child = Error{Errc::internal, ""};
  if (made) child = spawn_child(env);
  if (!made || !child) {
    const Error& err = !made ? made.error() : child.error();
    if (err.retriable) {
      // Out of fds, processes or memory: the waiting invocations keep waiting (their
      // timeouts run) and the start is tried again after the backoff.
      if (auto quiet = exhausted_log_.allow())
        log().warn("[fn {}] {}; trying again with backoff{}", name_, err.message,
                   suppressed_note(*quiet));
    } else {
      if (err.message != last_start_error_) log().error("[fn {}] {}", name_, err.message);
      last_start_error_ = err.message;
      proto_.fail_waiting(Outcome::error, err.message);
    }
    schedule_restart();
    return;
  }
  PoolWorkerPtr w = std::move(made).value();
  w->child = std::move(child).value();
  w->prefix = "[fn " + name_ + "] [worker " + std::to_string(w->child->pid()) + "]";
  w->err.emplace(w->prefix, "stderr", opts_.stderr_budget, &output_dropped_);
  ++alive_;
  {
    std::lock_guard lk(mu_);
    pids_.push_back(w->child->pid());
  }
  workers_.push_back(w);
  w->timer.expires_after(start_timeout_);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (ec) return;
    proto_.guarded([&] {
      if (w->st == PoolWorker::St::starting) fail_worker(w, proto_.not_ready(*w));
    });
  });
  w->child->async_wait_exit([this, w, h = hold()](const ExitStatus&) {
    proto_.guarded([&] { on_worker_exit(w); });
  });
  read_stderr(w);
  proto_.on_spawn(w);
}

Result<std::unique_ptr<ChildProcess>> ProcessPool::spawn_child(const Environment& env) {
  std::vector<std::string> vars = env.to_list();
  // A forked worker has the template's environment: only when nothing was added to it.
  if (template_ && template_->state() == WorkerTemplate::St::ready && vars == env_.to_list()) {
    auto forked = template_->fork();
    if (forked) return forked;
    log().debug("[fn {}] {}; spawning the worker", name_, forked.error().message);
  }
  return ChildProcess::spawn(io().get_executor(),
                             SpawnOptions{command_, base_dir_, std::move(vars), limits_});
}

void ProcessPool::start_template() {
  {
    std::lock_guard lk(mu_);
    if (state_ != State::running) return;
  }
  WorkerTemplate::Hooks hooks{
      [this](std::function<void()> f) -> std::function<void()> {
        return [this, f = std::move(f), h = hold()] { proto_.guarded(f); };
      },
      [this] { on_template_change(); }};
  template_ = std::make_unique<WorkerTemplate>(io(), name_, start_timeout_,
                                               opts_.template_fork_timeout, opts_.stderr_budget,
                                               &output_dropped_, std::move(hooks));
  if (auto started = template_->start(SpawnOptions{command_, base_dir_, env_.to_list(), limits_});
      !started) {
    log().warn("[fn {}] worker template: {}; workers are spawned", name_, started.error().message);
    on_template_change();
  }
}

void ProcessPool::on_template_change() {
  const auto st = template_ ? template_->state() : WorkerTemplate::St::dead;
  template_pid_ = st == WorkerTemplate::St::ready ? template_->pid() : -1;
  if (st == WorkerTemplate::St::ready) template_backoff_.reset();
  // Unsupported: kept (as a marker), never tried again. Dead: restarted after the backoff.
  if (st == WorkerTemplate::St::ready || st == WorkerTemplate::St::unsupported) return;
  template_timer_->expires_after(template_backoff_.next());
  template_timer_->async_wait([this, h = hold()](error_code ec) {
    if (ec) return;
    proto_.guarded([&] {
      // Destroyed here, not in its own handler (on_change runs inside one).
      template_.reset();
      start_template();
    });
  });
}

void ProcessPool::read_stderr(const PoolWorkerPtr& w) {
  w->child->stderr_pipe().async_read_some(
      asio::buffer(w->ebuf), [this, w, h = hold()](error_code ec, size_t n) {
        proto_.guarded([&] {
          if (n > 0) w->err->feed(std::string_view(w->ebuf.data(), n));
          if (ec) {
            w->err->finish();
            // The last words are in: the timer closing the pipes is not needed.
            if (--w->open_pipes == 0 && w->exited) w->timer.cancel();
            return;
          }
          read_stderr(w);
        });
      });
}

void ProcessPool::ready(PoolWorker& w) {
  w.st = PoolWorker::St::ready;
  w.ever_ready = true;
  w.timer.cancel();
  last_start_error_.clear();
}

void ProcessPool::kill_later(const PoolWorkerPtr& w) {
  w->timer.expires_after(opts_.kill_grace);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (!ec) proto_.guarded([&] { w->child->signal_group(SIGKILL); });
  });
}

void ProcessPool::fail_worker(const PoolWorkerPtr& w, const std::string& why) {
  if (w->st == PoolWorker::St::dying) return;
  w->st = PoolWorker::St::dying;
  w->death = why;
  log().error("{} {}; killing it ({} invocation(s) held)", w->prefix, why, w->load());
  if (w->goodbye_sent)
    kill_later(w);  // let it read the goodbye first
  else
    w->child->signal_group(SIGKILL);
}

void ProcessPool::on_worker_exit(const PoolWorkerPtr& w) {
  const std::string status = w->child->status()->describe();
  const std::string reason = w->death.empty() ? status : w->death + " (" + status + ")";
  if (w->death.empty() && !w->retired) log().error("{} exited: {}", w->prefix, status);
  w->st = PoolWorker::St::dying;
  w->exited = true;
  w->timer.cancel();
  proto_.on_exit(w, reason);
  // Its output may still hold its last words (a traceback): read on until EOF, but
  // not forever (a process that left the group may hold the pipe).
  if (w->open_pipes > 0) {
    w->timer.expires_after(Millis{2000});
    w->timer.async_wait([this, w, h = hold()](error_code ec) {
      if (!ec) proto_.guarded([&] { w->child->close_pipes(); });
    });
  }
  std::erase(workers_, w);
  {
    std::lock_guard lk(mu_);
    std::erase(pids_, w->child->pid());
    --alive_;
    cv_.notify_all();
    if (state_ != State::running) return;
  }
  if (w->retired) {
    maintain();
    return;
  }
  bool any_ready = false;
  for (const PoolWorkerPtr& o : workers_) any_ready |= o->st == PoolWorker::St::ready;
  if (!w->ever_ready && !any_ready) {
    last_start_error_ = reason;
    proto_.fail_waiting(Outcome::error, "worker failed to start: " + reason);
  }
  schedule_restart();
}

void ProcessPool::retire(const PoolWorkerPtr& w) {
  if (w->st == PoolWorker::St::dying) return;
  w->retired = true;
  w->st = PoolWorker::St::retiring;
  proto_.on_retire(w);
  if (w->holds_calls()) return;  // retired when its last answer arrives
  proto_.goodbye(w);
  kill_later(w);
}

void ProcessPool::resize(size_t workers) {
  asio::post(io(), [this, workers, h = hold()] {
    proto_.guarded([&] { apply_resize(workers); });
  });
}

void ProcessPool::apply_resize(size_t workers) {
  target_ = workers;
  const size_t keep = std::max(target_, !proto_.has_waiting() && inflight_ == 0 ? 0 : size_t{1});
  size_t live = live_workers();
  while (live > keep) {
    // Retire a starting worker first, else the ready one holding the fewest calls.
    PoolWorkerPtr pick;
    for (const PoolWorkerPtr& w : workers_) {
      if (w->st != PoolWorker::St::starting && w->st != PoolWorker::St::ready) continue;
      if (!pick || (w->st == PoolWorker::St::starting && pick->st != PoolWorker::St::starting) ||
          (w->st == pick->st && w->load() < pick->load()))
        pick = w;
    }
    if (!pick) break;
    retire(pick);
    --live;
  }
  maintain();
}

void ProcessPool::shutdown_workers() {
  restart_timer_->cancel();
  template_timer_->cancel();
  proto_.shutdown();
  for (const PoolWorkerPtr& w : std::vector<PoolWorkerPtr>(workers_)) {
    if (w->holds_calls()) {
      w->child->signal_group(SIGKILL);
      continue;
    }
    retire(w);
  }
}

void ProcessPool::stop(Millis grace) {
  if (on_loop_thread())
    throw std::logic_error("the " + kind_ + " runtime's stop() called on its loop's thread");
  {
    std::unique_lock lk(mu_);
    if (state_ == State::created) state_ = State::stopped;
    if (state_ == State::stopping) cv_.wait(lk, [&] { return state_ == State::stopped; });
    if (state_ == State::stopped) return;
    state_ = State::stopping;
    cv_.wait_for(lk, grace, [&] { return inflight_ == 0; });
  }
  asio::post(io(), [this, h = hold()] { proto_.guarded([&] { shutdown_workers(); }); });
  {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, opts_.kill_grace + Millis{5000}, [&] { return alive_ == 0; })) {
      lk.unlock();
      asio::post(io(), [this, h = hold()] {
        proto_.guarded([&] {
          for (const PoolWorkerPtr& w : workers_) w->child->signal_group(SIGKILL);
        });
      });
      lk.lock();
      cv_.wait_for(lk, Millis{10000}, [&] { return alive_ == 0; });
    }
  }
  asio::post(io(), [this, h = hold()] {
    proto_.guarded([&] {
      // Destroying a ChildProcess SIGKILLs and reaps it and closes its descriptors, so
      // the handlers still pending on them end (operation_aborted).
      restart_timer_->cancel();
      proto_.teardown();
      for (const PoolWorkerPtr& w : workers_) {
        w->timer.cancel();
        w->child.reset();
      }
      workers_.clear();
      template_timer_->cancel();
      template_.reset();  // kills and reaps the template
      template_pid_ = -1;
    });
  });
  // Own thread: joined once nothing is pending. Lent loop: the handlers still queued
  // there (the cleanup above, reads and timers ending with operation_aborted) run on
  // the lender's thread; wait for them.
  loop_.finish("[fn " + name_ + "]");
  std::lock_guard lk(mu_);
  state_ = State::stopped;
  cv_.notify_all();
}

PoolStats ProcessPool::stats() const {
  PoolStats s{alive_.load(), inflight_.load()};
  s.stderr_dropped_bytes = output_dropped_.load(std::memory_order_relaxed);
  return s;
}

std::vector<pid_t> ProcessPool::pids() const {
  std::lock_guard lk(mu_);
  return pids_;
}

}  // namespace sluice::workers
