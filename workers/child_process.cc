#include "workers/child_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <boost/asio/error.hpp>

namespace sluice::workers {

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

ChildProcess::~ChildProcess() {
  if (status_) return;
  workers::signal_group(pid_, SIGKILL);
  reap_blocking(pid_);
}

void ChildProcess::signal_group(int sig) {
  if (!status_) workers::signal_group(pid_, sig);
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
  status_ = *st;
  boost::system::error_code ignored;
  pidfd_.close(ignored);
  on_exit(*status_);
}

void ChildProcess::close_pipes() {
  boost::system::error_code ignored;
  in_.close(ignored);
  out_.close(ignored);
  err_.close(ignored);
}

}  // namespace sluice::workers
