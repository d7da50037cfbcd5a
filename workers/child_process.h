// A spawned child process driven by Boost.Asio: its three pipes as stream
// descriptors and its exit as an asynchronous wait on a pidfd. Reused by every
// process runtime (exec now; stdio and http later).
//
// Lifecycle: spawn() -> reads/writes on the pipes, async_wait_exit() -> the exit
// handler runs once the child has been reaped -> destruction. When the group leader
// exits, whatever else is still running in its process group (background children
// it left behind) is SIGKILLed before the leader is reaped: a function's process
// group never outlives the function, and its pipes reach EOF.
// If destroyed before the child was reaped, the destructor SIGKILLs the group and
// reaps the leader (blocking; the kill makes that short), so no zombie is left.
//
// A child *adopted* from a worker template (worker_template.h) is not sluice's child
// but the template's: sluice holds a pidfd the template opened right after the fork
// (so the pid cannot have been reused), signals the leader through it and the group by
// its id while the leader lives, and learns the exit status from the template's report
// (ExitReports) instead of waitpid: "exit status unknown" when the template is gone or
// has not reported within a second. The destructor SIGKILLs the group without reaping.
//
// Threading: not thread-safe. Every member is used on the executor given to
// spawn() (a strand when the io_context runs on several threads); the owner keeps
// the object alive until its pending handlers have run.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include "core/result.h"
#include "workers/process.h"

namespace sluice::workers {

// The exit statuses a worker template reports for the children it forked, for the
// ChildProcesses adopted from it. Only a watched pid's report is kept (one per pid), so
// a template reporting pids it never forked cannot grow it. On the loop that reads the
// template's socket, like those ChildProcesses.
class ExitReports {
 public:
  using Waiter = std::function<void(const ExitStatus&)>;
  // An adopted child's pid: its report is expected (until taken or forgotten).
  void watch(pid_t pid);
  // False (and dropped) when `pid` is not watched: never adopted, already taken or
  // forgotten (a worker sluice destroyed before the template reported it), or closed.
  bool report(pid_t pid, const ExitStatus& st);
  // Calls `w` with the status once reported (at once if it was, or once closed).
  void await(pid_t pid, Waiter w);
  void forget(pid_t pid);
  // The template is gone: every waiter, now and later, gets Kind::unknown.
  void close();

 private:
  std::set<pid_t> watched_;
  std::map<pid_t, ExitStatus> reported_;
  std::map<pid_t, Waiter> waiting_;
  bool closed_ = false;
};

class ChildProcess {
 public:
  using Descriptor = boost::asio::posix::stream_descriptor;
  using ExitHandler = std::function<void(const ExitStatus&)>;

  static Result<std::unique_ptr<ChildProcess>> spawn(const boost::asio::any_io_executor& ex,
                                                     const SpawnOptions& opts);
  // A child forked by a worker template; `p.pidfd` is the template's pidfd of it.
  static std::unique_ptr<ChildProcess> adopt(const boost::asio::any_io_executor& ex,
                                             SpawnedProcess&& p,
                                             std::shared_ptr<ExitReports> reports);
  bool adopted() const { return reports_ != nullptr; }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess();

  pid_t pid() const { return pid_; }  // also the process group id
  bool reaped() const { return status_.has_value(); }
  const std::optional<ExitStatus>& status() const { return status_; }

  Descriptor& stdin_pipe() { return in_; }  // not open when SpawnOptions::stdin_data fit
  Descriptor& stdout_pipe() { return out_; }
  Descriptor& stderr_pipe() { return err_; }

  // Sends `sig` to the whole process group; a no-op once the leader was reaped
  // (its group was SIGKILLed then, and the id may be reused later).
  void signal_group(int sig);

  // Calls `on_exit` once, after the leader exited, the rest of its group was
  // SIGKILLed and the leader was reaped. Call at most once.
  void async_wait_exit(ExitHandler on_exit);

  // Closes the three pipes; pending reads/writes complete with operation_aborted.
  void close_pipes();

 private:
  ChildProcess(const boost::asio::any_io_executor& ex, SpawnedProcess&& p);
  void on_pidfd_readable(ExitHandler on_exit);
  void finish(const ExitStatus& st, ExitHandler& on_exit);

  pid_t pid_;
  Descriptor in_, out_, err_, pidfd_;
  std::optional<ExitStatus> status_;
  std::shared_ptr<ExitReports> reports_;  // adopted only
  bool leader_gone_ = false;              // adopted: the pidfd said it exited
  std::optional<boost::asio::steady_timer> report_timer_;
  std::shared_ptr<bool> alive_;           // adopted: false once destroyed (posted handlers)
};

}  // namespace sluice::workers
