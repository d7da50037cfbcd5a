#include "core/io_loop.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <thread>
#include <vector>

namespace sluice::testing {
namespace {

namespace asio = boost::asio;
using std::chrono::microseconds;

// Runs `n` handlers posted from another thread through run_spinning and checks that
// each ran once, in order, and that the loop returned when the context stopped.
void runs_everything_in_order(microseconds spin, bool pred) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::vector<int> seen;
  std::atomic<int> pred_calls{0};
  std::thread loop([&] {
    run_spinning(io, spin, [&] {
      ++pred_calls;
      return pred;
    });
  });
  std::thread poster([&] {
    for (int i = 0; i < 2000; ++i) {
      asio::post(io, [&, i] { seen.push_back(i); });
      if (i % 100 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    asio::post(io, [&] { guard.reset(); });
  });
  poster.join();
  loop.join();  // returns once the guard is gone and nothing is left
  ASSERT_EQ(seen.size(), 2000u);
  for (int i = 0; i < 2000; ++i) {
    ASSERT_EQ(seen[i], i);
  }
  if (spin.count() == 0) {
    EXPECT_EQ(pred_calls.load(), 0);  // plain io.run()
  }
}

TEST(RunSpinning, WithoutSpinIsPlainRun) { runs_everything_in_order(microseconds(0), true); }
TEST(RunSpinning, SpinningRunsEveryHandlerInOrder) {
  runs_everything_in_order(microseconds(50), true);
}
TEST(RunSpinning, NotWorthSpinningStillRunsEveryHandler) {
  runs_everything_in_order(microseconds(50), false);
}

TEST(RunSpinning, ReturnsWhenStoppedWhileSleeping) {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  std::thread loop([&] { run_spinning(io, microseconds(50)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(5));  // past the spin: asleep
  io.stop();
  loop.join();
  EXPECT_TRUE(io.stopped());
}

TEST(RunSpinning, TimersFireWhileSpinningAndWhileAsleep) {
  asio::io_context io;
  int fired = 0;
  asio::steady_timer soon(io, std::chrono::microseconds(10));  // within the spin
  asio::steady_timer later(io, std::chrono::milliseconds(3));  // after it: asleep
  soon.async_wait([&](boost::system::error_code ec) { fired += !ec; });
  later.async_wait([&](boost::system::error_code ec) { fired += !ec; });
  run_spinning(io, microseconds(50));  // returns when both have fired (no more work)
  EXPECT_EQ(fired, 2);
}

}  // namespace
}  // namespace sluice::testing
