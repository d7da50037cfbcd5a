#include "workers/runtime_loop.h"

#include "core/thread_guard.h"
#include "workers/logger.h"

namespace sluice::workers {

RuntimeLoop::Hold::Hold(RuntimeLoop* loop) noexcept : loop_(loop) {
  if (!loop_) return;
  std::lock_guard lk(loop_->mu_);
  ++loop_->holds_;
}

RuntimeLoop::Hold::~Hold() {
  if (!loop_) return;
  // Under the lock: finish() may let the runtime be destroyed as soon as it sees zero.
  std::lock_guard lk(loop_->mu_);
  if (--loop_->holds_ == 0) loop_->cv_.notify_all();
}

RuntimeLoop::~RuntimeLoop() {
  // A runtime destroyed without finish() (never started): nothing runs on the thread.
  if (thread_.joinable()) {
    guard_.reset();
    thread_.join();
  }
}

void RuntimeLoop::lend(std::shared_ptr<boost::asio::io_context> loop) {
  if (!loop || thread_.joinable()) return;
  io_ = std::move(loop);
  own_ = false;
}

void RuntimeLoop::start(std::function<void()> run) {
  if (!own_ || thread_.joinable()) return;
  guard_.emplace(io_->get_executor());
  thread_ = std::thread([run = std::move(run)] { run_guarded("runtime io", run); });
}

void RuntimeLoop::finish(const std::string& who) {
  if (thread_.joinable()) {
    guard_.reset();
    thread_.join();
  }
  std::unique_lock lk(mu_);
  while (!cv_.wait_for(lk, std::chrono::seconds(10), [&] { return holds_ == 0; }))
    log().warn("{}: stopping, {} handler(s) still queued on the dispatcher's loop (is it "
               "running?)",
               who, holds_);
}

}  // namespace sluice::workers
