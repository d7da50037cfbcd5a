// The raw baseline for the exec runtime: what one process per event costs with
// nothing around it. N threads, each in a loop: pipe2 x2, posix_spawnp("cat") with
// stdin/stdout on the pipes, write the payload, close stdin, read stdout to EOF,
// waitpid. No event environment, no stderr pipe, no pidfd, no event loop: the floor
// that sluice's ExecRuntime is compared with (exec_bench.cc, same arguments).
//
// Threads: `concurrency` threads share one atomic ticket counter; results
// are summed under no lock (atomics). Bounded by --count and --max-seconds.
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <thread>
#include <vector>

#include "common.h"

extern char** environ;

namespace sluice::bench {
namespace {

bool write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// One round trip; true when cat echoed the payload and exited 0.
bool round_trip(const std::string& payload) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return false;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return false;
  }
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  ::posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  char arg0[] = "cat";
  char* argv[] = {arg0, nullptr};
  pid_t pid = -1;
  int rc = ::posix_spawnp(&pid, "cat", &fa, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  bool ok = rc == 0;
  if (ok) ok = write_all(in[1], payload.data(), payload.size());
  ::close(in[1]);
  std::string got;
  char buf[4096];
  for (;;) {
    ssize_t r = ::read(out[0], buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got.append(buf, static_cast<size_t>(r));
  }
  ::close(out[0]);
  if (rc != 0) return false;
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return ok && got == payload && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

struct Phase {
  long done = 0, errors = 0;
  double seconds = 0;
};

Phase run(const Args& a, int n, const std::string& payload) {
  std::atomic<int> next{0};
  std::atomic<long> done{0}, errors{0};
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(a.max_seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.concurrency; ++t) {
    ts.emplace_back([&] {
      while (next++ < n && std::chrono::steady_clock::now() < deadline) {
        if (!round_trip(payload)) ++errors;
        ++done;
      }
    });
  }
  for (auto& t : ts) t.join();
  std::chrono::duration<double> el = std::chrono::steady_clock::now() - start;
  return {done.load(), errors.load(), el.count()};
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  Args a = parse_args(argc, argv);
  std::string payload = make_payload(a.payload);
  if (a.warmup > 0) run(a, a.warmup, payload);
  Phase p = run(a, a.count, payload);
  report("spawn_baseline", a, p.done, p.errors, p.seconds);
  return p.errors == 0 && p.done == a.count ? 0 : 1;
}
