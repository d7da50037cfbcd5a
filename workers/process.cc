#include "workers/process.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <memory>
#include <utility>

#include "core/sanitizers.h"

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

std::atomic<uint64_t> g_emfile{0}, g_enfile{0}, g_eagain{0}, g_enomem{0};

Error sys_error(const char* what, int err) {
  const bool retry = resource_exhausted(err);
  if (retry) count_exhaustion(err);
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

}  // namespace

Result<Pipe> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_error("pipe2", errno);
  Pipe p{UniqueFd(fds[0]), UniqueFd(fds[1])};
  SLUICE_TRY(lift_above_stdio(p.r));
  SLUICE_TRY(lift_above_stdio(p.w));
  return p;
}

namespace {

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

// The signals a child's disposition is reset for: every signal that had a handler
// or was ignored when the first child was spawned, plus the ones a program commonly
// handles or ignores later (SIGPIPE above all: sluice ignores it). A caught signal is
// reset by execve itself; resetting it before also keeps a signal that arrives in the
// short window between unblocking and execve from running sluice's handler in the
// child (which shares sluice's memory until it execs). Resetting all 64 would make
// every spawn slower: the parent waits (CLONE_VFORK) while the child does it.
const sigset_t& signals_to_reset() {
  static const sigset_t set = [] {
    sigset_t s;
    sigemptyset(&s);
    for (int sig : {SIGHUP, SIGINT, SIGQUIT, SIGUSR1, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
                    SIGCHLD, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU})
      sigaddset(&s, sig);
    struct sigaction cur{};
    for (int sig = 1; sig < NSIG; ++sig)
      if (::sigaction(sig, nullptr, &cur) == 0 && cur.sa_handler != SIG_DFL) sigaddset(&s, sig);
    return s;
  }();
  return set;
}

// Everything the child needs, prepared by the parent. The child shares the parent's
// memory (CLONE_VM) and the parent is suspended (CLONE_VFORK) until the child has
// exec'd or exited, so the child reads this undisturbed and may write its failure
// into it for the parent to read afterwards.
struct ChildPlan {
  const char* exe;
  char* const* argv;
  char* const* envp;
  const char* cwd;  // nullptr: keep sluice's
  int in, out, err;
  ProcessLimits lim;
  const sigset_t* reset;
  pid_t parent;  // sluice's pid: the child's parent until sluice dies
  int step = 0;  // set when the child could not exec: 1 setrlimit, 2 chdir, 3 execve, 4 setup
  int err_no = 0;
};

// The child, from clone() to execve: raw system calls only. It runs on a stack of
// our own in sluice's address space, so nothing may allocate, lock, or go through a
// sanitizer's interceptors (they would update the parent's bookkeeping).
#define SLUICE_CHILD_CODE __attribute__((no_sanitize("address", "thread", "undefined"), noinline))

SLUICE_CHILD_CODE long child_call(long nr, long a = 0, long b = 0, long c = 0, long d = 0) {
  return ::syscall(nr, a, b, c, d);
}

[[noreturn]] SLUICE_CHILD_CODE void child_fail(ChildPlan* c, int step) {
  c->err_no = errno;
  c->step = step;
  for (;;) ::syscall(SYS_exit, 127);
}

SLUICE_CHILD_CODE void child_limit(ChildPlan* c, int resource, uint64_t soft, uint64_t hard) {
  struct rlimit rl{static_cast<rlim_t>(soft), static_cast<rlim_t>(hard)};
  if (child_call(SYS_prlimit64, 0, resource, reinterpret_cast<long>(&rl), 0) != 0)
    child_fail(c, 1);
}

SLUICE_CHILD_CODE int child_main(void* arg) {
  ChildPlan* c = static_cast<ChildPlan*>(arg);
  // SIGKILL when sluice dies, even by kill -9: no worker outlives the engine. The
  // kernel sends it when the *thread* that cloned this child exits, so every spawn
  // runs on a thread that lives as long as its runtime (see spawn_process()). If
  // sluice died before this call, the child was already reparented: getppid() tells.
  if (child_call(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(c, 4);
  if (child_call(SYS_getppid) != c->parent) {
    errno = ESRCH;
    child_fail(c, 4);
  }
  if (child_call(SYS_setpgid, 0, 0) != 0) child_fail(c, 4);
  if (c->lim.sched_batch) {  // refused (a seccomp filter): the default policy, no failure
    const struct sched_param none{};
    child_call(SYS_sched_setscheduler, 0, SCHED_BATCH, reinterpret_cast<long>(&none));
  }
  struct {  // the kernel's struct sigaction (x86_64, arm64): handler, flags, restorer, mask
    void* handler = nullptr;  // SIG_DFL
    unsigned long flags = 0;
    void* restorer = nullptr;
    unsigned long mask = 0;
  } dfl;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(c->reset, sig) == 1)
      child_call(SYS_rt_sigaction, sig, reinterpret_cast<long>(&dfl), 0, sizeof dfl.mask);
  if (child_call(SYS_dup3, c->in, STDIN_FILENO, 0) < 0 ||
      child_call(SYS_dup3, c->out, STDOUT_FILENO, 0) < 0 ||
      child_call(SYS_dup3, c->err, STDERR_FILENO, 0) < 0)
    child_fail(c, 4);
  if (c->cwd && child_call(SYS_chdir, reinterpret_cast<long>(c->cwd)) != 0) child_fail(c, 2);
  if (c->lim.memory_bytes) child_limit(c, RLIMIT_DATA, c->lim.memory_bytes, c->lim.memory_bytes);
  if (c->lim.open_files) child_limit(c, RLIMIT_NOFILE, c->lim.open_files, c->lim.open_files);
  if (c->lim.cpu_seconds) child_limit(c, RLIMIT_CPU, c->lim.cpu_seconds, c->lim.cpu_seconds + 1);
  // Belt and braces next to O_CLOEXEC: fds opened by libraries without it stay out too.
  child_call(SYS_close_range, STDERR_FILENO + 1, ~0U, 0);
  const unsigned long none = 0;
  child_call(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&none), 0, sizeof none);
  child_call(SYS_execve, reinterpret_cast<long>(c->exe), reinterpret_cast<long>(c->argv),
             reinterpret_cast<long>(c->envp));
  child_fail(c, 3);
}

// glibc's clone(). A sanitizer runtime intercepts clone() as if it were fork() and
// resets its own state "in the child", which with CLONE_VM is the parent's state
// (ThreadSanitizer then reported races between accesses under one mutex), so
// sanitizer builds take the real one from libc.
using CloneFn = int (*)(int (*)(void*), void*, int, void*, ...);
CloneFn libc_clone() {
#if defined(SLUICE_ASAN) || defined(SLUICE_TSAN)
  static const CloneFn fn = [] {
    void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* f = libc ? ::dlsym(libc, "clone") : nullptr;
    return f ? reinterpret_cast<CloneFn>(f) : &::clone;
  }();
  return fn;
#else
  return &::clone;
#endif
}

// clone(CLONE_VM | CLONE_VFORK), as posix_spawn does, but on a stack reused per
// thread (posix_spawn maps and unmaps one per spawn, and the unmap interrupts every
// CPU that ran one of sluice's threads) and with no per-spawn validation
// (posix_spawn's file actions ask getrlimit once each). Works with rlimits too
// (posix_spawn cannot set them). Returns once the child has exec'd; a failure
// before or in execve comes back with the child's errno, so "not found" is reported
// here, not as exit 127.
Result<pid_t> clone_exec(const SpawnOptions& opts, int in_r, int out_w, int err_w) {
  std::string exe = opts.exe;
  if (exe.empty()) {
    SLUICE_TRY(found, resolve_command(opts.argv[0]));
    exe = std::move(found);
  }
  std::vector<char*> argv, envp;
  argv.reserve(opts.argv.size() + 1);
  for (const auto& a : opts.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  envp.reserve(opts.env.size() + 1);
  for (const auto& e : opts.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  ChildPlan plan{exe.c_str(), argv.data(), envp.data(),
                 opts.cwd.empty() ? nullptr : opts.cwd.c_str(),
                 in_r, out_w, err_w, opts.limits, &signals_to_reset(), ::getpid()};

  constexpr size_t kStack = 64 * 1024;
  thread_local std::unique_ptr<char[]> stack;  // this thread's children run on it, one at a time
  if (!stack) stack = std::make_unique<char[]>(kStack);
  char* top = stack.get() + kStack;
  top -= reinterpret_cast<uintptr_t>(top) % 64;

  // Every signal blocked across the clone, so that none runs a handler of sluice in
  // the child before it has reset its dispositions.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &old);
  pid_t pid = libc_clone()(child_main, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &plan);
  const int clone_err = errno;
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (pid < 0) return sys_error("clone", clone_err);
  if (plan.step != 0) {
    reap_blocking(pid);
    if (plan.step == 3) return spawn_error(opts, plan.err_no);
    const char* what = plan.step == 1 ? "setrlimit" : plan.step == 2 ? "chdir" : "child setup";
    return Error{Errc::invalid_argument,
                 "cannot start '" + opts.argv[0] + "': " + what + ": " + errno_text(plan.err_no)};
  }
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
  int child_in = opts.stdin_fd >= 0                              ? opts.stdin_fd
                 : opts.stdin_data && opts.stdin_data->empty() ? dev_null()
                                                               : -1;
  if (child_in < 0) {
    SLUICE_TRY(made, make_pipe());
    in = std::move(made);
    if (opts.stdin_data) {
      SLUICE_TRY(prefill(in.w, *opts.stdin_data));
    }
    child_in = in.r.get();
  }

  SLUICE_TRY(pid, clone_exec(opts, child_in, out.w.get(), err.w.get()));

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

bool resource_exhausted(int err) noexcept {
  return err == EAGAIN || err == EMFILE || err == ENFILE || err == ENOMEM;
}

void count_exhaustion(int err) noexcept {
  auto& c = err == EMFILE   ? g_emfile
            : err == ENFILE ? g_enfile
            : err == EAGAIN ? g_eagain
                            : g_enomem;
  c.fetch_add(1, std::memory_order_relaxed);
}

ExhaustionCounts exhaustion_counts() noexcept {
  return {g_emfile.load(std::memory_order_relaxed), g_enfile.load(std::memory_order_relaxed),
          g_eagain.load(std::memory_order_relaxed), g_enomem.load(std::memory_order_relaxed)};
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
