// RuntimeLoop: the loop a stdio/http runtime runs on, its own or a lent one, and the
// Hold count that lets stop() outlive every handler it gave a lent loop.
#include "workers/runtime_loop.h"

#include <boost/asio/post.hpp>
#include <future>

#include "workers/tests/test_util.h"

namespace sluice::workers::testing {
namespace {

TEST(RuntimeLoop, OwnLoopRunsOnItsOwnThreadAndFinishJoinsIt) {
  RuntimeLoop loop;
  EXPECT_FALSE(loop.lent());
  loop.start([&] { loop.io().run(); });
  std::promise<std::thread::id> where;
  boost::asio::post(loop.io(),
                    [&, h = loop.hold()] { where.set_value(std::this_thread::get_id()); });
  auto id = where.get_future().get();
  EXPECT_NE(id, std::this_thread::get_id());
  loop.finish("test");
  EXPECT_TRUE(loop.io().stopped());  // run() returned: nothing was pending any more
}

TEST(RuntimeLoop, FinishOnALentLoopWaitsForEveryHeldHandler) {
  auto io = std::make_shared<boost::asio::io_context>();
  RuntimeLoop loop;
  loop.lend(io);
  EXPECT_TRUE(loop.lent());
  EXPECT_EQ(&loop.io(), io.get());
  loop.start([] { ADD_FAILURE() << "a lent loop starts no thread"; });
  std::atomic<int> ran{0};
  // A handler, a copy of one still queued, and one moved twice: all counted.
  auto h = loop.hold();
  auto copy = h;
  boost::asio::post(*io, [&, h] { ++ran; });
  boost::asio::post(*io, [&, h = std::move(copy)] { ++ran; });
  auto moved = std::move(h);
  auto twice = std::move(moved);
  std::atomic<bool> finished{false};
  std::thread stopper([&] {
    loop.finish("test");
    finished = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(finished) << "finish() returned while handlers were still queued";
  io->run();  // the lender runs them
  EXPECT_EQ(ran, 2);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(finished) << "finish() returned while a Hold was still alive";
  { auto gone = std::move(twice); }
  stopper.join();
  EXPECT_TRUE(finished);
}

TEST(RuntimeLoop, AHandlerDestroyedWithoutRunningReleasesItsHold) {
  RuntimeLoop loop;
  loop.lend(std::make_shared<boost::asio::io_context>());
  {
    boost::asio::io_context gone;  // a loop that ends with the handler still queued
    boost::asio::post(gone, [h = loop.hold()] { ADD_FAILURE() << "never run"; });
  }
  loop.finish("test");  // returns: the destroyed handler released its Hold
}

TEST(RuntimeLoop, LendingAfterStartIsIgnored) {
  RuntimeLoop loop;
  loop.start([&] { loop.io().run(); });
  auto* own = &loop.io();
  loop.lend(std::make_shared<boost::asio::io_context>());
  EXPECT_FALSE(loop.lent());
  EXPECT_EQ(&loop.io(), own);
  loop.finish("test");
}

}  // namespace
}  // namespace sluice::workers::testing
