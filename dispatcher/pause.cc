// Pause and resume of a function (Dispatcher::set_paused; `sluice pause` / `resume`).
//
// A paused function starts no invocation (pump() checks FunctionState::paused); what it
// holds waits, uncommitted, and what runs finishes and commits. Intake stops by holding
// back the sources that feed only this function, with the budget's machinery
// (hold_partition; kWholeSource for a source that throttles) under a holder of its own
// (&FunctionState::pause_holding), so the budget's releases never lift a pause. A
// source shared with other functions is not held: they keep running, and the paused
// function's queue grows until its budget holds the source as for any slow function.
//
// Threads: everything but Dispatcher::set_paused runs on the dispatcher thread.
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <future>

#include "dispatcher/dispatcher_impl.h"

namespace sluice::dispatcher {

namespace asio = boost::asio;

namespace {
// Whether every route of `s` goes to `f`: then holding `s` back stops nobody else.
bool feeds_only(const SourceState& s, const FunctionState& f) {
  for (const auto& r : s.route)
    if (r.fn != &f) return false;
  return true;
}
}  // namespace

bool Dispatcher::set_paused(const std::string& function, bool paused) {
  if (!impl_->thread.joinable() || impl_->io.stopped()) {
    auto it = impl_->functions.find(function);  // set-up (or stopped): no thread to ask
    if (it == impl_->functions.end()) return false;
    impl_->apply_pause(*it->second, paused);
    return true;
  }
  // The map of functions is fixed once the thread runs: whether the function exists is
  // answered here, so a busy dispatcher thread never makes a known function "unknown".
  if (impl_->functions.find(function) == impl_->functions.end()) return false;
  auto done = std::make_shared<std::promise<void>>();
  auto applied = done->get_future();
  asio::post(impl_->io, [this, function, paused, done] {
    impl_->apply_pause(*impl_->functions.at(function), paused);
    done->set_value();
  });
  // Wait (bounded) so that the caller's answer follows the change; if the thread is
  // that busy, the change is still queued and takes effect when it gets to it.
  if (applied.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    spdlog::warn("{} of function '{}' is queued: the dispatcher thread has not answered for 5 s",
                 paused ? "pause" : "resume", function);
  return true;
}

// sluice_consumer_paused of each source feeding `f`: 1 while every function it feeds
// is paused (the lag alerts leave such a consumer alone).
void Dispatcher::Impl::export_consumer_paused(const FunctionState& f) {
  for (auto& [src, s] : sources) {
    bool feeds = false, all = true;
    for (const auto& r : s->route) {
      feeds = feeds || r.fn == &f;
      all = all && r.fn->paused;
    }
    if (!feeds) continue;
    metrics.consumer_paused
        .Add({{"broker", std::string(src->broker())},
              {"topic", std::string(src->topic())},
              {"group", std::string(src->group())}})
        .Set(all ? 1 : 0);
  }
}

void Dispatcher::Impl::apply_pause(FunctionState& f, bool paused) {
  f.probe->paused->Set(paused ? 1 : 0);
  if (f.paused == paused) return;
  f.paused = paused;
  export_consumer_paused(f);
  if (paused) {
    spdlog::info("[fn {}] paused: intake held, running invocations finish", f.name);
    // The partitions seen so far now; others when they next deliver (deliver()).
    for (auto& [src, s] : sources) {
      if (!feeds_only(*s, f)) continue;
      if (s->traits.throttles) {
        hold_for_pause(f, *s, kWholeSource);
        continue;
      }
      // Per-message brokers (NATS) have no partitions: everything comes on partition 0.
      if (!s->traits.commits_offsets) hold_for_pause(f, *s, 0);
      for (const auto& [partition, tracker] : s->trackers) hold_for_pause(f, *s, partition);
      for (const auto& [partition, gate] : s->gates) hold_for_pause(f, *s, partition);
    }
    return;
  }
  spdlog::info("[fn {}] resumed ({} event(s) waiting)", f.name, f.held);
  for (auto [s, partition] : f.pause_holding) release_partition(*s, partition, &f.pause_holding);
  f.pause_holding.clear();
  pump(f);
}

void Dispatcher::Impl::hold_for_pause(FunctionState& f, SourceState& s, int32_t partition) {
  if (!feeds_only(s, f)) return;
  if (s.traits.throttles) partition = kWholeSource;
  if (!f.pause_holding.insert({&s, partition}).second) return;
  hold_partition(s, partition, &f.pause_holding);
}

// At shutdown: what paused functions hold and have not started (queued, behind a lane's
// head, or waiting for a retry) is given up uncommitted, so drain() does not wait for
// it; it is delivered again after a restart.
void Dispatcher::Impl::abandon_paused() {
  for (auto& [name, fp] : functions) {
    FunctionState& f = *fp;
    if (!f.paused) continue;
    std::vector<Task*> waiting;
    for (Task* t = live; t; t = t->live_next)
      if (t->fn == &f && t->pending && t->timer && t->timer->cancel() > 0) waiting.push_back(t);
    size_t n = waiting.size();
    for (Task* t : waiting) {
      t->pending->abandoned = true;
      finish_task(t);  // a lane head: its next task becomes ready (and is taken below)
    }
    while (!f.ready.empty()) {
      Task* t = f.ready.front();
      f.ready.pop_front();
      if (t->pending) t->pending->abandoned = true;
      finish_task(t);
      ++n;
    }
    if (n) spdlog::info("[fn {}] paused at shutdown: {} event(s) left uncommitted", f.name, n);
  }
}

}  // namespace sluice::dispatcher
