#include "core/thread_guard.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <stdexcept>
#include <thread>

namespace sluice::testing {
namespace {

TEST(RunGuarded, AnEscapingExceptionIsCaughtAndTheBodyRunsAgain) {
  int calls = 0;
  std::thread t([&] {
    run_guarded(
        "test",
        [&] {
          ++calls;
          if (calls == 1) throw std::runtime_error("Too many open files");
          if (calls == 2) throw 42;  // not a std::exception either
        },
        std::chrono::milliseconds(1));
  });
  t.join();  // std::terminate (the test binary dies) without the guard
  EXPECT_EQ(calls, 3);
}

// An io_context resumes after a handler threw: later handlers still run.
TEST(RunGuarded, AnIoContextGoesOnWithItsOtherHandlers) {
  boost::asio::io_context io;
  bool later = false;
  boost::asio::post(io, [] { throw std::runtime_error("boom"); });
  boost::asio::post(io, [&] { later = true; });
  std::thread t([&] { run_guarded("io", [&] { io.run(); }, std::chrono::milliseconds(1)); });
  t.join();
  EXPECT_TRUE(later);
}

}  // namespace
}  // namespace sluice::testing
