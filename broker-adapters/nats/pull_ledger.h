// PullLedger: what a JetStream pull loop believes is still asked for. Pure
// bookkeeping (no NATS, no lock: the owner guards it), so its rules are tested
// alone (tests/pull_ledger_test.cc).
//
// A pull request asks for `n` messages and lives at the server until it is filled
// or its `expires` passes (then the server answers 408 with how many it left
// unfilled). The server serves a consumer's waiting requests in order, so
// arrivals are charged to the oldest request. What the ledger can never see is a
// request the server does not have (lost in a restart, dropped for lack of
// interest): such a "phantom" would be charged with the next request's messages,
// and the next request would inherit the phantom's unfilled count with a fresh
// deadline — for ever, as long as messages keep coming, shrinking the window the
// loop dares to ask for. So a request that is charged to the end hands its
// deadline on: the one after it expires no later than it would have. Whatever was
// asked for is therefore forgotten at most one deadline after the oldest request
// still counted was sent; at worst the loop asks for a little more than the free
// window once (harmless: the server's MaxAckPending still bounds what it sends).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>

namespace sluice::nats {

class PullLedger {
 public:
  using Clock = std::chrono::steady_clock;

  // A request for n messages, surely over at the server by `deadline`.
  void asked(int64_t n, Clock::time_point deadline) {
    if (n <= 0) return;
    pulls_.push_back({deadline, n});
    outstanding_ += n;
    ++requests_;
  }

  // n messages arrived (charged to the oldest requests first).
  void arrived(int64_t n) {
    while (n > 0 && !pulls_.empty()) {
      Pull& front = pulls_.front();
      const int64_t take = std::min(n, front.left);
      front.left -= take;
      outstanding_ -= take;
      n -= take;
      if (front.left == 0) pop_front();
    }
  }

  // The server ended the oldest request with `unfilled` messages not sent (a 408
  // or 409 status); unfilled < 0: not said, the whole rest of the oldest.
  void ended(int64_t unfilled) {
    if (pulls_.empty()) return;
    arrived(unfilled < 0 ? pulls_.front().left : unfilled);
  }

  // Drops the requests whose deadline passed.
  void expire(Clock::time_point now) {
    while (!pulls_.empty() && pulls_.front().deadline <= now) {
      outstanding_ -= pulls_.front().left;
      pulls_.pop_front();
    }
  }

  // The server knows none of them (a reconnect, "no responders").
  void forget() {
    pulls_.clear();
    outstanding_ = 0;
  }

  int64_t outstanding() const { return outstanding_; }  // asked for, not yet arrived
  size_t live() const { return pulls_.size(); }          // requests counted
  uint64_t requests() const { return requests_; }        // asked() calls so far

 private:
  struct Pull {
    Clock::time_point deadline;
    int64_t left;  // messages not yet arrived
  };
  void pop_front() {
    const Clock::time_point d = pulls_.front().deadline;
    pulls_.pop_front();
    // The next one can not outlive this one's deadline (see the top of the file).
    if (!pulls_.empty()) pulls_.front().deadline = std::min(pulls_.front().deadline, d);
  }

  std::deque<Pull> pulls_;
  int64_t outstanding_ = 0;
  uint64_t requests_ = 0;
};

}  // namespace sluice::nats
