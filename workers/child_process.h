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
// Threading: not thread-safe. Every member is used on the executor given to
// spawn() (a strand when the io_context runs on several threads); the owner keeps
// the object alive until its pending handlers have run.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <functional>
#include <memory>
#include <optional>

#include "core/result.h"
#include "workers/process.h"

namespace sluice::workers {

class ChildProcess {
 public:
  using Descriptor = boost::asio::posix::stream_descriptor;
  using ExitHandler = std::function<void(const ExitStatus&)>;

  static Result<std::unique_ptr<ChildProcess>> spawn(const boost::asio::any_io_executor& ex,
                                                     const SpawnOptions& opts);
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

  pid_t pid_;
  Descriptor in_, out_, err_, pidfd_;
  std::optional<ExitStatus> status_;
};

}  // namespace sluice::workers
