// The event loop a long-lived process runtime (stdio, http) runs on: an io thread of
// its own, or the loop the dispatcher lends it (Runtime::share_loop), so that a
// worker's answer is read, and its result taken in, on the dispatcher thread with no
// thread hand-off.
//
// A lent loop outlives the runtime's use of it in two ways: it is held by shared_ptr
// (the runtime's descriptors and timers, destroyed before this object, never outlive
// it), and every handler the runtime gives it captures a Hold, which counts itself
// while it lives (copies and moves included, whether the handler ran or was only
// destroyed); finish() returns once none is left, so no handler of a destroyed runtime
// can run later on the lender's thread.
//
// Lifecycle: construct -> lend()? -> start() -> ... post the last handlers ->
// finish() -> destroy. Threads: lend/start/finish on the runtime's owning thread;
// Holds are made and dropped on any thread (`mu_`).
#pragma once

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>

namespace sluice::workers {

class RuntimeLoop {
 public:
  class Hold {
   public:
    explicit Hold(RuntimeLoop* loop) noexcept;
    Hold(const Hold& o) noexcept : Hold(o.loop_) {}
    Hold(Hold&& o) noexcept : loop_(std::exchange(o.loop_, nullptr)) {}
    Hold& operator=(const Hold&) = delete;
    ~Hold();

   private:
    RuntimeLoop* loop_;
  };

  RuntimeLoop() : io_(std::make_shared<boost::asio::io_context>()) {}
  RuntimeLoop(const RuntimeLoop&) = delete;
  RuntimeLoop& operator=(const RuntimeLoop&) = delete;
  ~RuntimeLoop();

  // Runs on `loop` (run by the lender) instead of a thread of its own. Before start().
  void lend(std::shared_ptr<boost::asio::io_context> loop);
  bool lent() const { return !own_; }
  boost::asio::io_context& io() { return *io_; }
  bool on_loop_thread() { return io_->get_executor().running_in_this_thread(); }

  // Own loop: starts the io thread, which calls `run` (e.g. run_spinning on io()).
  // Lent loop: nothing to start.
  void start(std::function<void()> run);
  // After the runtime's last handlers were posted: an own io thread is let go (its
  // run() returns once nothing is pending) and joined; then waits until no Hold is
  // left, logging every 10 s that `who` still waits (a lent loop nobody runs).
  void finish(const std::string& who);

  Hold hold() noexcept { return Hold(this); }

 private:
  std::shared_ptr<boost::asio::io_context> io_;
  bool own_ = true;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>>
      guard_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  size_t holds_ = 0;  // live Holds, guarded by mu_
};

}  // namespace sluice::workers
