#include "workers/stdio_runtime.h"

#include "core/clock.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <stdexcept>
#include <unordered_set>

#include "event.pb.h"
#include "core/io_loop.h"
#include "workers/child_process.h"
#include "workers/logger.h"

namespace sluice::workers {

namespace asio = boost::asio;
using boost::system::error_code;

struct StdioRuntime::Worker {
  enum class St { starting, ready, retiring, dying };

  Worker(asio::io_context& io, uint64_t serial_, std::unique_ptr<ChildProcess> c,
         const std::string& fn, LogBudgetOptions budget, std::atomic<uint64_t>* err_dropped,
         std::atomic<uint64_t>* log_dropped)
      : serial(serial_),
        child(std::move(c)),
        timer(io),
        prefix("[fn " + fn + "] [worker " + std::to_string(child->pid()) + "]"),
        err(prefix, "stderr", budget, err_dropped),
        logs(budget, log_dropped) {}

  uint64_t serial;
  std::unique_ptr<ChildProcess> child;
  St st = St::starting;
  bool retired = false;     // stopped on purpose (resize, stop): no restart
  bool ever_ready = false;  // its handshake succeeded
  bool exited = false;      // reaped
  bool stderr_eof = false;
  uint32_t max_inflight = 0;
  std::unordered_set<uint64_t> calls;  // sent, not answered (incl. timed-out ones)
  size_t active = 0;                   // of `calls`, those not yet reported
  FrameReader reader;
  v1::Frame frame;
  std::array<char, 64 * 1024> rbuf{};
  std::array<char, 4096> ebuf{};
  std::string out_pending, out_writing;
  bool writing = false;
  bool close_after_write = false;
  asio::steady_timer timer;  // start timeout, then the goodbye grace
  std::string prefix;        // "[fn <name>] [worker <pid>]"
  OutputLines err;
  LogBudget logs;            // its Log frames that belong to no invocation
  std::string death;  // why sluice killed it
};


namespace {

// A string a worker sent that sluice logs once (its sdk name, a Goodbye reason): cut
// at 256 bytes, so that a frame of megabytes does not become a log line of megabytes.
std::string_view clipped(std::string_view s) { return s.substr(0, 256); }

}  // namespace

StdioRuntime::StdioRuntime(const FunctionConfig& fn, std::string base_dir, StdioOptions opts)
    : name_(fn.name),
      command_(fn.command),
      base_dir_(std::move(base_dir)),
      timeout_(fn.timeout),
      start_timeout_(fn.start_timeout),
      limits_(limits_of(fn.limits)),
      opts_(opts),
      backoff_(opts.restart_initial, opts.restart_max) {
  env_ = function_environment(fn);
  env_.set("SLUICE_FUNCTION", name_);
  target_ = opts.initial_workers ? opts.initial_workers
                                 : std::max<size_t>(fn.workers.min, 1);
}

StdioRuntime::~StdioRuntime() { stop(Millis{0}); }

void StdioRuntime::share_loop(std::shared_ptr<asio::io_context> loop) {
  std::lock_guard lk(mu_);
  if (state_ == State::created) loop_.lend(std::move(loop));
}

Result<void> StdioRuntime::start() {
  std::lock_guard lk(mu_);
  if (auto checked = check_start("stdio", state_ == State::created, name_, command_, base_dir_);
      !checked)
    return checked;
  ::signal(SIGPIPE, SIG_IGN);  // a dead worker's stdin must give EPIPE, not kill sluice
  restart_timer_.emplace(io());
  watchdog_.emplace(io());
  loop_.start([this] { run_io(); });
  state_ = State::running;
  asio::post(io(), [this, h = hold()] {
    locked([&] {
      arm_watchdog();
      maintain();
    });
  });
  return ok();
}

void StdioRuntime::run_io() {
  // After each thing handled, keep polling for `spin`: the next answer of a busy pool
  // (or the one to a call just written by invoke()) is caught without a wake-up. An
  // idle runtime sleeps.
  run_spinning(io(), opts_.spin);
}

template <class F>
void StdioRuntime::locked(F&& f) {
  std::vector<Finished> fin;
  {
    std::lock_guard lk(state_mu_);
    f();
    fin.swap(finished_);
  }
  for (Finished& x : fin) x.done(std::move(x.result));
}

void StdioRuntime::invoke(const Event& ev, InvokeCallback done) {
  const char* refusal = "runtime stopped";
  {
    std::unique_lock pool(state_mu_);
    State st;
    {
      std::lock_guard lk(mu_);
      st = state_;
    }
    if (st == State::running) {
      ++inflight_;
      submit(std::make_unique<Call>(next_call_++, ev, std::move(done)));
      // Callbacks run on the io thread, never inside invoke().
      if (!finished_.empty()) asio::post(io(), [this, h = hold()] { locked([] {}); });
      return;
    }
    if (st == State::created) refusal = "runtime not started";
    if (st == State::stopping) {
      asio::post(io(), [done = std::move(done), h = hold()]() mutable {
        done(failure(Outcome::error, "runtime stopped"));
      });
      return;
    }
  }
  done(failure(Outcome::error, refusal));
}

void StdioRuntime::submit(std::unique_ptr<Call> call) {
  const uint64_t id = call->id;
  Call& c = *call;
  // Same timeout for every call: appending keeps the list in deadline order.
  if (timeout_.count() > 0) deadlines_.push_back(c, timeout_);
  calls_.emplace(id, std::move(call));
  waiting_.push_back(id);
  dispatch();
}

// The watchdog is always armed at or before the oldest call's deadline: it fires at
// most `timeout_` after it was armed, and a call submitted later is due later still.
void StdioRuntime::arm_watchdog() {
  if (timeout_.count() <= 0 || watchdog_off_) return;
  watchdog_->expires_at(deadlines_.next_check(timeout_));
  watchdog_->async_wait([this, h = hold()](error_code ec) {
    if (!ec) locked([&] { expire_due(); });
  });
}

void StdioRuntime::expire_due() {
  const auto now = std::chrono::steady_clock::now();
  while (Call* due = deadlines_.due(now)) on_call_timeout(*due);  // unlinks it
  arm_watchdog();
}

void StdioRuntime::dispatch() {
  while (!waiting_.empty()) {
    auto it = calls_.find(waiting_.front());
    if (it == calls_.end() || it->second->sent) {
      waiting_.pop_front();
      continue;
    }
    WorkerPtr best;
    for (const WorkerPtr& w : workers_) {
      if (w->st != Worker::St::ready) continue;
      if (w->max_inflight && w->active >= w->max_inflight) continue;
      if (!best || w->active < best->active) best = w;
    }
    if (!best) break;
    waiting_.pop_front();
    Call& c = *it->second;
    c.sent = true;
    c.worker = best;
    best->calls.insert(c.id);
    ++best->active;
    scratch_.Clear();  // keeps the capacity of its strings
    v1::Invoke* inv = scratch_.mutable_invoke();
    inv->set_id(c.id);
    to_proto(*c.ev, inv->mutable_event());
    if (timeout_.count() > 0) inv->set_timeout_ms(static_cast<uint32_t>(timeout_.count()));
    wbuf_.clear();
    append_frame(scratch_, wbuf_);
    send(best, wbuf_);
  }
  maintain();
}

size_t StdioRuntime::live_workers() const {
  size_t n = 0;
  for (const WorkerPtr& w : workers_)
    if (w->st == Worker::St::starting || w->st == Worker::St::ready) ++n;
  return n;
}

void StdioRuntime::maintain() {
  {
    std::lock_guard lk(mu_);
    if (state_ != State::running) return;
  }
  const bool work = !waiting_.empty();
  const size_t want = std::max(target_, work ? size_t{1} : size_t{0});
  if (restart_pending_ || live_workers() >= want) return;
  if (!on_io_thread()) {  // spawning starts io-thread work: do it there
    if (!maintain_posted_) {
      maintain_posted_ = true;
      asio::post(io(), [this, h = hold()] {
        locked([&] {
          maintain_posted_ = false;
          maintain();
        });
      });
    }
    return;
  }
  while (!restart_pending_ && live_workers() < want) spawn_worker();
}

void StdioRuntime::spawn_worker() {
  SpawnOptions so{command_, base_dir_, env_.to_list(), limits_};
  auto child = ChildProcess::spawn(io().get_executor(), so);
  if (!child) {
    const std::string& msg = child.error().message;
    if (child.error().retriable) {
      // Out of fds, processes or memory: the waiting invocations keep waiting (their
      // timeouts run) and the start is tried again after the backoff.
      if (auto quiet = exhausted_log_.allow())
        log().warn("[fn {}] {}; trying again with backoff{}", name_, msg, suppressed_note(*quiet));
    } else {
      if (msg != last_start_error_) log().error("[fn {}] {}", name_, msg);
      last_start_error_ = msg;
      fail_waiting(Outcome::error, msg);
    }
    restart_pending_ = true;
    restart_timer_->expires_after(backoff_.next());
    restart_timer_->async_wait([this, h = hold()](error_code ec) {
      if (ec) return;
      locked([&] {
        restart_pending_ = false;
        maintain();
      });
    });
    return;
  }
  auto w = std::make_shared<Worker>(io(), next_worker_++, std::move(child).value(), name_,
                                    opts_.stderr_budget, &stderr_dropped_, &log_dropped_);
  ++alive_;
  {
    std::lock_guard lk(mu_);
    pids_.push_back(w->child->pid());
  }
  workers_.push_back(w);
  // invoke() writes from its own thread: a full pipe must give EAGAIN, not block it.
  error_code nb;
  w->child->stdin_pipe().native_non_blocking(true, nb);
  w->timer.expires_after(start_timeout_);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (ec) return;
    locked([&] {
      if (w->st != Worker::St::starting) return;
      fail_worker(w, "no Hello frame within " + std::to_string(start_timeout_.count()) +
                         "ms of start (does the command speak the sluice stdio protocol?)");
    });
  });
  w->child->async_wait_exit(
      [this, w, h = hold()](const ExitStatus&) { locked([&] { on_worker_exit(w); }); });
  read_stdout(w);
  read_stderr(w);
}

void StdioRuntime::read_stdout(const WorkerPtr& w) {
  w->child->stdout_pipe().async_read_some(
      asio::buffer(w->rbuf), [this, w, h = hold()](error_code ec, size_t n) {
        if (ec == asio::error::operation_aborted) return;
        locked([&] { on_stdout(w, ec, n); });
      });
}

void StdioRuntime::on_stdout(const WorkerPtr& w, error_code ec, size_t n) {
  if (n > 0) {
    w->reader.feed(std::string_view(w->rbuf.data(), n));
    while (w->st != Worker::St::dying) {
      auto s = w->reader.next(w->frame);
      if (s == FrameReader::Status::need_more) break;
      if (s == FrameReader::Status::error) {
        fail_worker(w, "protocol error: " + w->reader.error());
        return;
      }
      on_frame(w, w->frame);
    }
  }
  if (ec) {
    // A retired worker is exiting (its kill_grace timer covers a stuck one).
    if (w->st != Worker::St::dying && !w->retired) fail_worker(w, "closed its stdout");
    return;
  }
  read_stdout(w);
}

void StdioRuntime::read_stderr(const WorkerPtr& w) {
  auto& pipe = w->child->stderr_pipe();
  pipe.async_read_some(asio::buffer(w->ebuf), [this, w, h = hold()](error_code ec, size_t n) {
    locked([&] {
      if (n > 0) w->err.feed(std::string_view(w->ebuf.data(), n));
      if (ec) {
        w->err.finish();
        w->stderr_eof = true;
        if (w->exited) w->timer.cancel();  // the stderr close timer is not needed
        return;
      }
      read_stderr(w);
    });
  });
}

void StdioRuntime::on_frame(const WorkerPtr& w, v1::Frame& f) {
  using K = v1::Frame::KindCase;
  const pid_t pid = w->child->pid();
  if (f.kind_case() == K::kLog) {
    on_log(w, f.log());
    return;
  }
  if (w->retired && f.kind_case() == K::kHello) return;  // retired while starting
  if (w->st == Worker::St::starting) {
    if (f.kind_case() != K::kHello) {
      fail_worker(w, std::string("protocol error: expected a Hello frame first, got ") +
                         frame_kind(f));
      return;
    }
    const v1::Hello& h = f.hello();
    if (h.protocol_version() != kProtocolVersion) {
      std::string why = "worker speaks protocol version " +
                        std::to_string(h.protocol_version()) + " (" +
                        std::string(clipped(h.sdk())) +
                        "); sluice speaks version " + std::to_string(kProtocolVersion);
      v1::Frame bye;
      bye.mutable_goodbye()->set_reason(why);
      std::string bytes;
      append_frame(bye, bytes);
      w->close_after_write = true;
      send(w, bytes);
      fail_worker(w, why);  // SIGKILL only after kill_grace: let it read the Goodbye
      return;
    }
    w->max_inflight = h.max_inflight();
    w->st = Worker::St::ready;
    w->ever_ready = true;
    w->timer.cancel();
    last_start_error_.clear();
    log().info("[fn {}] [worker {}] ready ({}, max_inflight {})", name_, pid,
               h.sdk().empty() ? "unknown sdk" : clipped(h.sdk()), h.max_inflight());
    v1::Frame ack;
    ack.mutable_hello_ack()->set_protocol_version(kProtocolVersion);
    ack.mutable_hello_ack()->set_function(name_);
    std::string bytes;
    append_frame(ack, bytes);
    send(w, bytes);
    dispatch();
    return;
  }
  switch (f.kind_case()) {
    case K::kResult: {
      v1::Result& res = *f.mutable_result();
      const uint64_t id = res.id();
      if (!w->calls.erase(id)) {
        fail_worker(w, "protocol error: a Result for invocation " + std::to_string(id) +
                           ", which this worker does not hold");
        return;
      }
      auto it = calls_.find(id);
      if (it == calls_.end()) return;
      if (it->second->timed_out) {  // late answer to a timed-out invocation
        calls_.erase(it);
        return;
      }
      backoff_.reset();
      InvocationResult r;
      switch (res.status()) {
        case v1::Result::OK: r.outcome = Outcome::success; break;
        case v1::Result::ERROR: r.outcome = Outcome::error; break;
        case v1::Result::REJECTED: r.outcome = Outcome::rejected; break;
        default:
          r.outcome = Outcome::error;
          r.message = "the worker sent a Result without a status";
      }
      // Everything the result carries counts: output, error message, emitted events
      // (each as encoded: data and attributes).
      size_t size = res.output().size() + res.error_message().size();
      for (const auto& e : res.emit()) size += e.ByteSizeLong();
      if (size > opts_.max_output_bytes) {
        r = failure(Outcome::error,
                    res.emit_size() > 0
                        ? "output and " + std::to_string(res.emit_size()) +
                              " emitted event(s) exceed " +
                              std::to_string(opts_.max_output_bytes) + " bytes"
                        : "output exceeds " + std::to_string(opts_.max_output_bytes) + " bytes");
      } else {
        r.output = std::move(*res.mutable_output());
        r.content_type = res.content_type();
        if (r.message.empty()) r.message = res.error_message();
        if (res.retry_after_ms() > 0) r.retry_after = Millis{res.retry_after_ms()};
        r.emitted.reserve(res.emit_size());
        for (auto& e : *res.mutable_emit()) r.emitted.push_back(from_proto(std::move(e)));
      }
      complete(id, std::move(r));
      calls_.erase(id);
      if (w->st == Worker::St::retiring && w->calls.empty()) retire(w);
      dispatch();
      return;
    }
    case K::kGoodbye:
      log().info("[fn {}] [worker {}] says goodbye: {}", name_, pid,
                 clipped(f.goodbye().reason()));
      if (w->st == Worker::St::ready) w->st = Worker::St::retiring;  // it will exit
      return;
    case K::kHello: fail_worker(w, "protocol error: a second Hello frame"); return;
    default:
      fail_worker(w, std::string("protocol error: a worker must not send a ") +
                         frame_kind(f) + " frame");
  }
}

// A Log frame: logged at its level, within the invocation's byte budget (or, for
// none, the worker's budget per window).
void StdioRuntime::on_log(const WorkerPtr& w, const v1::Log& l) {
  auto level = l.level() == v1::Log::ERROR  ? spdlog::level::err
               : l.level() == v1::Log::WARN ? spdlog::level::warn
               : l.level() == v1::Log::DEBUG ? spdlog::level::debug
                                             : spdlog::level::info;
  std::string_view msg = l.message();
  auto it = l.id() != 0 ? calls_.find(l.id()) : calls_.end();
  // A call already reported (timed out) is no longer one: its event may be gone.
  if (it == calls_.end() || !it->second->done) {
    if (w->logs.take(msg.size() + 1, w->prefix, "Log frames"))
      log().log(level, "{} {}", w->prefix, msg);
    return;
  }
  Call& c = *it->second;
  const size_t room = opts_.max_log_bytes - std::min(c.log_bytes, opts_.max_log_bytes);
  c.log_bytes += msg.size();
  if (msg.size() <= room) {
    log().log(level, "[fn {}] [event {}] {}", name_, c.ev->id, msg);
    return;
  }
  const size_t cut = msg.size() - room;
  log_dropped_.fetch_add(cut, std::memory_order_relaxed);
  if (room == 0) {  // reported in one line when the invocation completes
    c.log_dropped += cut;
    ++c.log_frames_dropped;
    return;
  }
  msg = msg.substr(0, room);
  while (!msg.empty() && (static_cast<unsigned char>(msg.back()) & 0xC0) == 0x80)
    msg.remove_suffix(1);  // do not end inside a UTF-8 sequence
  if (!msg.empty() && (static_cast<unsigned char>(msg.back()) & 0xC0) == 0xC0) msg.remove_suffix(1);
  log().log(level, "[fn {}] [event {}] {}… [truncated {} bytes]", name_, c.ev->id, msg,
            l.message().size() - msg.size());
}

void StdioRuntime::send(const WorkerPtr& w, std::string_view bytes) {
  auto& pipe = w->child->stdin_pipe();
  if (!w->writing && w->out_pending.empty() && pipe.is_open()) {
    // Straight into the pipe (non-blocking); the rest, or the error, goes through
    // async_write on the io thread.
    ssize_t k;
    do k = ::write(pipe.native_handle(), bytes.data(), bytes.size());
    while (k < 0 && errno == EINTR);
    if (k > 0) bytes.remove_prefix(static_cast<size_t>(k));
  }
  w->out_pending.append(bytes);
  flush_writes(w);
}

void StdioRuntime::flush_writes(const WorkerPtr& w) {
  if (w->writing) return;
  if (w->out_pending.empty()) {
    if (w->close_after_write) {
      error_code ignored;
      w->child->stdin_pipe().close(ignored);
    }
    return;
  }
  std::swap(w->out_pending, w->out_writing);
  w->writing = true;
  asio::async_write(w->child->stdin_pipe(), asio::buffer(w->out_writing),
                    [this, w, h = hold()](error_code ec, size_t) {
                      locked([&] {
                        w->writing = false;
                        w->out_writing.clear();
                        if (ec) {
                          if (ec != asio::error::operation_aborted &&
                              w->st != Worker::St::dying)
                            fail_worker(w, "writing to its stdin failed: " + ec.message());
                          return;
                        }
                        flush_writes(w);
                      });
                    });
}

void StdioRuntime::on_call_timeout(Call& c) {
  const uint64_t id = c.id;
  deadlines_.erase(c);
  if (c.timed_out || !c.done) return;
  c.timed_out = true;
  complete(id, failure(Outcome::timeout,
                       "timed out after " + std::to_string(timeout_.count()) + "ms"));
  WorkerPtr w = c.worker.lock();
  if (!c.sent || !w) {
    calls_.erase(id);  // still waiting for a worker: nothing to cancel
    return;
  }
  if (w->active > 0) --w->active;
  v1::Frame f;
  f.mutable_cancel()->set_id(id);
  std::string bytes;
  append_frame(f, bytes);
  send(w, bytes);
  // The worker may answer late; if it stays silent it is stuck: restart it.
  c.grace = std::make_unique<asio::steady_timer>(io(), opts_.kill_grace);
  c.grace->async_wait([this, id, weak = c.worker, h = hold()](error_code ec) {
    if (ec) return;
    locked([&] {
      auto it = calls_.find(id);
      if (it == calls_.end()) return;
      calls_.erase(it);
      if (WorkerPtr w = weak.lock(); w && w->calls.count(id))
        fail_worker(w, "invocation " + std::to_string(id) + " still unanswered " +
                           std::to_string(opts_.kill_grace.count()) +
                           "ms after its timeout (worker stuck)");
    });
  });
  dispatch();
}

void StdioRuntime::complete(uint64_t id, InvocationResult&& r) {
  auto it = calls_.find(id);
  if (it == calls_.end() || !it->second->done) return;
  Call& c = *it->second;
  deadlines_.erase(c);
  if (c.log_dropped > 0) {
    log().warn("[fn {}] [event {}] dropped {} bytes of Log frames ({} frame(s) after the "
               "{} bytes logged per invocation)",
               name_, c.ev->id, c.log_dropped, c.log_frames_dropped, opts_.max_log_bytes);
    c.log_dropped = 0;
  }
  if (c.sent && r.outcome != Outcome::timeout)
    if (WorkerPtr w = c.worker.lock(); w && w->active > 0) --w->active;
  finished_.push_back(Finished{std::move(c.done), std::move(r)});
  c.done = nullptr;
  // Leave the count first (as exec does), so stats() no longer counts it once the
  // callback runs; stop() still waits for the callback, since it joins this thread.
  if (--inflight_ == 0) {
    std::lock_guard lk(mu_);
    cv_.notify_all();
  }
}

void StdioRuntime::fail_worker(const WorkerPtr& w, const std::string& why) {
  if (w->st == Worker::St::dying) return;
  const bool graceful = w->close_after_write;  // a Goodbye is on its way
  w->st = Worker::St::dying;
  w->death = why;
  log().error("[fn {}] [worker {}] {}; killing it ({} invocation(s) held)", name_,
              w->child->pid(), why, w->active);
  if (!graceful) {
    w->child->signal_group(SIGKILL);
    return;
  }
  w->timer.expires_after(opts_.kill_grace);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (!ec) locked([&] { w->child->signal_group(SIGKILL); });
  });
}

void StdioRuntime::on_worker_exit(const WorkerPtr& w) {
  const std::string status = w->child->status()->describe();
  const bool was_ready = w->ever_ready;
  std::string reason = w->death.empty() ? status : w->death + " (" + status + ")";
  if (w->death.empty() && !w->retired)
    log().error("[fn {}] [worker {}] exited: {}", name_, w->child->pid(), status);
  w->st = Worker::St::dying;
  w->exited = true;
  w->timer.cancel();
  std::vector<uint64_t> held(w->calls.begin(), w->calls.end());
  w->calls.clear();
  for (uint64_t id : held) {
    complete(id, failure(Outcome::crash, "worker crashed: " + reason));
    calls_.erase(id);
  }
  error_code ignored;
  w->child->stdin_pipe().close(ignored);
  w->child->stdout_pipe().close(ignored);
  // stderr may still hold its last words (a traceback): read on until EOF, but not
  // forever (a process that left the group may hold the pipe).
  if (!w->stderr_eof) {
    w->timer.expires_after(Millis{2000});
    w->timer.async_wait([this, w, h = hold()](error_code ec) {
      if (!ec) locked([&] { w->child->close_pipes(); });
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
  for (const WorkerPtr& o : workers_) any_ready |= o->st == Worker::St::ready;
  if (!was_ready && !any_ready) {
    last_start_error_ = reason;
    fail_waiting(Outcome::error, "worker failed to start: " + reason);
  }
  if (!restart_pending_) {
    restart_pending_ = true;
    restart_timer_->expires_after(backoff_.next());
    restart_timer_->async_wait([this, h = hold()](error_code ec) {
      if (ec) return;
      locked([&] {
        restart_pending_ = false;
        maintain();
      });
    });
  }
}

void StdioRuntime::fail_waiting(Outcome o, const std::string& why) {
  std::deque<uint64_t> ids;
  ids.swap(waiting_);
  for (uint64_t id : ids) {
    auto it = calls_.find(id);
    if (it == calls_.end() || it->second->sent) continue;
    complete(id, failure(o, why));
    calls_.erase(id);
  }
}

void StdioRuntime::retire(const WorkerPtr& w) {
  if (w->st == Worker::St::dying) return;
  w->retired = true;
  if (w->st == Worker::St::starting || w->st == Worker::St::ready)
    w->st = Worker::St::retiring;
  if (!w->calls.empty()) return;  // retired when its last answer arrives
  v1::Frame bye;
  bye.mutable_goodbye()->set_reason("pool shrinking");
  std::string bytes;
  append_frame(bye, bytes);
  w->close_after_write = true;
  send(w, bytes);
  w->timer.expires_after(opts_.kill_grace);
  w->timer.async_wait([this, w, h = hold()](error_code ec) {
    if (!ec) locked([&] { w->child->signal_group(SIGKILL); });
  });
}

void StdioRuntime::resize(size_t workers) {
  asio::post(io(), [this, workers, h = hold()] {
    locked([&] {
      target_ = workers;
      const size_t keep =
          std::max(target_, waiting_.empty() && inflight_ == 0 ? 0 : size_t{1});
      size_t live = live_workers();
      while (live > keep) {
        // Retire a starting worker first, else the ready one holding the fewest calls.
        WorkerPtr pick;
        for (const WorkerPtr& w : workers_) {
          if (w->st != Worker::St::starting && w->st != Worker::St::ready) continue;
          if (!pick || (w->st == Worker::St::starting && pick->st != Worker::St::starting) ||
              (w->st == pick->st && w->active < pick->active))
            pick = w;
        }
        if (!pick) break;
        retire(pick);
        --live;
      }
      maintain();
    });
  });
}

void StdioRuntime::shutdown_workers() {
  restart_timer_->cancel();
  fail_waiting(Outcome::crash, "stopped");
  for (auto& [id, call] : calls_)
    if (call->grace) call->grace->cancel();
  std::vector<uint64_t> ids;
  for (auto& [id, call] : calls_) ids.push_back(id);
  for (uint64_t id : ids) complete(id, failure(Outcome::crash, "stopped"));
  for (const WorkerPtr& w : std::vector<WorkerPtr>(workers_)) {
    if (!w->calls.empty()) {
      w->child->signal_group(SIGKILL);
      continue;
    }
    retire(w);
  }
}

void StdioRuntime::stop(std::chrono::milliseconds grace) {
  if (on_io_thread())
    throw std::logic_error("StdioRuntime::stop() called on its loop's thread");
  {
    std::unique_lock lk(mu_);
    if (state_ == State::created) state_ = State::stopped;
    if (state_ == State::stopping) cv_.wait(lk, [&] { return state_ == State::stopped; });
    if (state_ == State::stopped) return;
    state_ = State::stopping;
    cv_.wait_for(lk, grace, [&] { return inflight_ == 0; });
  }
  asio::post(io(), [this, h = hold()] { locked([&] { shutdown_workers(); }); });
  {
    std::unique_lock lk(mu_);
    if (!cv_.wait_for(lk, opts_.kill_grace + Millis{5000}, [&] { return alive_ == 0; })) {
      lk.unlock();
      asio::post(io(), [this, h = hold()] {
        locked([&] {
          for (const WorkerPtr& w : workers_) w->child->signal_group(SIGKILL);
        });
      });
      lk.lock();
      cv_.wait_for(lk, Millis{10000}, [&] { return alive_ == 0; });
    }
  }
  asio::post(io(), [this, h = hold()] {
    locked([&] {
      // Destroying a ChildProcess SIGKILLs and reaps it and closes its descriptors,
      // so the handlers still pending on them end (operation_aborted) and run() returns.
      watchdog_off_ = true;
      watchdog_->cancel();
      restart_timer_->cancel();
      for (const WorkerPtr& w : workers_) {
        w->timer.cancel();
        w->child.reset();
      }
      deadlines_.clear();
      calls_.clear();
      workers_.clear();
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

PoolStats StdioRuntime::stats() const {
  PoolStats s{alive_.load(), inflight_.load()};
  s.stderr_dropped_bytes = stderr_dropped_.load(std::memory_order_relaxed);
  s.log_dropped_bytes = log_dropped_.load(std::memory_order_relaxed);
  return s;
}

std::vector<pid_t> StdioRuntime::worker_pids() const {
  std::lock_guard lk(mu_);
  return pids_;
}

}  // namespace sluice::workers
