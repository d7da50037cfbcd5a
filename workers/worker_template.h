// A worker template: one pre-started process of a stdio function's command that has
// done its start-up (interpreter, imports, the user's module) and forks a new worker on
// request, so a worker is ready in the time of a fork instead of an interpreter start.
// ProcessPool keeps one per pool when the protocol asks for it (stdio: a worker whose
// Hello names the Python SDK); workers/README.md "Worker templates" has the design.
//
// The wire (the template's stdin is one end of an AF_UNIX SOCK_SEQPACKET pair; it was
// started with SLUICE_TEMPLATE=1 in its environment, else the same as a worker):
//   template -> sluice  "ready <pid>"          once its start-up is done
//   sluice -> template  "fork" + SCM_RIGHTS [stdin, stdout, stderr] of the new worker
//   template -> sluice  "forked <pid>" + SCM_RIGHTS [a pidfd of it] | "error <text>"
//   template -> sluice  "exit <pid> <wait status>" once it reaped a worker it forked
// Each datagram is parsed by parse_template_message (template_message.h, the exact
// forms and bounds); anything else is ignored with a warning (those warnings within a
// budget like the template's stderr), and its fds closed.
// A command that does not know the flag starts as a worker: its Hello on stdout (or its
// exit, or silence until start_timeout) before "ready" marks the command unsupported,
// and the pool spawns as before. fork() waits for the answer at most `fork_timeout`;
// a template that misses it is killed. Whatever fails, the caller spawns instead.
//
// Threads: everything on the pool's loop, inside the protocol's guarded section (the
// pool wraps every handler given here with `Hooks`). fork() blocks that thread for the
// template's answer (a fork: well under a millisecond on an idle machine).
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/result.h"
#include "workers/child_process.h"
#include "workers/pool_util.h"
#include "workers/process.h"

namespace sluice::workers {

class WorkerTemplate {
 public:
  enum class St { starting, ready, unsupported, dead };

  // How the template's handlers run: wrap(f) returns a handler that holds the loop
  // and runs f inside the protocol's section. on_change is called (guarded) on every
  // change of state().
  struct Hooks {
    std::function<std::function<void()>(std::function<void()>)> wrap;
    std::function<void()> on_change;
  };

  WorkerTemplate(boost::asio::io_context& io, std::string fn_name, Millis start_timeout,
                 Millis fork_timeout, LogBudgetOptions stderr_budget,
                 std::atomic<uint64_t>* dropped, Hooks hooks);
  WorkerTemplate(const WorkerTemplate&) = delete;
  WorkerTemplate& operator=(const WorkerTemplate&) = delete;
  ~WorkerTemplate();  // kills and reaps the template; adopted workers live on

  // Spawns the template (`opts` as for a worker; SLUICE_TEMPLATE=1 is added).
  Result<void> start(SpawnOptions opts);
  St state() const { return st_; }
  pid_t pid() const { return child_ ? child_->pid() : -1; }

  // A new worker forked from the ready template, adopted; an error (and the template
  // killed when it did not answer in time) otherwise: the caller spawns instead.
  Result<std::unique_ptr<ChildProcess>> fork();

 private:
  void read_socket();
  void read_stdout();
  void read_stderr();
  bool take_message(int flags);  // one message; false when none waits or the socket died
  void handle(std::string_view datagram, int* fds, size_t nfds);  // closes the fds it does not keep
  void become(St st, const std::string& why);

  boost::asio::io_context& io_;
  const std::string name_;
  const Millis start_timeout_;
  const Millis fork_timeout_;
  Hooks hooks_;
  std::string prefix_;
  std::unique_ptr<ChildProcess> child_;
  std::optional<boost::asio::posix::stream_descriptor> sock_;
  boost::asio::steady_timer timer_;  // the start deadline
  std::shared_ptr<ExitReports> reports_ = std::make_shared<ExitReports>();
  std::optional<OutputLines> err_;
  LogBudgetOptions stderr_budget_;
  LogBudget bad_log_;  // warnings about bad control messages, bounded like its stderr
  std::atomic<uint64_t>* dropped_;
  St st_ = St::starting;
  // fork() waiting for its answer: what came (pid and pidfd; or the error text)
  bool awaiting_fork_ = false;
  std::optional<std::pair<pid_t, int>> forked_;
  std::optional<std::string> fork_error_;
  std::array<char, 4096> buf_{};
  std::array<char, 4096> ebuf_{};
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // handlers outliving this
};

// Whether a fork answer naming `pid` with `pidfd` may be adopted. Signals go to the
// pid's group: it must be the process the pidfd names, leading a group of its own, and
// never 1 (whose "group" -1 would be every process). The error says why not.
Result<void> check_fork_answer(pid_t pid, int pidfd);

}  // namespace sluice::workers
