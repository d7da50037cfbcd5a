#include "workers/child_process.h"

#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/error.hpp>
#include <boost/asio/post.hpp>

namespace sluice::workers {

void ExitReports::watch(pid_t pid) {
  if (!closed_) watched_.insert(pid);
}

bool ExitReports::report(pid_t pid, const ExitStatus& st) {
  if (!watched_.count(pid)) return false;
  auto it = waiting_.find(pid);
  if (it == waiting_.end()) {
    reported_[pid] = st;
    return true;
  }
  Waiter w = std::move(it->second);
  waiting_.erase(it);
  watched_.erase(pid);
  w(st);
  return true;
}

void ExitReports::await(pid_t pid, Waiter w) {
  if (auto it = reported_.find(pid); it != reported_.end()) {
    ExitStatus st = it->second;
    reported_.erase(it);
    watched_.erase(pid);
    w(st);
    return;
  }
  if (closed_) {
    w(ExitStatus{});
    return;
  }
  waiting_[pid] = std::move(w);
}

void ExitReports::forget(pid_t pid) {
  watched_.erase(pid);
  reported_.erase(pid);
  waiting_.erase(pid);
}

void ExitReports::close() {
  closed_ = true;
  watched_.clear();
  std::map<pid_t, Waiter> waiting = std::move(waiting_);
  waiting_.clear();
  for (auto& [pid, w] : waiting) w(ExitStatus{});
}

Result<std::unique_ptr<ChildProcess>> ChildProcess::spawn(
    const boost::asio::any_io_executor& ex, const SpawnOptions& opts) {
  SLUICE_TRY(p, spawn_process(opts));
  return std::unique_ptr<ChildProcess>(new ChildProcess(ex, std::move(p)));
}

ChildProcess::ChildProcess(const boost::asio::any_io_executor& ex, SpawnedProcess&& p)
    : pid_(p.pid),
      in_(ex),
      out_(ex, p.stdout_r.release()),
      err_(ex, p.stderr_r.release()),
      pidfd_(ex, p.pidfd.release()) {
  if (p.stdin_w) in_.assign(p.stdin_w.release());  // empty when stdin was prefilled
}

std::unique_ptr<ChildProcess> ChildProcess::adopt(const boost::asio::any_io_executor& ex,
                                                  SpawnedProcess&& p,
                                                  std::shared_ptr<ExitReports> reports) {
  std::unique_ptr<ChildProcess> c(new ChildProcess(ex, std::move(p)));
  c->reports_ = std::move(reports);
  c->reports_->watch(c->pid_);
  c->alive_ = std::make_shared<bool>(true);
  return c;
}

ChildProcess::~ChildProcess() {
  if (alive_) *alive_ = false;
  if (status_) return;
  if (reports_) {  // not ours to reap: the template does
    signal_group(SIGKILL);
    reports_->forget(pid_);
    return;
  }
  workers::signal_group(pid_, SIGKILL);
  reap_blocking(pid_);
}

void ChildProcess::signal_group(int sig) {
  if (status_) return;
  if (!reports_) {
    workers::signal_group(pid_, sig);
    return;
  }
  // Adopted: the pidfd names the leader even if its pid were reused; the group is
  // signalled by id only while the leader is known alive (it holds the id).
  if (leader_gone_) return;
  ::syscall(SYS_pidfd_send_signal, pidfd_.native_handle(), sig, nullptr, 0);
  workers::signal_group(pid_, sig);
}

void ChildProcess::async_wait_exit(ExitHandler on_exit) {
  pidfd_.async_wait(Descriptor::wait_read,
                    [this, on_exit = std::move(on_exit)](boost::system::error_code ec) mutable {
                      // Aborted only when the pidfd is closed, i.e. during destruction.
                      if (ec == boost::asio::error::operation_aborted) return;
                      on_pidfd_readable(std::move(on_exit));
                    });
}

void ChildProcess::on_pidfd_readable(ExitHandler on_exit) {
  if (reports_) {
    // Adopted: readable means the leader exited (a pidfd is never readable before).
    // Kill what is left of its group at once (the template reaps the leader soon, and
    // its pid may be reused after that), then wait for the template's report.
    workers::signal_group(pid_, SIGKILL);
    leader_gone_ = true;
    report_timer_.emplace(pidfd_.get_executor(), std::chrono::seconds(1));
    auto shared = std::make_shared<ExitHandler>(std::move(on_exit));
    // The report may come inside a handler of the template's (the caller's exclusive
    // section): the exit handler runs in a handler of its own.
    reports_->await(pid_, [this, shared, alive = alive_](const ExitStatus& st) {
      boost::asio::post(pidfd_.get_executor(), [this, shared, alive, st] {
        if (*alive && !status_) finish(st, *shared);
      });
    });
    report_timer_->async_wait([this, shared](boost::system::error_code ec) {
      if (ec || status_) return;
      reports_->forget(pid_);
      finish(ExitStatus{}, *shared);
    });
    return;
  }
  // Readiness can be spurious: confirm the leader exited WITHOUT reaping it (WNOWAIT),
  // or a running function would be killed below.
  siginfo_t si{};
  if (::waitid(P_PID, static_cast<id_t>(pid_), &si, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      si.si_pid == 0) {
    async_wait_exit(std::move(on_exit));
    return;
  }
  // The leader is a zombie now, so its pid still names this group: kill stragglers.
  workers::signal_group(pid_, SIGKILL);
  std::optional<ExitStatus> st = try_reap(pid_);
  if (!st) {  // cannot happen after waitid said it exited; wait again rather than guess
    async_wait_exit(std::move(on_exit));
    return;
  }
  finish(*st, on_exit);
}

void ChildProcess::finish(const ExitStatus& st, ExitHandler& on_exit) {
  status_ = st;
  boost::system::error_code ignored;
  pidfd_.close(ignored);
  if (report_timer_) report_timer_->cancel();
  on_exit(*status_);
}

void ChildProcess::close_pipes() {
  boost::system::error_code ignored;
  in_.close(ignored);
  out_.close(ignored);
  err_.close(ignored);
}

}  // namespace sluice::workers
