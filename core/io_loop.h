// run_spinning: an io_context loop that polls for a short while before it sleeps.
//
// A thread that hands work to another thread and waits for the answer (the dispatcher
// starting an invocation, a runtime's io thread waiting for a worker's reply) pays a
// thread wake-up per answer if it sleeps at once: on a VM that costs more than a
// worker's whole round trip. After each handler run, this loop keeps polling for up to
// `spin`, yielding the CPU to whatever else is runnable on it, so an answer that comes
// within that window is taken without a wake-up. It costs CPU only around activity: an
// idle context sleeps in run_one(). spin = 0 is the plain io.run().
#pragma once

#include <sched.h>

#include <boost/asio/io_context.hpp>
#include <chrono>

namespace sluice {

// `worth_spinning` (called on this thread between handlers) says whether an answer is
// expected soon; while it is false the loop sleeps at once.
template <class Pred>
void run_spinning(boost::asio::io_context& io, std::chrono::microseconds spin,
                  Pred&& worth_spinning) {
  using Clock = std::chrono::steady_clock;
  if (spin.count() <= 0) {
    io.run();
    return;
  }
  while (!io.stopped()) {
    auto until = Clock::now() + spin;
    while (!io.stopped() && worth_spinning()) {
      if (io.poll()) {
        until = Clock::now() + spin;
        continue;
      }
      if (Clock::now() >= until) break;
      ::sched_yield();  // a thread or process waiting for this CPU goes first
    }
    io.run_one();
  }
}

inline void run_spinning(boost::asio::io_context& io, std::chrono::microseconds spin) {
  run_spinning(io, spin, [] { return true; });
}

}  // namespace sluice
