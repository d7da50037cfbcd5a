// bench/runtimes: a no-op function on each runtime beside its physical baseline, in
// one run (issue 6 "Measure"):
//   exec    ExecRuntime running `true`          vs posix_spawnp(`true`) + pipe + waitpid
//   stdio   StdioRuntime, C++ test worker       vs a bare length-prefixed pipe echo loop
//                                                  (this binary with --pipe-echo, C++)
//   http    HttpRuntime, C++ test server        vs a direct Beast keep-alive POST loop to
//                                                  the same server binary
//   inproc  InprocRuntime, test library         vs dlopen() + a direct sluice_invoke call
//           (twice: the thread pool, and `inline: true` on the invoking thread)
// and the same-language rows:
//   stdio-python, stdio-node, stdio-go
//           StdioRuntime running the SDK's no-op example (sdk/<lang>/examples/noop)
//                                               vs a bare length-prefixed pipe echo loop
//                                                  in the same language
//                                                  (bench/runtimes/pipe_echo.{py,js},
//                                                  pipe_echo/main.go), fed a frame of
//                                                  the size of sluice's Invoke frame;
//           one worker process per call in flight, and with more than one in flight
//           again on one process (stdio-<lang>-1p, the protocol's pipelining, as the
//           C++ `stdio` row always runs)
//   http-python
//           HttpRuntime, bench/runtimes/http_upstream.py (python3, stdlib)
//                                               vs a direct Beast keep-alive POST loop to
//                                                  the same Python server
// Experiments (environment): SLUICE_BENCH_SIDE=sluice|baseline runs one side of the
// exec and SDK stdio rows (for perf/strace), =direct puts in sluice's place on the SDK
// rows the SDK's worker driven by bare threads (the most any engine could get out of
// that SDK, see bench_side()); SLUICE_BENCH_IO_THREADS sets the exec
// row's io threads; (there is no SLUICE_BENCH_STDIO_SPIN_US: the stdio runtime runs on
// the caller's loop, which polls);
// SLUICE_BENCH_CALLER_SPIN_US how long the runtime side's caller loop polls while
// quick_answers() calls run before it sleeps (default 50, as the dispatcher thread:
// DispatcherOptions::spin).
// A language whose toolchain (or SDK install: sdk/test.sh) is missing is skipped with
// one "# <row> skipped: ..." line. `--only a,b,...` picks rows (default: all);
// `--repo DIR` is the checkout holding sdk/ and bench/runtimes/ (default: from
// __FILE__). The Go programs are built with `go build` into a temporary directory.
// Each line: invocations/s and p50/p99 latency of baseline and runtime, their ratio,
// and the added time per invocation. Closed loop: `--concurrency` invocations in
// flight (runtime) or as many threads (baseline); default 1 (latency of one call).
//
// Threads: main drives the runtime side from a loop of its own, as the dispatcher
// thread does (CallerLoop, run_runtime): the loop is lent to the runtime (the stdio
// runtime reads its workers on it and calls back there); a runtime calling back from
// its own threads has the result posted to it. The baselines run `concurrency`
// threads (`mu` guards their tallies). Bounded by --count and --max-seconds per phase.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "common.h"
#include "core/event.h"
#include "core/io_loop.h"
#include "workers/exec_runtime.h"
#include "workers/frame.h"
#include "workers/http_runtime.h"
#include "workers/inproc_abi.h"
#include "workers/inproc_runtime.h"
#include "workers/stdio_runtime.h"

extern char** environ;

namespace sluice::bench {
namespace {

using Clock = std::chrono::steady_clock;

struct Stats {
  long done = 0, errors = 0;
  double seconds = 0;
  std::vector<double> lat_us;
  std::string first_error;
  double rate() const { return seconds > 0 ? done / seconds : 0; }
  double pct(double p) {
    if (lat_us.empty()) return 0;
    std::sort(lat_us.begin(), lat_us.end());
    return lat_us[std::min(lat_us.size() - 1, static_cast<size_t>(p * lat_us.size()))];
  }
};

// `threads` threads each call `one(thread_index)` until `count` calls are done.
Stats run_sync(const Args& a, int count, const std::function<bool(int)>& one) {
  Stats s;
  std::mutex mu;
  std::atomic<int> next{0};
  auto start = Clock::now();
  auto deadline = start + std::chrono::seconds(a.max_seconds);
  std::vector<std::thread> ts;
  for (int t = 0; t < a.concurrency; ++t)
    ts.emplace_back([&, t] {
      std::vector<double> lat;
      long errors = 0;
      while (next++ < count && Clock::now() < deadline) {
        auto t0 = Clock::now();
        bool ok = one(t);
        lat.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
        errors += !ok;
      }
      std::lock_guard lk(mu);
      s.lat_us.insert(s.lat_us.end(), lat.begin(), lat.end());
      s.errors += errors;
    });
  for (auto& t : ts) t.join();
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.done = static_cast<long>(s.lat_us.size());
  return s;
}

long env_number(const char* name, long fallback);

// The dispatcher thread's part: a loop run by the calling thread, lent to the runtime
// before start() as the dispatcher lends its own (Runtime::share_loop: a stdio runtime
// reads its workers on it; the others ignore it and call back from their threads).
struct CallerLoop {
  std::shared_ptr<boost::asio::io_context> io = std::make_shared<boost::asio::io_context>();

  bool start(Runtime& rt) {
    rt.share_loop(io);
    auto r = rt.start();
    if (!r) std::fprintf(stderr, "%s runtime: %s\n", std::string(rt.kind()).c_str(),
                         r.error().message.c_str());
    return static_cast<bool>(r);
  }
  // rt.stop() needs the loop running (a shared loop's handlers end on it).
  void stop(Runtime& rt) {
    io->restart();
    auto guard = boost::asio::make_work_guard(*io);
    std::thread runner([this] { io->run(); });
    rt.stop(Millis{5000});
    guard.reset();
    runner.join();
  }
};

// The dispatcher's way (dispatcher.cc pump / start_invocation / on_result): keep
// `concurrency` invocations in flight on `rt` from the caller's loop; a result that
// arrives on another thread is posted to that loop, one read on it is taken in at
// once. While quick_answers() invocations run, the loop polls for up to
// SLUICE_BENCH_CALLER_SPIN_US (default 50, as DispatcherOptions::spin) before it sleeps.
Stats run_runtime(const Args& a, Runtime& rt, CallerLoop& caller, const std::vector<Event>& evs,
                  const std::string& expect) {
  Stats s;
  boost::asio::io_context& io = *caller.io;
  static const long caller_spin_us = env_number("SLUICE_BENCH_CALLER_SPIN_US", 50);
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::seconds(a.max_seconds);
  size_t next = 0;
  int inflight = 0;
  bool pumping = false, repump = false;
  std::function<void()> pump;
  auto finish = [&](double us, InvocationResult&& r) {
    const bool ok = r.outcome == Outcome::success && r.output == expect;
    s.lat_us.push_back(us);
    if (!ok && !s.errors++) s.first_error = std::string(to_string(r.outcome)) + ": " + r.message;
    --inflight;
    pump();
  };
  pump = [&] {
    if (pumping) {  // an answer taken in inside invoke(): go round once more
      repump = true;
      return;
    }
    pumping = true;
    do {
      repump = false;
      while (inflight < a.concurrency && next < evs.size() && Clock::now() < deadline) {
        const Event& ev = evs[next++];
        ++inflight;
        const auto t0 = Clock::now();
        rt.invoke(ev, [&, t0](InvocationResult&& r) {
          const double us = std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
          if (io.get_executor().running_in_this_thread()) return finish(us, std::move(r));
          boost::asio::post(io, [&, us, r = std::move(r)]() mutable { finish(us, std::move(r)); });
        });
      }
    } while (repump);
    pumping = false;
    if (inflight == 0) io.stop();  // all done (or past the deadline)
  };
  io.restart();
  boost::asio::post(io, pump);
  auto guard = boost::asio::make_work_guard(io);
  run_spinning(io, std::chrono::microseconds(caller_spin_us),
               [&] { return inflight > 0 && rt.quick_answers(); });
  s.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  s.done = static_cast<long>(s.lat_us.size());
  return s;
}

std::vector<Event> events(int n, const std::string& data) {
  std::vector<Event> evs(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    evs[i].id = "bench-" + std::to_string(i);
    evs[i].source = "/sluice/bench";
    evs[i].type = "io.sluice.bench";
    evs[i].data = data;
  }
  return evs;
}

void print(const char* name, const char* baseline, const Args& a, Stats& b, Stats& r) {
  const double ratio = b.rate() > 0 ? r.rate() / b.rate() : 0;
  const double added = (r.rate() > 0 && b.rate() > 0)
                           ? (1e6 / r.rate() - 1e6 / b.rate()) * a.concurrency
                           : 0;
  std::printf(
      "RESULT runtimes %s concurrency=%d count=%ld baseline=\"%s\" base_inv_s=%.1f "
      "base_p50_us=%.1f base_p99_us=%.1f sluice_inv_s=%.1f p50_us=%.1f p99_us=%.1f "
      "ratio=%.3f added_us=%.2f errors=%ld/%ld\n",
      name, a.concurrency, r.done, baseline, b.rate(), b.pct(0.50), b.pct(0.99), r.rate(),
      r.pct(0.50), r.pct(0.99), ratio, added, b.errors, r.errors);
  if (r.errors) std::fprintf(stderr, "%s first error: %s\n", name, r.first_error.c_str());
  std::fflush(stdout);
}

FunctionConfig function(const char* name, std::vector<std::string> command, const Args& a) {
  FunctionConfig fn;
  fn.name = name;
  fn.command = std::move(command);
  fn.timeout = Millis{30000};
  fn.concurrency = static_cast<uint32_t>(a.concurrency);
  return fn;
}

std::string cwd() {
  char buf[4096];
  return ::getcwd(buf, sizeof buf) ? buf : "/";
}

// ---- exec: posix_spawnp(`true`) with a stdout pipe, read to EOF, waitpid ----
bool spawn_true() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
  char* argv[] = {const_cast<char*>("true"), nullptr};
  pid_t pid;
  int rc = ::posix_spawnp(&pid, "true", &fa, nullptr, argv, environ);
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(fds[1]);
  char buf[64];
  while (rc == 0 && ::read(fds[0], buf, sizeof buf) > 0) {
  }
  ::close(fds[0]);
  int st = 0;
  return rc == 0 && ::waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

// The value of environment variable `name` as a whole number, or `fallback` when it
// is unset; anything else ends the benchmark with a clear error (exit 2).
long env_number(const char* name, long fallback) {
  const char* v = std::getenv(name);
  if (!v) return fallback;
  char* end = nullptr;
  errno = 0;
  const long n = std::strtol(v, &end, 10);
  if (errno || end == v || *end || n < 0) {
    std::fprintf(stderr, "%s=%s: expected a whole number >= 0\n", name, v);
    std::exit(2);
  }
  return n;
}


// SLUICE_BENCH_SIDE=sluice|baseline runs one side of the exec and SDK stdio rows only
// (for perf/strace); unset or empty: both. `direct` (SDK stdio rows only) puts, in
// place of sluice, the SDK's no-op worker driven by bare threads with sluice's own
// frames (Hello, HelloAck, then Invoke -> Result, one thread per worker): what any
// engine could get out of that SDK.
std::string bench_side() {
  const char* v = std::getenv("SLUICE_BENCH_SIDE");
  std::string side = v ? v : "";
  if (side != "" && side != "sluice" && side != "baseline" && side != "direct") {
    std::fprintf(stderr, "SLUICE_BENCH_SIDE=%s: expected sluice, baseline or direct\n",
                 side.c_str());
    std::exit(2);
  }
  return side;
}

void bench_exec(const Args& a) {
  const std::string side = bench_side();
  Stats b;
  if (side != "sluice") {
    run_sync(a, a.warmup, [](int) { return spawn_true(); });
    b = run_sync(a, a.count, [](int) { return spawn_true(); });
  }
  if (side == "baseline") return print("exec", "fork+exec of true", a, b, b);
  workers::ExecOptions opts;
  opts.io_threads = std::clamp(a.concurrency, 1, 4);  // as workers/registry.cc
  opts.io_threads = static_cast<unsigned>(env_number("SLUICE_BENCH_IO_THREADS", opts.io_threads));
  workers::ExecRuntime rt(function("noop", {"true"}, a), cwd(), opts);
  CallerLoop caller;
  if (!caller.start(rt)) return;
  auto warm = events(a.warmup, ""), evs = events(a.count, "");
  run_runtime(a, rt, caller, warm, "");
  Stats r = run_runtime(a, rt, caller, evs, "");
  caller.stop(rt);
  print("exec", "fork+exec of true", a, b, r);
}

// ---- stdio: a bare pipe echo loop (this binary, --pipe-echo) ----
int pipe_echo_main() {
  std::vector<char> buf(1 << 16);
  while (true) {
    unsigned char h[4];
    if (::read(0, h, 4) != 4) return 0;
    size_t n = (size_t{h[0]} << 24) | (size_t{h[1]} << 16) | (size_t{h[2]} << 8) | h[3];
    if (n > buf.size()) return 1;
    size_t got = 0;
    while (got < n) {
      ssize_t k = ::read(0, buf.data() + got, n - got);
      if (k <= 0) return 1;
      got += static_cast<size_t>(k);
    }
    std::string out(reinterpret_cast<char*>(h), 4);
    out.append(buf.data(), n);
    if (::write(1, out.data(), out.size()) != static_cast<ssize_t>(out.size())) return 1;
  }
}

struct EchoChild {
  pid_t pid = -1;
  int to = -1, from = -1;
};

std::vector<char*> argv_of(const std::vector<std::string>& args) {
  std::vector<char*> v;
  for (const std::string& s : args) v.push_back(const_cast<char*>(s.c_str()));
  v.push_back(nullptr);
  return v;
}

// `args` (PATH lookup) with stdin and stdout on pipes; stderr inherited.
EchoChild start_child(const std::vector<std::string>& args) {
  int in[2], out[2];
  EchoChild c;
  if (::pipe2(in, O_CLOEXEC)) return c;
  if (::pipe2(out, O_CLOEXEC)) {
    ::close(in[0]);
    ::close(in[1]);
    return c;
  }
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  ::posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  ::posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  std::vector<char*> argv = argv_of(args);
  if (::posix_spawnp(&c.pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) c.pid = -1;
  ::posix_spawn_file_actions_destroy(&fa);
  ::close(in[0]);
  ::close(out[1]);
  c.to = in[1];
  c.from = out[0];
  return c;
}

EchoChild start_echo(const char* self) { return start_child({self, "--pipe-echo"}); }

// Waits up to 5 s for `pid` to exit, then SIGKILLs it.
void reap(pid_t pid) {
  if (pid <= 0) return;
  for (int i = 0; i < 500; ++i) {
    if (::waitpid(pid, nullptr, WNOHANG) != 0) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

void stop_children(std::vector<EchoChild>& kids) {
  for (auto& k : kids) {
    ::close(k.to);
    ::close(k.from);
  }
  for (auto& k : kids) reap(k.pid);
  kids.clear();
}

bool echo_once(EchoChild& c, const std::string& msg) {
  std::string frame(4, '\0');
  frame[3] = static_cast<char>(msg.size());
  frame += msg;
  if (::write(c.to, frame.data(), frame.size()) != static_cast<ssize_t>(frame.size())) return false;
  char buf[512];
  size_t got = 0;
  while (got < frame.size()) {
    ssize_t k = ::read(c.from, buf + got, sizeof buf - got);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
  }
  return true;
}

// Writes `frame` whole and reads back as many bytes (the echo).
bool echo_frame(EchoChild& c, const std::string& frame, std::string& buf) {
  size_t put = 0;
  while (put < frame.size()) {
    ssize_t k = ::write(c.to, frame.data() + put, frame.size() - put);
    if (k <= 0) return false;
    put += static_cast<size_t>(k);
  }
  buf.resize(frame.size());
  size_t got = 0;
  while (got < frame.size()) {
    ssize_t k = ::read(c.from, buf.data() + got, frame.size() - got);
    if (k <= 0) return false;
    got += static_cast<size_t>(k);
  }
  return buf == frame;
}

// The bytes StdioRuntime writes for `ev` as invocation `id` (length prefix included).
std::string invoke_frame(const Event& ev, uint64_t id, Millis timeout) {
  v1::Frame f;
  v1::Invoke* inv = f.mutable_invoke();
  inv->set_id(id);
  to_proto(ev, inv->mutable_event());
  inv->set_timeout_ms(static_cast<uint32_t>(timeout.count()));
  std::string bytes;
  workers::append_frame(f, bytes);
  return bytes;
}

void bench_stdio(const Args& a, const char* self) {
  std::vector<EchoChild> kids;
  for (int i = 0; i < a.concurrency; ++i) kids.push_back(start_echo(self));
  // The same bytes the runtime's Invoke carries would be larger; the baseline is the
  // bare pipe round trip with a small message, the physical floor.
  const std::string msg = "echo:";
  run_sync(a, a.warmup, [&](int t) { return echo_once(kids[t], msg); });
  Stats b = run_sync(a, a.count, [&](int t) { return echo_once(kids[t], msg); });
  stop_children(kids);
  workers::StdioRuntime rt(function("noop", {SLUICE_BENCH_STDIO_WORKER}, a), cwd());
  CallerLoop caller;
  if (!caller.start(rt)) return;
  auto warm = events(a.warmup, "echo:"), evs = events(a.count, "echo:");
  run_runtime(a, rt, caller, warm, "");
  Stats r = run_runtime(a, rt, caller, evs, "");
  caller.stop(rt);
  print("stdio", "C++ pipe echo loop", a, b, r);
}

// Reads one length-prefixed frame from `fd` into `f`.
bool read_frame(int fd, v1::Frame& f, std::string& buf) {
  auto read_all = [&](char* p, size_t n) {
    for (size_t got = 0; got < n;) {
      ssize_t k = ::read(fd, p + got, n - got);
      if (k <= 0) return false;
      got += static_cast<size_t>(k);
    }
    return true;
  };
  unsigned char h[4];
  if (!read_all(reinterpret_cast<char*>(h), 4)) return false;
  size_t n = (size_t{h[0]} << 24) | (size_t{h[1]} << 16) | (size_t{h[2]} << 8) | h[3];
  buf.resize(n);
  return read_all(buf.data(), n) && f.ParseFromString(buf);
}

bool write_all(int fd, const std::string& bytes) {
  for (size_t put = 0; put < bytes.size();) {
    ssize_t k = ::write(fd, bytes.data() + put, bytes.size() - put);
    if (k <= 0) return false;
    put += static_cast<size_t>(k);
  }
  return true;
}

// An SDK worker after the handshake (Hello read, HelloAck sent); pid -1 on failure.
EchoChild start_sdk_worker(const std::vector<std::string>& args) {
  EchoChild c = start_child(args);
  v1::Frame f;
  std::string buf;
  if (c.pid <= 0 || !read_frame(c.from, f, buf) || !f.has_hello()) {
    std::fprintf(stderr, "direct: no Hello from the worker\n");
    c.pid = -1;
    return c;
  }
  v1::Frame ack;
  ack.mutable_hello_ack()->set_protocol_version(workers::kProtocolVersion);
  ack.mutable_hello_ack()->set_function("noop");
  std::string bytes;
  workers::append_frame(ack, bytes);
  if (!write_all(c.to, bytes)) c.pid = -1;
  return c;
}

// ---- stdio in Python, Node, Go: the SDK's no-op example vs the same language's loop ----
struct SdkRow {
  std::string row;                     // "stdio-python"
  std::string baseline_name;           // for the RESULT line
  std::vector<std::string> baseline;   // the pipe echo loop
  std::vector<std::string> worker;     // the SDK's no-op example
  std::string skip;                    // why it cannot run here (empty: it can)
};

void bench_stdio_sdk(const Args& a, const SdkRow& l) {
  if (!l.skip.empty()) {
    std::printf("# %s skipped: %s\n", l.row.c_str(), l.skip.c_str());
    std::fflush(stdout);
    return;
  }
  auto warm = events(a.warmup, "echo:"), evs = events(a.count, "echo:");
  FunctionConfig fn = function("noop", l.worker, a);
  // As many worker processes as the baseline has echo processes (one per in-flight
  // invocation): a single-threaded Python or Node worker is compared like for like.
  // With more than one in flight, a second line (<row>-1p) runs them all on ONE
  // process, as the `stdio` row does and PRODUCT.md section 4 describes ("many
  // concurrent invocations per process"): the protocol's pipelining.
  fn.workers.min = static_cast<uint32_t>(a.concurrency);
  // The baseline carries a frame of the size of sluice's Invoke (a late id, the
  // longest event id); each of `concurrency` threads has its own child (as `stdio`).
  const std::string frame =
      invoke_frame(evs.back(), static_cast<uint64_t>(a.warmup + a.count), fn.timeout);
  const std::string side = bench_side();
  const std::string label = l.baseline_name + " (" + std::to_string(frame.size()) + " B frames)";
  Stats b;
  if (side != "sluice") {
    std::vector<EchoChild> kids;
    for (int i = 0; i < a.concurrency; ++i) kids.push_back(start_child(l.baseline));
    std::vector<std::string> bufs(static_cast<size_t>(a.concurrency));
    auto once = [&](int t) { return echo_frame(kids[t], frame, bufs[t]); };
    run_sync(a, a.warmup, once);
    b = run_sync(a, a.count, once);
    stop_children(kids);
  }
  if (side == "baseline") return print(l.row.c_str(), label.c_str(), a, b, b);
  if (side == "direct") {
    std::vector<EchoChild> kids;
    for (int i = 0; i < a.concurrency; ++i) kids.push_back(start_sdk_worker(l.worker));
    struct Slot {
      v1::Frame f;
      std::string buf, bytes;
      uint64_t id = 0;
    };
    std::vector<Slot> slots(static_cast<size_t>(a.concurrency));
    auto once = [&](int t) {
      Slot& s = slots[static_cast<size_t>(t)];
      s.bytes.clear();
      const Event& ev = evs[static_cast<size_t>(s.id++ % evs.size())];
      s.bytes = invoke_frame(ev, s.id, fn.timeout);
      return write_all(kids[static_cast<size_t>(t)].to, s.bytes) &&
             read_frame(kids[static_cast<size_t>(t)].from, s.f, s.buf) && s.f.has_result() &&
             s.f.result().id() == s.id && s.f.result().status() == v1::Result::OK;
    };
    run_sync(a, a.warmup, once);
    Stats d = run_sync(a, a.count, once);
    stop_children(kids);
    const std::string dl = l.row + "-direct";
    return print(dl.c_str(), label.c_str(), a, b, d);
  }

  // The no-op example answers success with no output and logs nothing.
  for (uint32_t processes : {fn.workers.min, 1u}) {
    FunctionConfig f = fn;
    f.workers.min = processes;
    workers::StdioRuntime rt(f, cwd());
    CallerLoop caller;
    if (!caller.start(rt)) return;
    run_runtime(a, rt, caller, warm, "");
    Stats r = run_runtime(a, rt, caller, evs, "");
    caller.stop(rt);
    const std::string row = processes == fn.workers.min ? l.row : l.row + "-1p";
    print(row.c_str(), label.c_str(), a, b, r);
    if (fn.workers.min == 1) break;  // one in flight: the same configuration
  }
}

// ---- http: a direct keep-alive POST loop to the same server binary ----
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

// `command` serving HTTP on $PORT: through HttpRuntime, and POSTed to directly. The
// baseline checks the status, and the body when `expect` is not empty.
void bench_http_row(const Args& a, const char* row, const std::vector<std::string>& command,
                    const std::string& expect, const char* baseline) {
  // The baseline's own server: started like the runtime would, on a fixed free port,
  // with PORT plus the PATH and HOME the runtime passes on.
  int port = 0;
  {
    boost::asio::io_context io;
    tcp::acceptor acc(io, tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
    port = acc.local_endpoint().port();
  }
  std::vector<std::string> env{"PORT=" + std::to_string(port)};
  for (const char* k : {"PATH", "HOME"})
    if (const char* v = std::getenv(k)) env.push_back(std::string(k) + "=" + v);
  std::vector<char*> envp = argv_of(env), argv = argv_of(command);
  // In its own process group, ended whole (a launcher such as a pyenv shim may fork).
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
  ::posix_spawnattr_setpgroup(&attr, 0);
  pid_t server = -1;
  if (::posix_spawnp(&server, argv[0], nullptr, &attr, argv.data(), envp.data()) != 0)
    server = -1;
  ::posix_spawnattr_destroy(&attr);
  struct Client {
    boost::asio::io_context io;
    tcp::socket sock{io};
    beast::flat_buffer buf;
  };
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < a.concurrency; ++i) {
    auto c = std::make_unique<Client>();
    for (int tries = 0; tries < 500; ++tries) {
      beast::error_code ec;
      c->sock.connect(tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), port), ec);
      if (!ec) break;
      c->sock = tcp::socket(c->io);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    c->sock.set_option(tcp::no_delay(true));
    clients.push_back(std::move(c));
  }
  auto post = [&](int t) {
    Client& c = *clients[t];
    http::request<http::string_body> req{http::verb::post, "/", 11};
    req.set(http::field::host, "127.0.0.1");
    req.set("ce-id", "bench");
    req.set("ce-source", "/sluice/bench");
    req.set("ce-type", "io.sluice.bench");
    req.set("ce-specversion", "1.0");
    req.body() = "echo:";
    req.keep_alive(true);
    req.prepare_payload();
    beast::error_code ec;
    http::write(c.sock, req, ec);
    http::response<http::string_body> res;
    http::read(c.sock, c.buf, res, ec);
    return !ec && res.result_int() == 200 && (expect.empty() || res.body() == expect);
  };
  run_sync(a, a.warmup, post);
  Stats b = run_sync(a, a.count, post);
  clients.clear();
  if (server > 0) {
    ::kill(-server, SIGKILL);
    ::waitpid(server, nullptr, 0);
  }

  workers::HttpRuntime rt(function("noop", command, a), cwd());
  CallerLoop caller;
  if (!caller.start(rt)) return;
  auto warm = events(a.warmup, "echo:"), evs = events(a.count, "echo:");
  run_runtime(a, rt, caller, warm, expect);
  Stats r = run_runtime(a, rt, caller, evs, expect);
  caller.stop(rt);
  print(row, baseline, a, b, r);
}

void bench_http(const Args& a) {
  bench_http_row(a, "http", {SLUICE_BENCH_HTTP_SERVER}, "", "direct keep-alive POST loop");
}

// ---- toolchains for the same-language rows ----
bool in_path(const std::string& prog) {
  const char* path = std::getenv("PATH");
  if (!path) return false;
  std::string_view rest = path;
  while (true) {
    size_t colon = rest.find(':');
    std::string dir(rest.substr(0, colon));
    if (!dir.empty() && ::access((dir + "/" + prog).c_str(), X_OK) == 0) return true;
    if (colon == std::string_view::npos) return false;
    rest.remove_prefix(colon + 1);
  }
}

bool exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

// Runs `args` (PATH lookup) to the end; its exit status, -1 when it could not run.
// `quiet`: stdout and stderr to /dev/null; otherwise stdout goes to stderr.
int run_to_end(const std::vector<std::string>& args, bool quiet) {
  posix_spawn_file_actions_t fa;
  ::posix_spawn_file_actions_init(&fa);
  if (quiet) {
    ::posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    ::posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  } else {
    ::posix_spawn_file_actions_adddup2(&fa, 2, 1);
  }
  std::vector<char*> argv = argv_of(args);
  pid_t pid;
  int rc = ::posix_spawnp(&pid, argv[0], &fa, nullptr, argv.data(), environ);
  ::posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) return -1;
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The Python rows' interpreter: sdk/python/.venv (what sdk/test.sh makes), else a
// python3 that can import google.protobuf (the SDK's one dependency).
SdkRow python_row(const std::string& repo) {
  SdkRow l{"stdio-python", "Python pipe echo loop", {}, {}, {}};
  std::string py = repo + "/sdk/python/.venv/bin/python";
  if (::access(py.c_str(), X_OK) != 0) {
    py = "python3";
    if (!in_path(py))
      l.skip = "python3 is not installed";
    else if (run_to_end({py, "-c", "import google.protobuf"}, true) != 0)
      l.skip = "no sdk/python/.venv and python3 cannot import google.protobuf (run sdk/test.sh)";
  }
  l.baseline = {py, repo + "/bench/runtimes/pipe_echo.py"};
  l.worker = {py, repo + "/sdk/python/examples/noop/main.py"};
  return l;
}

SdkRow node_row(const std::string& repo) {
  SdkRow l{"stdio-node", "Node.js pipe echo loop", {}, {}, {}};
  if (!in_path("node"))
    l.skip = "node is not installed";
  else if (!exists(repo + "/sdk/node/node_modules/protobufjs"))
    l.skip = "sdk/node/node_modules is missing (run sdk/test.sh, or npm ci in sdk/node)";
  l.baseline = {"node", repo + "/bench/runtimes/pipe_echo.js"};
  l.worker = {"node", repo + "/sdk/node/examples/noop/main.js"};
  return l;
}

// Builds the Go echo example and the Go pipe echo loop into `dir` (go build).
SdkRow go_row(const std::string& repo, const std::string& dir) {
  SdkRow l{"stdio-go", "Go pipe echo loop", {dir + "/pipe_echo"}, {dir + "/noop"}, {}};
  if (!in_path("go")) {
    l.skip = "go is not installed";
    return l;
  }
  if (dir.empty()) {
    l.skip = "no temporary directory for the Go binaries";
    return l;
  }
  const std::pair<std::string, std::string> builds[] = {
      {repo + "/sdk/go", "./examples/noop"},
      {repo + "/bench/runtimes/pipe_echo", "."},
  };
  const std::string outs[] = {dir + "/noop", dir + "/pipe_echo"};
  for (int i = 0; i < 2; ++i) {
    const std::string cmd = "cd " + quote(builds[i].first) +
                            " && GOFLAGS=\"${GOFLAGS:-} -buildvcs=false\" go build -o " +
                            quote(outs[i]) + " " + builds[i].second;
    if (run_to_end({"sh", "-c", cmd}, false) != 0) {
      l.skip = "`" + cmd + "` failed (its output is on stderr)";
      return l;
    }
  }
  return l;
}

// ---- inproc: dlopen + a direct call ----
void bench_inproc(const Args& a) {
  void* h = ::dlopen(SLUICE_BENCH_INPROC_LIB, RTLD_NOW | RTLD_LOCAL);
  if (!h) return;
  auto init = reinterpret_cast<sluice_init_fn>(::dlsym(h, "sluice_init"));
  auto invoke = reinterpret_cast<sluice_invoke_fn>(::dlsym(h, "sluice_invoke"));
  auto release = reinterpret_cast<sluice_free_result_fn>(::dlsym(h, "sluice_free_result"));
  auto shutdown = reinterpret_cast<sluice_shutdown_fn>(::dlsym(h, "sluice_shutdown"));
  void* state = nullptr;
  init("noop", &state);
  static const char data[] = "echo:";
  auto call = [&](int) {
    sluice_event ev{"bench", "/sluice/bench", "io.sluice.bench", "", "", "", "", "",
                    reinterpret_cast<const uint8_t*>(data), 5, 0};
    sluice_result r{};
    bool ok = invoke(state, &ev, &r) == 0 && r.status == SLUICE_OK;
    release(state, &r);
    return ok;
  };
  run_sync(a, a.warmup, call);
  Stats b = run_sync(a, a.count, call);
  shutdown(state);
  ::dlclose(h);

  // Both modes: a pool of `concurrency` threads, and `inline: true` (the call on the
  // invoking thread, as the dispatcher thread does it).
  for (bool inline_calls : {false, true}) {
    FunctionConfig fn = function("noop", {SLUICE_BENCH_INPROC_LIB}, a);
    fn.inline_calls = inline_calls;
    workers::InprocRuntime rt(fn);
    CallerLoop caller;
  if (!caller.start(rt)) return;
    auto warm = events(a.warmup, "echo:"), evs = events(a.count, "echo:");
    run_runtime(a, rt, caller, warm, "");
    Stats r = run_runtime(a, rt, caller, evs, "");
    caller.stop(rt);
    print(inline_calls ? "inproc-inline" : "inproc", "direct call", a, b, r);
  }
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice::bench;
  if (argc > 1 && std::string_view(argv[1]) == "--pipe-echo") return pipe_echo_main();
  spdlog::set_level(spdlog::level::warn);
  ::signal(SIGPIPE, SIG_IGN);  // a baseline child that died must give EPIPE, not kill us
  const std::vector<std::string> rows = {"exec",  "stdio",       "stdio-python", "stdio-node",
                                         "stdio-go", "http",     "http-python",  "inproc"};
  std::string only;
  // The checkout holding sdk/ and bench/runtimes/: this file's ../ unless --repo says.
  std::string repo = std::filesystem::path(__FILE__).parent_path().parent_path().string();
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--only" && i + 1 < argc)
      only = argv[++i];
    else if (std::string_view(argv[i]) == "--repo" && i + 1 < argc)
      repo = argv[++i];
    else
      rest.push_back(argv[i]);
  }
  // --only: a comma-separated list of row names (exact; "inproc-inline" = "inproc").
  std::set<std::string> want;
  if (only.empty() || only == "all") want.insert(rows.begin(), rows.end());
  for (size_t pos = 0; !only.empty() && only != "all" && pos <= only.size();) {
    size_t comma = std::min(only.find(',', pos), only.size());
    std::string name = only.substr(pos, comma - pos);
    pos = comma + 1;
    if (name.empty()) continue;
    if (name == "inproc-inline") name = "inproc";
    if (std::find(rows.begin(), rows.end(), name) == rows.end()) {
      std::string all;
      for (const auto& r : rows) all += (all.empty() ? "" : ",") + r;
      std::fprintf(stderr, "unknown row '%s' in --only (rows: %s)\n", name.c_str(), all.c_str());
      return 2;
    }
    want.insert(name);
  }
  Args a = parse_args(static_cast<int>(rest.size()), rest.data());
  char self[4096];
  ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (n <= 0) return 1;
  self[n] = '\0';

  // Toolchains and builds first, so no compiler runs during a measurement.
  const bool have_repo = exists(repo + "/bench/runtimes/pipe_echo.py");
  const std::string no_repo = repo + "/bench/runtimes is missing (pass --repo <checkout>)";
  std::vector<SdkRow> sdk_rows;
  std::string go_dir;
  for (const char* name : {"stdio-python", "stdio-node", "stdio-go"}) {
    if (!want.count(name)) continue;
    const std::string row = name;
    if (!have_repo) {
      sdk_rows.push_back(SdkRow{row, "", {}, {}, no_repo});
    } else if (row == "stdio-python") {
      sdk_rows.push_back(python_row(repo));
    } else if (row == "stdio-node") {
      sdk_rows.push_back(node_row(repo));
    } else {
      char tmpl[] = "/tmp/sluice-bench-runtimes-go.XXXXXX";
      if (::mkdtemp(tmpl)) go_dir = tmpl;
      sdk_rows.push_back(go_row(repo, go_dir));
    }
  }

  if (want.count("exec")) bench_exec(a);
  if (want.count("stdio")) bench_stdio(a, self);
  for (const SdkRow& l : sdk_rows) bench_stdio_sdk(a, l);
  if (want.count("http")) bench_http(a);
  if (want.count("http-python")) {
    if (!have_repo)
      std::printf("# http-python skipped: %s\n", no_repo.c_str());
    else if (!in_path("python3"))
      std::printf("# http-python skipped: python3 is not installed\n");
    else
      bench_http_row(a, "http-python", {"python3", repo + "/bench/runtimes/http_upstream.py"},
                     "echo:", "direct keep-alive POST loop to the same Python server");
    std::fflush(stdout);
  }
  if (want.count("inproc")) bench_inproc(a);
  if (!go_dir.empty()) std::filesystem::remove_all(go_dir);
  return 0;
}
