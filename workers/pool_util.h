// Small pieces shared by the runtimes: a failed result (every runtime), the checks of
// start() and the function's clean environment (exec, stdio, http), the output logger
// with a byte budget per time window (exec, stdio, http), the restart backoff (stdio,
// http, exec's delayed spawns) and the deadline list of calls sharing one timeout
// (exec, stdio).
//
// Threading: free functions; the classes are plain values owned by one worker / one
// runtime thread.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/clock.h"
#include "core/result.h"
#include "core/runtime.h"
#include "workers/environment.h"
#include "workers/logger.h"

namespace sluice::workers {

// A result with outcome `o` (not success) and `message`.
InvocationResult failure(Outcome o, std::string message);

// What start() of a process runtime (`kind`: "exec", "stdio", "http") checks before
// anything starts: not started before (`created`), a non-empty command, an existing
// working directory (`base_dir`, when set).
Result<void> check_start(std::string_view kind, bool created, const std::string& function,
                         const std::vector<std::string>& command, const std::string& base_dir);

// The clean environment of a function's processes (Environment::clean of its `env`);
// each entry that cannot be exported is left out with a warning naming it.
Environment function_environment(const FunctionConfig& fn);

// A byte budget per time window for what a function process makes sluice log (its
// stderr, an http server's stdout, a stdio worker's Log frames not tied to an
// invocation): at most `bytes` per `window`; the window starts at the first use
// after the previous one ended. What does not fit is dropped and counted (in
// `dropped`, a runtime's counter read by stats(), when given); the drops of a
// window are reported once, as "dropped N bytes of <what>", when the next window
// starts or at the end (report()).
struct LogBudgetOptions {
  size_t bytes = size_t{1} << 20;
  Millis window{60000};
};

class LogBudget {
 public:
  using Clock = std::chrono::steady_clock;
  LogBudget(LogBudgetOptions o, std::atomic<uint64_t>* dropped) : o_(o), counter_(dropped) {}

  // Whether `cost` bytes may be logged now; false: they are counted as dropped.
  // `prefix` ("[fn f] [worker 12]") and `what` ("stderr") name the drop report.
  bool take(size_t cost, std::string_view prefix, std::string_view what,
            Clock::time_point now = Clock::now()) {
    if (now >= window_end_) {
      report(prefix, what);
      window_end_ = now + o_.window;
      used_ = 0;
    }
    if (cost <= o_.bytes - std::min(used_, o_.bytes)) {
      used_ += cost;
      return true;
    }
    dropped_ += cost;
    if (counter_) counter_->fetch_add(cost, std::memory_order_relaxed);
    return false;
  }
  // Logs the drops not reported yet (one line), if any.
  void report(std::string_view prefix, std::string_view what) {
    if (dropped_ == 0) return;
    log().warn("{} dropped {} bytes of {} (more than {} bytes in {} ms)", prefix, dropped_, what,
               o_.bytes, o_.window.count());
    dropped_ = 0;
  }

 private:
  LogBudgetOptions o_;
  std::atomic<uint64_t>* counter_;
  Clock::time_point window_end_{};
  size_t used_ = 0;
  uint64_t dropped_ = 0;
};

// Logs what a process writes to a pipe line by line as "<prefix> <line>" (info;
// prefix "[fn <name>] [worker <pid>]" or "[fn <name>] [event <id>]"), lines cut at
// 4 KiB, within a LogBudget: the one stderr limiter of exec, stdio and http.
class OutputLines {
 public:
  OutputLines(std::string prefix, std::string what, LogBudgetOptions budget,
              std::atomic<uint64_t>* dropped)
      : prefix_(std::move(prefix)), what_(std::move(what)), budget_(budget, dropped) {}

  void feed(std::string_view bytes) {
    while (!bytes.empty()) {
      size_t nl = bytes.find('\n');
      line_.append(bytes.substr(0, nl));
      if (nl == bytes.npos) {
        if (line_.size() >= kMaxLine) flush();
        return;
      }
      flush();
      bytes.remove_prefix(nl + 1);
    }
  }
  // At EOF: logs a last unterminated line and reports what was dropped.
  void finish() {
    if (!line_.empty()) flush();
    budget_.report(prefix_, what_);
  }

 private:
  void flush() {
    std::string_view l = line_;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (budget_.take(l.size() + 1, prefix_, what_)) log().info("{} {}", prefix_, l);
    line_.clear();
  }
  static constexpr size_t kMaxLine = 4096;
  std::string prefix_, what_;
  LogBudget budget_;
  std::string line_;
};

// Restart delays: `initial`, doubling per consecutive failure, at most `max`.
class RestartBackoff {
 public:
  RestartBackoff(Millis initial, Millis max) : initial_(initial), max_(max) {}
  Millis next() {
    Millis d = initial_;
    for (unsigned i = 0; i < failures_ && d < max_; ++i) d *= 2;
    ++failures_;
    return std::min(d, max_);
  }
  void reset() { failures_ = 0; }
  unsigned failures() const { return failures_; }

 private:
  Millis initial_, max_;
  unsigned failures_ = 0;
};

// The calls of one runtime thread that share one timeout, in start order, which is
// deadline order: an intrusive doubly linked list (no allocation), so one watchdog
// timer armed at the head's deadline replaces a timer per call. `T` holds a
// DeadlineLink<T> as member `L`; a linked T must stay put until it is unlinked.
template <class T>
struct DeadlineLink {
  SteadyTime due{};
  T* prev = nullptr;
  T* next = nullptr;
  bool linked = false;
};

template <class T, DeadlineLink<T> T::*L>
class DeadlineList {
 public:
  // Appends `x`, due `timeout` from now (callers share one timeout: the order holds).
  void push_back(T& x, Millis timeout) {
    DeadlineLink<T>& l = x.*L;
    l.due = deadline_in(timeout);
    l.prev = tail_;
    (tail_ ? (tail_->*L).next : head_) = &x;
    tail_ = &x;
    l.linked = true;
  }
  // Unlinks `x`; nothing when it is not linked.
  void erase(T& x) {
    DeadlineLink<T>& l = x.*L;
    if (!l.linked) return;
    (l.prev ? (l.prev->*L).next : head_) = l.next;
    (l.next ? (l.next->*L).prev : tail_) = l.prev;
    l.prev = l.next = nullptr;
    l.linked = false;
  }
  // The oldest call if it is due at `now`, else null.
  T* due(SteadyTime now) const { return head_ && (head_->*L).due <= now ? head_ : nullptr; }
  // When a watchdog armed now must fire: `timeout` from now, or the oldest deadline if
  // sooner. A call linked later is due later still.
  SteadyTime next_check(Millis timeout) const {
    SteadyTime at = deadline_in(timeout);
    return head_ && (head_->*L).due < at ? (head_->*L).due : at;
  }
  void clear() { head_ = tail_ = nullptr; }  // the calls are going away with it

 private:
  T* head_ = nullptr;  // the oldest deadline
  T* tail_ = nullptr;
};

}  // namespace sluice::workers
