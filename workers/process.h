// Spawning a child process without a shell: the low-level layer every process
// runtime (exec, stdio, http) builds on. No Asio here; see child_process.h for the
// asynchronous wrapper.
//
// What spawn_process() guarantees:
//   - argv is executed directly (execve of `exe`, which the exec runtime looks up
//     once, or of argv[0] looked up in sluice's PATH at spawn time); no shell, no
//     word splitting. The child is started with clone(CLONE_VM | CLONE_VFORK), as
//     posix_spawn does, on a stack reused per thread, and between clone and execve
//     makes raw system calls only: prctl, getppid, setpgid, signal dispositions,
//     dup3, chdir, prlimit, close_range, sigprocmask. The parent waits until the
//     child has exec'd; a failure comes back with its errno.
//   - The child gets SIGKILL when the calling *thread* exits (PR_SET_PDEATHSIG), so
//     sluice dying by kill -9 takes its function processes along: call this only on
//     a thread that outlives the process it starts (a runtime's io thread or loop).
//   - stdin, stdout and stderr are pipes (stdin is /dev/null when stdin_data is
//     given and empty). Every pipe end is created O_CLOEXEC
//     (pipe2), and the child additionally closes every fd >= 3 before exec, so
//     concurrent spawns never inherit each other's pipe ends (which would keep a
//     pipe from reaching EOF).
//   - The child leads its own process group (pgid == pid), so the whole group can be
//     signalled with kill(-pid, sig).
//   - Signal mask emptied; every signal that was caught or ignored in sluice when it
//     first spawned, and the commonly handled ones (SIGPIPE, which sluice ignores,
//     SIGINT, SIGTERM, SIGHUP, SIGCHLD, ...), reset to default. (Caught signals are
//     reset by execve anyway; an *ignored* one would stay ignored. A signal that
//     sluice starts to ignore later, outside that list, would be inherited.)
//   - Working directory `cwd` (checked only when the spawn failed, to name it),
//     environment exactly `env` (see environment.h).
//   - A pidfd (pidfd_open) that becomes readable when the child exits.
//
// Threading: free functions, safe from any thread. The returned SpawnedProcess is a
// plain owning value; whoever holds it must reap the child (waitpid) exactly once.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/result.h"

namespace sluice::workers {

// Owns one file descriptor; closes it on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  explicit operator bool() const noexcept { return fd_ >= 0; }
  int release() noexcept;
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// How a child ended, decoded from a waitpid status.
struct ExitStatus {
  enum class Kind { exited, signaled, unknown };
  Kind kind = Kind::unknown;
  int code = 0;         // exit code (exited) or signal number (signaled)
  bool core_dumped = false;

  static ExitStatus from_wait_status(int status);
  bool success() const { return kind == Kind::exited && code == 0; }
  // "exit status 3", "killed by signal SIGSEGV (core dumped)", "exit status unknown".
  std::string describe() const;
};

// "SIGSEGV", "SIGKILL", ...; "signal 42" for anything without a name.
std::string signal_name(int sig);

// setrlimit() values applied in the child before exec; 0 = keep sluice's own limit.
struct ProcessLimits {
  uint64_t memory_bytes = 0;  // RLIMIT_DATA
  uint64_t open_files = 0;    // RLIMIT_NOFILE
  uint64_t cpu_seconds = 0;   // RLIMIT_CPU (soft); the hard limit is one second more
  // SCHED_BATCH: the child does not preempt the running thread when it wakes (the
  // dispatcher, which wakes it with each event); same CPU share otherwise.
  bool sched_batch = false;
  bool any() const { return memory_bytes || open_files || cpu_seconds; }
};

inline ProcessLimits limits_of(const FunctionConfig& fn) {
  const LimitsConfig& l = fn.limits;
  return ProcessLimits{l.memory, l.open_files, l.cpu_seconds,
                       fn.scheduling == Scheduling::batch};
}

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] looked up in PATH unless it has a '/'
  std::string cwd;                // empty = sluice's own working directory
  std::vector<std::string> env;   // the complete environment, "NAME=value" each
  ProcessLimits limits{};         // with any limit set, see spawn_process()
  // The executable, already looked up (resolve_command): spares the child the PATH
  // search at every spawn. Empty = look argv[0] up in PATH at spawn time.
  std::string exe{};
  // Written into the stdin pipe before the child starts, when it fits in the pipe's
  // buffer (an empty pipe takes that much without blocking); the write end is then
  // closed and SpawnedProcess::stdin_w is empty: the child reads these bytes, then
  // EOF. Spares the caller an event-loop registration and a write per spawn. When it
  // does not fit, stdin_w is open and the caller writes it. Empty: stdin is
  // /dev/null (no pipe). Null = stdin is a pipe left open for the caller.
  const std::string* stdin_data = nullptr;
  // >= 0: the child's stdin is this descriptor (the caller keeps and closes it; stdin_w
  // is empty), e.g. one end of a socket pair. Takes precedence over stdin_data.
  int stdin_fd = -1;
};

// argv0 looked up in sluice's PATH as execvp would: the first entry holding
// an executable regular file; argv0 itself when it contains a '/'. Errors name the
// command (Errc::not_found, or invalid_argument when found but not executable).
Result<std::string> resolve_command(const std::string& argv0);

// A pipe, both ends close-on-exec and above stdin/stdout/stderr (what a child's
// stdio is made of). Errors are retriable when for want of descriptors.
struct Pipe {
  UniqueFd r, w;
};
Result<Pipe> make_pipe();

// A freshly spawned child. `pid` is also its process group id.
struct SpawnedProcess {
  pid_t pid = -1;
  UniqueFd stdin_w;   // write end of the child's stdin; empty when stdin_data was written
  UniqueFd stdout_r;  // read end of the child's stdout
  UniqueFd stderr_r;  // read end of the child's stderr
  UniqueFd pidfd;     // readable once the child has exited (not yet reaped)
};

// Spawns `opts.argv` (see the top of this file). Limits are set in the child
// between clone and execve. Errors (Errc::not_found / invalid_argument / io) say what
// could not be started and why, e.g.
// "cannot start 'convert': No such file or directory (not found in PATH)".
Result<SpawnedProcess> spawn_process(const SpawnOptions& opts);

// Starting a process can fail for want of resources: EMFILE, ENFILE (file
// descriptors), EAGAIN (processes, RLIMIT_NPROC), ENOMEM. Such a spawn error, and
// only such a one, has Error::retriable set: the runtimes delay the start and try
// again instead of failing the invocation (workers/README.md). Every one is counted
// here, process-wide, by its errno name (for sluice_errors_total{component="spawn"}).
bool resource_exhausted(int err) noexcept;
void count_exhaustion(int err) noexcept;  // err must be resource_exhausted()
struct ExhaustionCounts {
  uint64_t emfile = 0, enfile = 0, eagain = 0, enomem = 0;
};
ExhaustionCounts exhaustion_counts() noexcept;

// Sends `sig` to the process group `pgid`; ESRCH (group gone) is not an error.
void signal_group(pid_t pgid, int sig) noexcept;

// waitpid(pid) without blocking: the status once the child has exited, nullopt
// while it runs. ECHILD (reaped elsewhere, SIGCHLD ignored) yields Kind::unknown.
std::optional<ExitStatus> try_reap(pid_t pid) noexcept;

// waitpid(pid), blocking; for destructors and last-resort cleanup only.
ExitStatus reap_blocking(pid_t pid) noexcept;

}  // namespace sluice::workers
