// Shared by the C++ benchmark drivers: argument parsing and the one-line report.
#pragma once

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace sluice::bench {

struct Args {
  int concurrency = 4;      // invocations in flight at once
  int count = 5000;         // invocations in total (warm-up not included)
  int warmup = 200;         // invocations before the clock starts
  int payload = 100;        // bytes written to each process's stdin
  int max_seconds = 120;    // hard bound on the measured phase
  int io_threads = 1;       // ExecRuntime only (the engine uses the default, 1)
};

inline void usage(const char* prog) {
  std::fprintf(stderr,
               "usage: %s [--concurrency N] [--count N] [--warmup N] [--payload BYTES]"
               " [--max-seconds S] [--io-threads N]\n",
               prog);
  std::exit(2);
}

inline Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view k = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    int v = std::atoi(argv[++i]);
    if (v < 0) usage(argv[0]);
    if (k == "--concurrency") a.concurrency = v;
    else if (k == "--count") a.count = v;
    else if (k == "--warmup") a.warmup = v;
    else if (k == "--payload") a.payload = v;
    else if (k == "--max-seconds") a.max_seconds = v;
    else if (k == "--io-threads") a.io_threads = v;
    else usage(argv[0]);
  }
  if (a.concurrency < 1 || a.count < 1 || a.max_seconds < 1) usage(argv[0]);
  return a;
}

// The payload: `n` printable bytes ending in a newline.
inline std::string make_payload(int n) {
  std::string p;
  for (int i = 0; i < n; ++i) p += static_cast<char>('a' + i % 26);
  if (n > 0) p.back() = '\n';
  return p;
}

// One machine-readable line, parsed by exec_runtime.sh:
//   name=<n> concurrency=<c> count=<done> errors=<e> seconds=<s> inv_per_s=<r>
inline void report(const char* name, const Args& a, long done, long errors, double seconds) {
  std::printf("name=%s concurrency=%d count=%ld errors=%ld seconds=%.3f inv_per_s=%.1f\n", name,
              a.concurrency, done, errors, seconds, seconds > 0 ? done / seconds : 0.0);
  std::fflush(stdout);
}

}  // namespace sluice::bench
