#include "workers/exec_invocation.h"

#include "core/clock.h"

#include <signal.h>

#include <boost/asio/write.hpp>

#include "core/log_limit.h"
#include "workers/logger.h"

namespace sluice::workers {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

constexpr size_t kStdoutChunk = 64 * 1024;  // one pipe buffer
constexpr size_t kTailBytes = 1024;         // stderr kept for the error message
constexpr int kRejectedExit = 65;           // EX_DATAERR, sysexits.h
// How long a spawn failing for want of resources is retried when the function has
// no timeout.
constexpr Millis kMaxSpawnWait{60000};

// The last kTailBytes of stderr as one printable line: lines joined by " | ".
std::string tail_line(std::string_view t) {
  if (t.size() > kTailBytes) {
    t.remove_prefix(t.size() - kTailBytes);
    for (int i = 0; i < 3 && !t.empty() && (t.front() & 0xC0) == 0x80; ++i)
      t.remove_prefix(1);  // do not start inside a UTF-8 sequence
  }
  auto space = [](char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; };
  while (!t.empty() && space(t.front())) t.remove_prefix(1);
  while (!t.empty() && space(t.back())) t.remove_suffix(1);
  std::string out;
  out.reserve(t.size());
  for (char c : t) {
    if (c == '\n')
      out += " | ";
    else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
      out += ' ';
    else
      out += c;
  }
  return out;
}

std::string with_tail(std::string msg, const std::string& stderr_tail) {
  std::string t = tail_line(stderr_tail);
  if (!t.empty()) msg.append(": ").append(t);
  return msg;
}

}  // namespace

ExecRuntime::Invocation::Invocation(ExecRuntime& rt, uint64_t id, const Event& ev,
                                    InvokeCallback done)
    : rt_(rt),
      shard_(rt.next_shard()),
      id_(id),
      ev_(ev),
      done_(std::move(done)),
      ex_(shard_.io.get_executor()),
      deadline_(ex_),
      drain_(ex_) {}

void ExecRuntime::Invocation::start() {
  if (kill_ == Kill::stopped) {  // stop() came before the spawn
    finish(failure(Outcome::crash, "stopped"));
    return;
  }
  Environment env = rt_.env_;
  for (const auto& name : add_event_vars(env, ev_, rt_.name_))
    log().warn("[fn {}] [event {}] {} left out of the environment: its value contains NUL",
               rt_.name_, ev_.id, name);
  SpawnOptions so{rt_.command_, rt_.base_dir_, env.to_list(), rt_.limits_, rt_.exe_};
  so.stdin_data = &ev_.data;  // written before the child starts when it fits the pipe
  auto child = ChildProcess::spawn(asio::any_io_executor(ex_), so);
  if (!child && child.error().code == Errc::not_found && !so.exe.empty()) {
    so.exe.clear();  // gone since start(): look it up in PATH again
    child = ChildProcess::spawn(asio::any_io_executor(ex_), so);
  }
  if (!child) {
    std::string msg = child.error().message;
    if (child.error().retriable) {  // out of fds, processes or memory: wait, try again
      const auto now = std::chrono::steady_clock::now();
      if (first_spawn_ == std::chrono::steady_clock::time_point{}) first_spawn_ = now;
      const Millis bound = rt_.timeout_.count() > 0 ? rt_.timeout_ : kMaxSpawnWait;
      const auto waited = std::chrono::duration_cast<Millis>(now - first_spawn_);
      if (waited < bound && kill_ == Kill::none) {
        const Millis delay = std::min(spawn_backoff_.next(), bound - waited);
        if (auto quiet = rt_.exhausted_log_.allow())
          log().warn("[fn {}] [event {}] {}; trying again in {} ms (for up to {} ms){}",
                     rt_.name_, ev_.id, msg, delay.count(), bound.count(),
                     suppressed_note(*quiet));
        deadline_.expires_after(delay);
        deadline_.async_wait([self = shared_from_this()](error_code ec) {
          if (self->kill_ == Kill::stopped) {
            self->finish(failure(Outcome::crash, "stopped"));
            return;
          }
          if (!ec) self->start();
        });
        return;
      }
      msg += " (still failing after " + std::to_string(waited.count()) + " ms)";
    }
    rt_.note_spawn(&child.error());
    finish(failure(Outcome::error, std::move(msg)));
    return;
  }
  rt_.note_spawn(nullptr);
  child_ = std::move(child).value();
  ++rt_.workers_;
  child_->async_wait_exit(
      [self = shared_from_this()](const ExitStatus& st) { self->on_exit(st); });
  write_stdin();
  read_stdout();
  read_stderr();
  link_deadline();
}

void ExecRuntime::Invocation::write_stdin() {
  auto& in = child_->stdin_pipe();
  if (!in.is_open()) {  // spawn_process() wrote it all into the pipe and closed it
    stdin_done_ = true;
    return;
  }
  // EPIPE (the child exited or closed stdin without reading it all) is fine: the
  // exit status decides the outcome. SIGPIPE is ignored since start().
  asio::async_write(in, asio::buffer(ev_.data),
                    [self = shared_from_this()](error_code, size_t) {
                      error_code ignored;
                      self->child_->stdin_pipe().close(ignored);
                      self->stdin_done_ = true;
                      self->maybe_finish();
                    });
}

void ExecRuntime::Invocation::read_stdout() {
  // Read into a chunk of our own, not into output_ grown by a chunk each time: that
  // zero-filled 64 KiB per invocation, for functions that mostly print little.
  if (!chunk_) chunk_ = std::make_unique_for_overwrite<char[]>(kStdoutChunk);
  child_->stdout_pipe().async_read_some(
      asio::buffer(chunk_.get(), kStdoutChunk),
      [self = shared_from_this()](error_code ec, size_t n) {
        const size_t cap = self->rt_.opts_.max_output_bytes;
        if (n > 0 && !self->output_overflow_) {
          if (n > cap - self->output_.size()) {  // output_.size() <= cap until overflow
            self->output_overflow_ = true;
            self->output_.clear();
            self->child_->signal_group(SIGKILL);
          } else {
            self->output_.append(self->chunk_.get(), n);
          }
        }
        if (ec) {
          self->stdout_done_ = true;
          self->chunk_.reset();
          self->maybe_finish();
          return;
        }
        self->read_stdout();
      });
}

void ExecRuntime::Invocation::read_stderr() {
  child_->stderr_pipe().async_read_some(
      asio::buffer(err_buf_), [self = shared_from_this()](error_code ec, size_t n) {
        if (n > 0) self->on_stderr(std::string_view(self->err_buf_.data(), n));
        if (ec) {
          if (self->err_log_) self->err_log_->finish();
          self->stderr_done_ = true;
          self->maybe_finish();
          return;
        }
        self->read_stderr();
      });
}

void ExecRuntime::Invocation::on_stderr(std::string_view bytes) {
  err_tail_.append(bytes);
  if (err_tail_.size() > 2 * kTailBytes) err_tail_.erase(0, err_tail_.size() - kTailBytes - 3);
  if (!err_log_)
    err_log_.emplace("[fn " + rt_.name_ + "] [event " + ev_.id + "]", "stderr",
                     rt_.opts_.stderr_budget, &rt_.stderr_dropped_);
  err_log_->feed(bytes);
}

void ExecRuntime::Invocation::link_deadline() {
  if (rt_.timeout_.count() > 0) shard_.deadlines.push_back(*this, rt_.timeout_);
}

void ExecRuntime::Invocation::unlink_deadline() { shard_.deadlines.erase(*this); }

void ExecRuntime::Invocation::on_timeout() {
  unlink_deadline();
  if (!child_ || child_->reaped() || kill_ != Kill::none) return;
  kill_ = Kill::timeout;
  child_->signal_group(SIGTERM);
  const Millis grace = rt_.opts_.kill_grace;
  if (grace.count() <= 0) {
    sigkill_sent_ = true;
    child_->signal_group(SIGKILL);
    return;
  }
  deadline_.expires_after(grace);
  deadline_.async_wait([self = shared_from_this()](error_code ec) {
    if (ec || self->child_->reaped()) return;
    self->sigkill_sent_ = true;
    self->child_->signal_group(SIGKILL);
  });
}

void ExecRuntime::Invocation::on_exit(const ExitStatus&) {
  --rt_.workers_;
  unlink_deadline();
  deadline_.cancel();
  if (!(stdin_done_ && stdout_done_ && stderr_done_)) {
    drain_.expires_after(rt_.opts_.pipe_drain_timeout);
    drain_.async_wait([self = shared_from_this()](error_code ec) {
      if (ec || self->finished_) return;
      log().warn("[fn {}] [event {}] pipes still open {} ms after exit; closing them",
                 self->rt_.name_, self->ev_.id, self->rt_.opts_.pipe_drain_timeout.count());
      self->child_->close_pipes();
    });
  }
  maybe_finish();
}

void ExecRuntime::Invocation::abort_stopped() {
  if (finished_) return;
  if (!child_) {  // waiting to try the spawn again: the timer's handler reports it
    kill_ = Kill::stopped;
    deadline_.cancel();
    return;
  }
  kill_ = Kill::stopped;
  unlink_deadline();
  deadline_.cancel();
  if (!child_->reaped())
    child_->signal_group(SIGKILL);
  else
    child_->close_pipes();
}

void ExecRuntime::Invocation::force_finish() {
  if (finished_) return;
  if (child_ && !child_->reaped()) --rt_.workers_;
  child_.reset();  // SIGKILLs the group and reaps the leader
  finish(failure(Outcome::crash, "stopped"));
}

void ExecRuntime::Invocation::maybe_finish() {
  if (finished_ || !child_ || !child_->reaped()) return;
  if (stdin_done_ && stdout_done_ && stderr_done_) finish(result());
}

InvocationResult ExecRuntime::Invocation::result() {
  const ExitStatus& st = *child_->status();
  if (kill_ == Kill::stopped) return failure(Outcome::crash, "stopped");
  if (kill_ == Kill::timeout) {
    std::string msg = "timed out after " + std::to_string(rt_.timeout_.count()) + "ms";
    if (sigkill_sent_)
      msg += " (SIGKILL after ignoring SIGTERM for " +
             std::to_string(rt_.opts_.kill_grace.count()) + "ms)";
    return failure(Outcome::timeout, with_tail(std::move(msg), err_tail_));
  }
  if (output_overflow_)
    return failure(Outcome::error, "output exceeds " +
                                       std::to_string(rt_.opts_.max_output_bytes) + " bytes");
  if (st.success()) {
    InvocationResult r;
    r.outcome = Outcome::success;
    if (output_.capacity() > 2 * output_.size() + 64) output_.shrink_to_fit();
    r.output = std::move(output_);
    return r;
  }
  if (st.kind == ExitStatus::Kind::exited && st.code == kRejectedExit)
    return failure(Outcome::rejected, with_tail("rejected (exit status 65)", err_tail_));
  Outcome o = st.kind == ExitStatus::Kind::signaled ? Outcome::crash : Outcome::error;
  return failure(o, with_tail(st.describe(), err_tail_));
}

void ExecRuntime::Invocation::finish(InvocationResult&& r) {
  finished_ = true;
  unlink_deadline();
  deadline_.cancel();
  drain_.cancel();
  if (child_) child_->close_pipes();  // no fd outlives the callback
  InvokeCallback done = std::move(done_);
  // Leave the live table first, so stats() no longer counts this invocation once the
  // callback runs; stop() still waits for the callback, since it joins the threads.
  rt_.finished(id_);
  done(std::move(r));
}

}  // namespace sluice::workers
