#include "workers/inproc_runtime.h"

#include "core/clock.h"

#include <dlfcn.h>
#include <time.h>

#include <cstring>
#include <exception>
#include <stdexcept>

#include "workers/logger.h"
#include "workers/pool_util.h"
#include "core/thread_guard.h"

namespace sluice::workers {

struct InprocRuntime::Job {
  Job(const Event& e, InvokeCallback d, std::chrono::steady_clock::time_point dl)
      : ev(&e), done(std::move(d)), deadline(dl) {}
  const Event* ev;
  InvokeCallback done;
  std::chrono::steady_clock::time_point deadline;
  std::atomic<bool> claimed{false};  // whoever sets it reports: the call or the timeout
};

namespace {

int64_t coarse_now_ms() {
  timespec t{};
  ::clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
  return static_cast<int64_t>(t.tv_sec) * 1000 + t.tv_nsec / 1000000;
}

}  // namespace

InprocRuntime::InprocRuntime(const FunctionConfig& fn, InprocOptions opts)
    : name_(fn.name),
      library_(fn.command.empty() ? std::string() : fn.command.front()),
      timeout_(fn.timeout),
      opts_(opts),
      inline_(fn.inline_calls),
      target_(std::max<size_t>(fn.concurrency, 1)) {}

InprocRuntime::~InprocRuntime() { stop(Millis{0}); }

Result<void> InprocRuntime::start() {
  std::lock_guard lk(mu_);
  if (state_ != State::created)
    return Error{Errc::closed, "inproc runtime of function '" + name_ + "' was already started"};
  auto fail = [&](std::string why) -> Error {
    if (handle_) ::dlclose(handle_);
    handle_ = nullptr;
    return Error{Errc::invalid_argument,
                 "function '" + name_ + "': inproc library '" + library_ + "': " + why};
  };
  if (library_.empty()) return fail("no library given (command: [path/to/lib.so])");
  handle_ = ::dlopen(library_.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle_) return fail(::dlerror());
  auto sym = [&](const char* name) { return ::dlsym(handle_, name); };
  auto version = reinterpret_cast<sluice_abi_version_fn>(sym("sluice_abi_version"));
  auto init = reinterpret_cast<sluice_init_fn>(sym("sluice_init"));
  invoke_fn_ = reinterpret_cast<sluice_invoke_fn>(sym("sluice_invoke"));
  free_fn_ = reinterpret_cast<sluice_free_result_fn>(sym("sluice_free_result"));
  shutdown_fn_ = reinterpret_cast<sluice_shutdown_fn>(sym("sluice_shutdown"));
  std::string missing;
  if (!version) missing += " sluice_abi_version";
  if (!init) missing += " sluice_init";
  if (!invoke_fn_) missing += " sluice_invoke";
  if (!free_fn_) missing += " sluice_free_result";
  if (!shutdown_fn_) missing += " sluice_shutdown";
  if (!missing.empty())
    return fail("missing symbol(s):" + missing + " (see workers/inproc_abi.h; extern \"C\"?)");
  const uint32_t v = version();
  if (v != SLUICE_ABI_VERSION)
    return fail("built for inproc ABI version " + std::to_string(v) + "; sluice speaks version " +
                std::to_string(SLUICE_ABI_VERSION));
  int rc = init(name_.c_str(), &state_ptr_);
  if (rc != 0) return fail("sluice_init returned " + std::to_string(rc));
  state_ = State::running;
  if (!inline_) {
    if (timeout_.count() > 0)
      watchdog_thread_ = std::thread([this] { run_guarded("inproc watchdog", [this] { watchdog(); }); });
    spawn_threads_locked();
  }
  return ok();
}

void InprocRuntime::spawn_threads_locked() {
  while (alive_ < target_) {
    ++alive_;
    threads_.emplace_back([this] { pool_thread(); });
  }
}

void InprocRuntime::resize(size_t workers) {
  std::lock_guard lk(mu_);
  target_ = std::max<size_t>(workers, 1);
  if (state_ == State::running && !inline_) spawn_threads_locked();
  work_cv_.notify_all();
}

void InprocRuntime::invoke(const Event& ev, InvokeCallback done) {
  if (inline_) return invoke_inline(ev, std::move(done));
  std::unique_lock lk(mu_);
  if (state_ != State::running) {
    lk.unlock();
    done(failure(Outcome::error,
                 state_ == State::created ? "runtime not started" : "runtime stopped"));
    return;
  }
  auto job = std::make_shared<Job>(ev, std::move(done),
                                   deadline_in(timeout_));
  ++inflight_;
  queue_.push_back(std::move(job));
  const bool wake_watchdog = watch_idle_ && timeout_.count() > 0;
  lk.unlock();
  work_cv_.notify_one();
  if (wake_watchdog) watch_cv_.notify_one();
}

void InprocRuntime::invoke_inline(const Event& ev, InvokeCallback done) {
  {
    std::unique_lock lk(mu_);
    if (state_ != State::running) {
      const bool created = state_ == State::created;
      lk.unlock();
      done(failure(Outcome::error, created ? "runtime not started" : "runtime stopped"));
      return;
    }
    ++inflight_;
    ++busy_;  // stop() waits for it before unloading the library
  }
  // The coarse clock (a few ms of resolution, far cheaper to read) is plenty to tell
  // a call past its timeout: the call itself is not interrupted anyway.
  const int64_t started = coarse_now_ms();
  InvocationResult r = call(ev);
  if (timeout_.count() > 0 && coarse_now_ms() - started > timeout_.count())
    r = failure(Outcome::timeout, "timed out after " + std::to_string(timeout_.count()) + "ms");
  {
    std::lock_guard lk(mu_);
    --busy_;
    --inflight_;
    idle_cv_.notify_all();
  }
  done(std::move(r));
}

// Every unanswered invocation is in queue_ (in invoke() order, so its front has the
// earliest deadline there) or in in_call_ (one per pool thread): the earliest
// deadline is found without a structure of its own, and the watchdog sleeps until
// then. Deadlines only come later than the ones already known, so it is woken
// only when it had nothing to wait for.
void InprocRuntime::watchdog() {
  std::unique_lock lk(mu_);
  while (state_ == State::running) {
    std::shared_ptr<Job> next;
    auto consider = [&](const std::shared_ptr<Job>& j) {
      if (!j->claimed.load() && (!next || j->deadline < next->deadline)) next = j;
    };
    for (const auto& j : queue_) {
      if (!j->claimed.load()) {
        consider(j);
        break;
      }
    }
    for (const auto& j : in_call_) consider(j);
    if (!next) {
      watch_idle_ = true;
      watch_cv_.wait(lk);
      watch_idle_ = false;
      continue;
    }
    if (std::chrono::steady_clock::now() < next->deadline) {
      watch_cv_.wait_until(lk, next->deadline);
      continue;
    }
    lk.unlock();
    report(next, failure(Outcome::timeout,
                         "timed out after " + std::to_string(timeout_.count()) + "ms"));
    lk.lock();
  }
}

void InprocRuntime::pool_thread() {
  std::unique_lock lk(mu_);
  while (true) {
    work_cv_.wait(lk, [&] {
      return !queue_.empty() || state_ != State::running || alive_ > target_;
    });
    if (queue_.empty() && (state_ != State::running || alive_ > target_)) break;
    auto job = std::move(queue_.front());
    queue_.pop_front();
    ++busy_;
    auto slot = in_call_.insert(in_call_.end(), job);
    lk.unlock();
    run(job);
    lk.lock();
    in_call_.erase(slot);
    --busy_;
  }
  --alive_;
  idle_cv_.notify_all();
}

void InprocRuntime::run(const std::shared_ptr<Job>& job) {
  if (job->claimed.load()) return;  // timed out while queued
  report(job, call(*job->ev));
}

InvocationResult InprocRuntime::call(const Event& e) {
  sluice_event ev{e.id.c_str(),
                  e.source.c_str(),
                  e.type.c_str(),
                  e.subject.c_str(),
                  e.time.c_str(),
                  e.datacontenttype.c_str(),
                  e.topic.c_str(),
                  e.key.c_str(),
                  reinterpret_cast<const uint8_t*>(e.data.data()),
                  e.data.size(),
                  e.attempt};
  sluice_result res;
  std::memset(&res, 0, sizeof res);
  int rc;
  try {
    rc = invoke_fn_(state_ptr_, &ev, &res);
  } catch (const std::exception& ex) {
    return failure(Outcome::crash, std::string("sluice_invoke threw: ") + ex.what());
  } catch (...) {
    return failure(Outcome::crash, "sluice_invoke threw an exception");
  }
  if (rc != 0) return failure(Outcome::error, "sluice_invoke returned " + std::to_string(rc));
  InvocationResult r;
  if (res.output_len > 0 && !res.output) {
    r = failure(Outcome::error, "garbage result: output_len " + std::to_string(res.output_len) +
                                    " with a NULL output");
  } else if (res.output_len > opts_.max_output_bytes) {
    r = failure(Outcome::error,
                "output exceeds " + std::to_string(opts_.max_output_bytes) + " bytes");
  } else if (res.status < SLUICE_OK || res.status > SLUICE_REJECTED) {
    r = failure(Outcome::error, "garbage result: unknown status " + std::to_string(res.status));
  } else {
    r.outcome = res.status == SLUICE_OK      ? Outcome::success
                : res.status == SLUICE_ERROR ? Outcome::error
                                             : Outcome::rejected;
    if (res.output_len) r.output.assign(reinterpret_cast<const char*>(res.output), res.output_len);
    if (res.content_type) r.content_type = res.content_type;
    if (res.error_message) r.message = res.error_message;
    if (res.retry_after_ms) r.retry_after = Millis{res.retry_after_ms};
  }
  free_fn_(state_ptr_, &res);
  return r;
}

void InprocRuntime::report(const std::shared_ptr<Job>& job, InvocationResult&& r) {
  if (job->claimed.exchange(true)) return;  // the other side reported already
  InvokeCallback done = std::move(job->done);
  // Out of the count before the callback runs (as exec); stop() still waits for the
  // callback, since it joins the pool and watchdog threads.
  if (--inflight_ == 0) {
    std::lock_guard lk(mu_);
    idle_cv_.notify_all();
  }
  done(std::move(r));
}

void InprocRuntime::stop(std::chrono::milliseconds grace) {
  std::deque<std::shared_ptr<Job>> queued;
  {
    std::unique_lock lk(mu_);
    if (state_ == State::created) state_ = State::stopped;
    if (state_ == State::stopping) idle_cv_.wait(lk, [&] { return state_ == State::stopped; });
    if (state_ == State::stopped) return;
    idle_cv_.wait_for(lk, grace, [&] { return inflight_ == 0; });
    state_ = State::stopping;
    queued.swap(queue_);
  }
  work_cv_.notify_all();
  watch_cv_.notify_all();
  for (auto& job : queued) report(job, failure(Outcome::crash, "stopped"));
  bool joined;
  {
    // Pool threads exit; inline callers leave the library (busy_).
    std::unique_lock lk(mu_);
    joined = idle_cv_.wait_for(lk, opts_.stop_join_timeout,
                               [&] { return alive_ == 0 && busy_ == 0; });
  }
  if (!joined) {
    std::vector<std::shared_ptr<Job>> stuck;
    {
      std::lock_guard lk(mu_);
      stuck.assign(in_call_.begin(), in_call_.end());
    }
    for (auto& job : stuck) report(job, failure(Outcome::crash, "stopped (call still running)"));
  }
  if (!joined) {
    // A call that never returns: the thread cannot be stopped. Leave the library
    // loaded (unloading it under a running thread would crash) and report.
    log().error("[fn {}] stopping: {} inproc call(s) did not return within {} ms; leaving "
                "them running and the library loaded",
                name_, busy_, opts_.stop_join_timeout.count());
    for (auto& t : threads_) t.detach();
  } else {
    for (auto& t : threads_) t.join();
  }
  threads_.clear();
  if (watchdog_thread_.joinable()) watchdog_thread_.join();  // pending deadlines are moot
  // Invocations that timed out while their call ran have been reported already.
  if (joined) {
    shutdown_fn_(state_ptr_);
    ::dlclose(handle_);
    handle_ = nullptr;
  }
  std::lock_guard lk(mu_);
  state_ = State::stopped;
  idle_cv_.notify_all();
}

PoolStats InprocRuntime::stats() const {
  std::lock_guard lk(mu_);
  return PoolStats{inline_ ? size_t{1} : alive_, inflight_.load()};
}

}  // namespace sluice::workers
