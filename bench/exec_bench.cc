// sluice's exec runtime alone: workers::ExecRuntime running `cat` once per event,
// driven the way the dispatcher drives it (one driver thread keeps `concurrency`
// invocations in flight; callbacks arrive on the runtime's io thread). Same
// arguments and report line as spawn_baseline.cc, its raw baseline.
//
// Threads: main = the driver; ExecRuntime's own io thread(s) call back. `mu`
// guards the in-flight count and the tallies. Bounded by --count and --max-seconds.
#include <unistd.h>

#include <condition_variable>
#include <mutex>
#include <vector>

#include "common.h"
#include "workers/exec_runtime.h"

namespace sluice::bench {
namespace {

// Events as the dispatcher would hold them after reading the local queue, so that
// the per-event environment (CE_*, SLUICE_*) is as large as in the engine.
std::vector<Event> make_events(int n, const std::string& payload, int64_t first_offset) {
  std::vector<Event> evs(static_cast<size_t>(n));
  std::string now = format_rfc3339(now_unix_ms());
  for (int i = 0; i < n; ++i) {
    Event& e = evs[static_cast<size_t>(i)];
    e.id = new_event_id();
    e.source = "/sluice/bench";
    e.type = "io.sluice.publish";
    e.time = now;
    e.datacontenttype = "text/plain";
    e.data = payload;
    e.broker = "local";
    e.topic = "bench";
    e.partition = i % 4;
    e.offset = first_offset + i;
    e.attempt = 1;
  }
  return evs;
}

struct Phase {
  long done = 0, errors = 0;
  double seconds = 0;
  std::string first_error;
};

Phase run(workers::ExecRuntime& rt, const Args& a, const std::vector<Event>& evs,
          const std::string& payload) {
  std::mutex mu;
  std::condition_variable cv;
  int inflight = 0;
  Phase p;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::seconds(a.max_seconds);
  for (const Event& ev : evs) {
    {
      std::unique_lock lk(mu);
      cv.wait(lk, [&] { return inflight < a.concurrency; });
      ++inflight;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      std::lock_guard lk(mu);
      --inflight;
      break;
    }
    rt.invoke(ev, [&](InvocationResult&& r) {
      bool ok = r.outcome == Outcome::success && r.output == payload;
      // Notified under the lock: once `inflight` reaches 0 the driver may return and
      // destroy `cv`, so nothing may touch it after the lock is released.
      std::lock_guard lk(mu);
      --inflight;
      ++p.done;
      if (!ok && !p.errors++)
        p.first_error = std::string(to_string(r.outcome)) + ": " + r.message;
      cv.notify_one();
    });
  }
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return inflight == 0; });
  std::chrono::duration<double> el = std::chrono::steady_clock::now() - start;
  p.seconds = el.count();
  return p;
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
  using namespace sluice;
  using namespace sluice::bench;
  Args a = parse_args(argc, argv);
  std::string payload = make_payload(a.payload);
  FunctionConfig fn;
  fn.name = "cat";
  fn.command = {"cat"};
  fn.timeout = Millis{30000};
  fn.concurrency = static_cast<uint32_t>(a.concurrency);
  workers::ExecOptions opts;
  opts.io_threads = static_cast<unsigned>(a.io_threads);
  char cwd[4096];
  if (!::getcwd(cwd, sizeof cwd)) return 1;
  workers::ExecRuntime rt(fn, cwd, opts);
  if (auto r = rt.start(); !r) {
    std::fprintf(stderr, "exec runtime: %s\n", r.error().message.c_str());
    return 1;
  }
  auto warm = make_events(a.warmup, payload, 0);
  auto evs = make_events(a.count, payload, a.warmup);
  if (a.warmup > 0) run(rt, a, warm, payload);
  Phase p = run(rt, a, evs, payload);
  rt.stop(Millis{5000});
  report("exec_runtime", a, p.done, p.errors, p.seconds);
  if (p.errors) std::fprintf(stderr, "first error: %s\n", p.first_error.c_str());
  return p.errors == 0 && p.done == a.count ? 0 : 1;
}
