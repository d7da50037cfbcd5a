#include "workers/stdio_runtime.h"

#include "core/clock.h"

#include <errno.h>
#include <unistd.h>

#include <array>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <unordered_set>

#include "event.pb.h"
#include "workers/child_process.h"
#include "workers/logger.h"

namespace sluice::workers {

namespace asio = boost::asio;
using boost::system::error_code;

struct StdioRuntime::Worker final : PoolWorker {
  Worker(asio::io_context& io, LogBudgetOptions budget, std::atomic<uint64_t>* log_dropped)
      : PoolWorker(io), logs(budget, log_dropped) {}
  size_t load() const override { return active; }
  bool holds_calls() const override { return !calls.empty(); }

  uint32_t max_inflight = 0;
  std::unordered_set<uint64_t> calls;  // sent, not answered (incl. timed-out ones)
  size_t active = 0;                   // of `calls`, those not yet reported
  FrameReader reader;
  v1::Frame frame;
  std::array<char, 64 * 1024> rbuf{};
  std::string out_pending, out_writing;
  bool writing = false;
  LogBudget logs;  // its Log frames that belong to no invocation
};

namespace {

// A string a worker sent that sluice logs once (its sdk name, a Goodbye reason): cut
// at 256 bytes, so that a frame of megabytes does not become a log line of megabytes.
std::string_view clipped(std::string_view s) { return s.substr(0, 256); }

PoolOptions pool_options(const FunctionConfig& fn, const StdioOptions& o) {
  PoolOptions p{o.kill_grace, o.restart_initial, o.restart_max, o.stderr_budget,
                o.initial_workers, o.spin};
  p.worker_template = fn.worker_template;
  return p;
}

}  // namespace

StdioRuntime::StdioRuntime(const FunctionConfig& fn, std::string base_dir, StdioOptions opts)
    : name_(fn.name),
      timeout_(fn.timeout),
      opts_(opts),
      pool_("stdio", fn, std::move(base_dir), pool_options(fn, opts), *this) {}

StdioRuntime::~StdioRuntime() { stop(Millis{0}); }

void StdioRuntime::share_loop(std::shared_ptr<asio::io_context> loop) {
  pool_.share_loop(std::move(loop));
}

Result<void> StdioRuntime::start() { return pool_.start(); }

void StdioRuntime::on_starting() { watchdog_.emplace(io()); }

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

void StdioRuntime::guarded(const std::function<void()>& f) { locked(f); }

void StdioRuntime::invoke(const Event& ev, InvokeCallback done) {
  const char* refusal;
  {
    std::lock_guard pool(state_mu_);  // a stop() cannot come between admit and submit
    refusal = pool_.admit(done);
    if (!refusal) {
      submit(std::make_unique<Call>(next_call_++, ev, std::move(done)));
      // Callbacks run on the io thread, never inside invoke().
      if (!finished_.empty()) asio::post(io(), [this, h = hold()] { locked([] {}); });
      return;
    }
  }
  if (*refusal) done(failure(Outcome::error, refusal));
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
    const PoolWorkerPtr* pick = nullptr;
    for (const PoolWorkerPtr& pw : pool_.workers()) {
      auto& w = static_cast<Worker&>(*pw);
      if (w.st != Worker::St::ready) continue;
      if (w.max_inflight && w.active >= w.max_inflight) continue;
      if (!pick || w.active < static_cast<Worker&>(**pick).active) pick = &pw;
    }
    if (!pick) break;
    WorkerPtr best = std::static_pointer_cast<Worker>(*pick);
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
  pool_.maintain();
}

Result<PoolWorkerPtr> StdioRuntime::make_worker(Environment&) {
  return PoolWorkerPtr(std::make_shared<Worker>(io(), opts_.stderr_budget, &log_dropped_));
}

void StdioRuntime::on_spawn(const PoolWorkerPtr& pw) {
  auto w = std::static_pointer_cast<Worker>(pw);
  // invoke() writes from its own thread: a full pipe must give EAGAIN, not block it.
  error_code nb;
  w->child->stdin_pipe().native_non_blocking(true, nb);
  read_stdout(w);
}

std::string StdioRuntime::not_ready(const PoolWorker&) {
  return "no Hello frame within " + std::to_string(pool_.start_timeout().count()) +
         "ms of start (does the command speak the sluice stdio protocol?)";
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
        pool_.fail_worker(w, "protocol error: " + w->reader.error());
        return;
      }
      on_frame(w, w->frame);
    }
  }
  if (ec) {
    // A retired worker is exiting (its kill_grace timer covers a stuck one).
    if (w->st != Worker::St::dying && !w->retired) pool_.fail_worker(w, "closed its stdout");
    return;
  }
  read_stdout(w);
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
      pool_.fail_worker(w, std::string("protocol error: expected a Hello frame first, got ") +
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
      w->goodbye_sent = true;
      send(w, bytes);
      pool_.fail_worker(w, why);  // SIGKILL only after kill_grace: let it read the Goodbye
      return;
    }
    w->max_inflight = h.max_inflight();
    pool_.ready(*w);
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
        pool_.fail_worker(w, "protocol error: a Result for invocation " + std::to_string(id) +
                           ", which this worker does not hold");
        return;
      }
      auto it = calls_.find(id);
      if (it == calls_.end()) return;
      if (it->second->timed_out) {  // late answer to a timed-out invocation
        calls_.erase(it);
        return;
      }
      pool_.answered();
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
      if (w->st == Worker::St::retiring && w->calls.empty()) pool_.retire(w);
      dispatch();
      return;
    }
    case K::kGoodbye:
      log().info("[fn {}] [worker {}] says goodbye: {}", name_, pid,
                 clipped(f.goodbye().reason()));
      if (w->st == Worker::St::ready) w->st = Worker::St::retiring;  // it will exit
      return;
    case K::kHello: pool_.fail_worker(w, "protocol error: a second Hello frame"); return;
    default:
      pool_.fail_worker(w, std::string("protocol error: a worker must not send a ") +
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
    if (w->goodbye_sent) {
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
                            pool_.fail_worker(w, "writing to its stdin failed: " + ec.message());
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
        pool_.fail_worker(w, "invocation " + std::to_string(id) + " still unanswered " +
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
  pool_.call_done();
}

void StdioRuntime::on_exit(const PoolWorkerPtr& pw, const std::string& reason) {
  auto w = std::static_pointer_cast<Worker>(pw);
  std::vector<uint64_t> held(w->calls.begin(), w->calls.end());
  w->calls.clear();
  for (uint64_t id : held) {
    complete(id, failure(Outcome::crash, "worker crashed: " + reason));
    calls_.erase(id);
  }
  error_code ignored;
  w->child->stdin_pipe().close(ignored);
  w->child->stdout_pipe().close(ignored);
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

void StdioRuntime::goodbye(const PoolWorkerPtr& pw) {
  auto w = std::static_pointer_cast<Worker>(pw);
  v1::Frame bye;
  bye.mutable_goodbye()->set_reason("pool shrinking");
  std::string bytes;
  append_frame(bye, bytes);
  w->goodbye_sent = true;
  send(w, bytes);
}

void StdioRuntime::resize(size_t workers) { pool_.resize(workers); }

void StdioRuntime::shutdown() {
  fail_waiting(Outcome::crash, "stopped");
  for (auto& [id, call] : calls_)
    if (call->grace) call->grace->cancel();
  std::vector<uint64_t> ids;
  for (auto& [id, call] : calls_) ids.push_back(id);
  for (uint64_t id : ids) complete(id, failure(Outcome::crash, "stopped"));
}

void StdioRuntime::teardown() {
  watchdog_off_ = true;
  watchdog_->cancel();
  deadlines_.clear();
  calls_.clear();
}

void StdioRuntime::stop(std::chrono::milliseconds grace) { pool_.stop(grace); }

PoolStats StdioRuntime::stats() const {
  PoolStats s = pool_.stats();
  s.log_dropped_bytes = log_dropped_.load(std::memory_order_relaxed);
  return s;
}

std::vector<pid_t> StdioRuntime::worker_pids() const { return pool_.pids(); }

}  // namespace sluice::workers
