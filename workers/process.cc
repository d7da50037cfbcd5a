#include "workers/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <utility>

namespace sluice::workers {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

int UniqueFd::release() noexcept { return std::exchange(fd_, -1); }

void UniqueFd::reset(int fd) noexcept {
  if (fd_ >= 0) ::close(fd_);  // close() is not retried on EINTR on Linux
  fd_ = fd;
}

ExitStatus ExitStatus::from_wait_status(int status) {
  ExitStatus s;
  if (WIFEXITED(status)) {
    s.kind = Kind::exited;
    s.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    s.kind = Kind::signaled;
    s.code = WTERMSIG(status);
    s.core_dumped = WCOREDUMP(status);
  }
  return s;
}

std::string ExitStatus::describe() const {
  switch (kind) {
    case Kind::exited: return "exit status " + std::to_string(code);
    case Kind::signaled:
      return "killed by signal " + signal_name(code) + (core_dumped ? " (core dumped)" : "");
    case Kind::unknown: break;
  }
  return "exit status unknown";
}

std::string signal_name(int sig) {
  if (const char* abbrev = ::sigabbrev_np(sig)) return std::string("SIG") + abbrev;
  return "signal " + std::to_string(sig);
}

namespace {

std::string errno_text(int err) {
  const char* text = ::strerrordesc_np(err);
  return text ? text : "error " + std::to_string(err);
}

Error sys_error(const char* what, int err) {
  bool retry = err == EAGAIN || err == EMFILE || err == ENFILE || err == ENOMEM;
  return Error{Errc::io, std::string(what) + ": " + errno_text(err), retry};
}

// Moves `fd` to a number >= 3 (keeping O_CLOEXEC): dup2(fd, fd) onto stdin/stdout/
// stderr would be a no-op that leaves close-on-exec set.
Result<void> lift_above_stdio(UniqueFd& fd) {
  if (fd.get() > STDERR_FILENO) return ok();
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
  if (moved < 0) return sys_error("fcntl(F_DUPFD_CLOEXEC)", errno);
  fd.reset(moved);
  return ok();
}

struct Pipe {
  UniqueFd r, w;
};

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_error("pipe2", errno);
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  SLUICE_TRY(lift_above_stdio(p.r));
  SLUICE_TRY(lift_above_stdio(p.w));
  return p;
}

// RAII holders for the two posix_spawn attribute objects.
struct FileActions {
  posix_spawn_file_actions_t fa;
  FileActions() { ::posix_spawn_file_actions_init(&fa); }
  ~FileActions() { ::posix_spawn_file_actions_destroy(&fa); }
};
struct SpawnAttr {
  posix_spawnattr_t attr;
  SpawnAttr() { ::posix_spawnattr_init(&attr); }
  ~SpawnAttr() { ::posix_spawnattr_destroy(&attr); }
};

Error spawn_error(const SpawnOptions& opts, int err) {
  const std::string& cmd = opts.argv[0];
  std::string msg = "cannot start '" + cmd + "': " + errno_text(err);
  Errc code = Errc::invalid_argument;
  switch (err) {
    case ENOENT:
      msg += cmd.find('/') == std::string::npos ? " (not found in PATH)" : " (no such file)";
      code = Errc::not_found;
      break;
    case EACCES: msg += " (is it executable?)"; break;
    case ENOEXEC: msg += " (a script needs a #! line)"; break;
    case E2BIG: msg += " (arguments or environment too large)"; break;
    default: return sys_error(msg.c_str(), err);
  }
  return Error{code, std::move(msg)};
}

// What the forked child reports when it cannot get to exec: the step and errno.
struct ChildFailure {
  int step;  // 1 setrlimit, 2 chdir, 3 execve, 4 setup (setpgid, dup2)
  int err;
};

[[noreturn]] void child_fail(int fd, int step) {
  ChildFailure f{step, errno};
  [[maybe_unused]] ssize_t n = ::write(fd, &f, sizeof f);
  ::_exit(127);
}

// fork + setrlimit + execve (posix_spawn cannot set rlimits). Returns the pid.
Result<pid_t> fork_exec(const SpawnOptions& opts, int in_r, int out_w, int err_w) {
  std::string exe = opts.exe;
  if (exe.empty()) {
    SLUICE_TRY(found, resolve_command(opts.argv[0]));
    exe = std::move(found);
  }
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) return sys_error("pipe2", errno);
  UniqueFd report_r(report[0]), report_w(report[1]);

  std::vector<char*> argv, envp;
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  const ProcessLimits lim = opts.limits;
  const char* cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();

  // Block every signal across fork so that no handler of sluice runs in the child.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = ::fork();
  if (pid == 0) {
    // Child: async-signal-safe calls only from here to execve.
    const int rfd = report_w.get();
    if (::setpgid(0, 0) != 0) child_fail(rfd, 4);
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
    if (::dup2(in_r, STDIN_FILENO) < 0 || ::dup2(out_w, STDOUT_FILENO) < 0 ||
        ::dup2(err_w, STDERR_FILENO) < 0)
      child_fail(rfd, 4);
    if (cwd && ::chdir(cwd) != 0) child_fail(rfd, 2);
    auto set = [&](int resource, uint64_t soft, uint64_t hard) {
      struct rlimit rl{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
      if (::setrlimit(resource, &rl) != 0) child_fail(rfd, 1);
    };
    if (lim.memory_bytes) set(RLIMIT_DATA, lim.memory_bytes, lim.memory_bytes);
    if (lim.open_files) set(RLIMIT_NOFILE, lim.open_files, lim.open_files);
    if (lim.cpu_seconds) set(RLIMIT_CPU, lim.cpu_seconds, lim.cpu_seconds + 1);
    // Everything but stdio and the report pipe (close-on-exec) goes now.
    if (rfd > STDERR_FILENO + 1) ::close_range(STDERR_FILENO + 1, rfd - 1, 0);
    ::close_range(rfd + 1, ~0U, 0);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execve(exe.c_str(), argv.data(), envp.data());
    child_fail(rfd, 3);
  }
  const int fork_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return sys_error("fork", fork_err);
  report_w.reset();
  ChildFailure f{};
  ssize_t n;
  do n = ::read(report_r.get(), &f, sizeof f);
  while (n < 0 && errno == EINTR);
  if (n == static_cast<ssize_t>(sizeof f)) {
    reap_blocking(pid);
    if (f.step == 3) return spawn_error(opts, f.err);
    const char* what = f.step == 1 ? "setrlimit" : f.step == 2 ? "chdir" : "child setup";
    return Error{Errc::invalid_argument,
                 "cannot start '" + opts.argv[0] + "': " + what + ": " + errno_text(f.err)};
  }
  return pid;  // EOF: execve succeeded and closed the report pipe
}

// posix_spawnp; glibc waits (CLONE_VFORK) until exec succeeded or failed and
// returns the child's errno, so "not found" is reported here, not as exit 127.
Result<pid_t> posix_spawn_child(const SpawnOptions& opts, int in_r, int out_w, int err_w) {
  FileActions fa;
  ::posix_spawn_file_actions_adddup2(&fa.fa, in_r, STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&fa.fa, out_w, STDOUT_FILENO);
  ::posix_spawn_file_actions_adddup2(&fa.fa, err_w, STDERR_FILENO);
  if (!opts.cwd.empty()) ::posix_spawn_file_actions_addchdir_np(&fa.fa, opts.cwd.c_str());
  // Belt and braces next to O_CLOEXEC: fds opened by libraries without it stay out too.
  ::posix_spawn_file_actions_addclosefrom_np(&fa.fa, STDERR_FILENO + 1);

  SpawnAttr sa;
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setflags(&sa.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                           POSIX_SPAWN_SETSIGDEF);
  ::posix_spawnattr_setpgroup(&sa.attr, 0);
  ::posix_spawnattr_setsigmask(&sa.attr, &none);
  ::posix_spawnattr_setsigdefault(&sa.attr, &all);

  std::vector<char*> argv, envp;
  argv.reserve(opts.argv.size() + 1);
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  envp.reserve(opts.env.size() + 1);
  for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = -1;
  int rc = opts.exe.empty()
               ? ::posix_spawnp(&pid, argv[0], &fa.fa, &sa.attr, argv.data(), envp.data())
               : ::posix_spawn(&pid, opts.exe.c_str(), &fa.fa, &sa.attr, argv.data(), envp.data());
  if (rc != 0) return spawn_error(opts, rc);
  return pid;
}

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// Writes `data` into the empty pipe `w` and closes it, when it fits in the pipe's
// buffer (then the write cannot block). Every pipe holds at least a page; asking the
// capacity costs a system call, so only larger payloads do.
Result<void> prefill(UniqueFd& w, const std::string& data) {
  if (data.size() > 4096) {
    int cap = ::fcntl(w.get(), F_GETPIPE_SZ);
    if (cap < 0 || data.size() > static_cast<size_t>(cap)) return ok();  // caller writes
  }
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(w.get(), data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return sys_error("write to the stdin pipe", errno);
    off += static_cast<size_t>(n);
  }
  w.reset();
  return ok();
}

}  // namespace

// PATH lookup done in the parent (execvp is not async-signal-safe).
Result<std::string> resolve_command(const std::string& argv0) {
  if (argv0.find('/') != std::string::npos) return argv0;
  const char* path = std::getenv("PATH");
  std::string_view rest = path ? path : "/usr/local/bin:/usr/bin:/bin";
  bool denied = false;
  while (true) {
    size_t colon = rest.find(':');
    std::string_view dir = rest.substr(0, colon);
    if (dir.empty()) dir = ".";
    std::string candidate;  // built with append(): GCC 12 warns falsely on a + chain
    candidate.reserve(dir.size() + 1 + argv0.size());
    candidate.append(dir).append(1, '/').append(argv0);
    struct stat st{};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      if (::access(candidate.c_str(), X_OK) == 0) return candidate;
      denied = true;
    }
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return Error{denied ? Errc::invalid_argument : Errc::not_found,
               "cannot start '" + argv0 + "': " +
                   (denied ? "Permission denied (is it executable?)"
                           : "No such file or directory (not found in PATH)")};
}

namespace {

// /dev/null, opened once: the stdin of a child whose stdin_data is empty (spares a
// pipe per spawn). Read-only and close-on-exec; -1 if it cannot be opened, and then
// an empty pipe serves.
int dev_null() {
  static const int fd = [] {
    int f = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (f >= 0 && f <= STDERR_FILENO) {
      int moved = ::fcntl(f, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
      ::close(f);
      f = moved;
    }
    return f;
  }();
  return fd;
}

Result<SpawnedProcess> spawn_checked(const SpawnOptions& opts) {
  SLUICE_TRY(out, make_pipe());
  SLUICE_TRY(err, make_pipe());
  Pipe in;
  int child_in = opts.stdin_data && opts.stdin_data->empty() ? dev_null() : -1;
  if (child_in < 0) {
    SLUICE_TRY(made, make_pipe());
    in = std::move(made);
    if (opts.stdin_data) {
      SLUICE_TRY(prefill(in.w, *opts.stdin_data));
    }
    child_in = in.r.get();
  }

  pid_t pid = -1;
  if (opts.limits.any()) {
    SLUICE_TRY(forked, fork_exec(opts, child_in, out.w.get(), err.w.get()));
    pid = forked;
  } else {
    SLUICE_TRY(spawned, posix_spawn_child(opts, child_in, out.w.get(), err.w.get()));
    pid = spawned;
  }

  SpawnedProcess p;
  p.pid = pid;
  p.stdin_w = std::move(in.w);
  p.stdout_r = std::move(out.r);
  p.stderr_r = std::move(err.r);
  // The child's ends (in.r, out.w, err.w) close when this scope ends.
  int pfd = pidfd_open(pid);  // always close-on-exec
  if (pfd < 0) {
    int e = errno;
    signal_group(pid, SIGKILL);
    reap_blocking(pid);
    return sys_error("pidfd_open", e);
  }
  p.pidfd.reset(pfd);
  return p;
}

}  // namespace

Result<SpawnedProcess> spawn_process(const SpawnOptions& opts) {
  if (opts.argv.empty() || opts.argv[0].empty())
    return Error{Errc::invalid_argument, "cannot start a function with an empty command"};
  auto p = spawn_checked(opts);
  // The working directory is looked at only when the spawn failed (a stat per spawn
  // otherwise): a missing one is named as such, not as the command's ENOENT.
  if (!p && !opts.cwd.empty()) {
    struct stat st{};
    if (::stat(opts.cwd.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
      return Error{Errc::not_found, "working directory '" + opts.cwd + "' does not exist"};
  }
  return p;
}

void signal_group(pid_t pgid, int sig) noexcept {
  if (pgid > 0) ::kill(-pgid, sig);
}

std::optional<ExitStatus> try_reap(pid_t pid) noexcept {
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid, &status, WNOHANG);
  while (r < 0 && errno == EINTR);
  if (r == 0) return std::nullopt;
  if (r < 0) return ExitStatus{};
  return ExitStatus::from_wait_status(status);
}

ExitStatus reap_blocking(pid_t pid) noexcept {
  int status = 0;
  pid_t r;
  do r = ::waitpid(pid, &status, 0);
  while (r < 0 && errno == EINTR);
  if (r < 0) return ExitStatus{};
  return ExitStatus::from_wait_status(status);
}

}  // namespace sluice::workers
