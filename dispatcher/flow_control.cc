// Flow control before an invocation takes a worker: the function's rate_limit (a token
// bucket, dispatcher/rate_limit.h) and max_per_key. The dispatcher calls in at four
// places: pump() asks flow_admit() before it starts the task at the front of the ready
// queue, start_invocation()/on_result() report starts and ends (flow_started/
// flow_done), deliver() lets flow_hold() hold back the source that delivered while
// the function is out of tokens. All on the dispatcher thread (dispatcher_impl.h).
#include <boost/asio/steady_timer.hpp>

#include <algorithm>
#include <cmath>

#include "dispatcher/dispatcher_impl.h"

namespace sluice::dispatcher {

namespace asio = boost::asio;

void Dispatcher::Impl::flow_setup(FunctionState& f) {
  const FunctionConfig& c = *f.b.config;
  if (!c.rate_limit && c.max_per_key == 0) return;
  f.flow = std::make_unique<FlowState>();
  FlowState& fl = *f.flow;
  fl.max_per_key = c.max_per_key;
  if (c.rate_limit) {
    const RateSpec spec{c.rate_limit->per_second, static_cast<double>(c.rate_limit->burst),
                        c.rate_limit->by_key};
    fl.rate.emplace(spec, RateClock::now());
    fl.hold_mark = std::clamp<size_t>(static_cast<size_t>(std::ceil(spec.per_second)), 1,
                                      std::max<size_t>(f.budget / 2, 1));
    fl.timer = std::make_unique<asio::steady_timer>(io);
  }
  fl.throttled = &metrics.events_throttled.Add({{"function", f.name}});
}

// May the task at the front of f.ready start now? Tasks that may not are set aside
// (parked under their key, or waiting for their reserved token) until none is left
// or the front may start; false when nothing may start now.
bool Dispatcher::Impl::flow_admit(FunctionState& f) {
  FlowState& fl = *f.flow;
  const auto now = RateClock::now();
  while (!f.ready.empty()) {
    Task* t = f.ready.front();
    const std::string& key = t->event.key;
    if (fl.max_per_key && !key.empty()) {
      auto it = fl.running_per_key.find(key);
      if (it != fl.running_per_key.end() && it->second >= fl.max_per_key) {
        f.ready.pop_front();
        fl.parked[key].push_back(t);  // flow_done() puts it back
        continue;
      }
    }
    if (!fl.rate || t->token_paid) {
      flow_release(f, true);
      return true;
    }
    if (!fl.rate->spec().by_key) {
      // One bucket: the front waits where it is (its lane keeps its order), and so does
      // everything behind it, until the timer says a token is there.
      if (fl.rate->try_take(key, now)) {
        t->token_paid = true;
        flow_release(f, true);
        return true;
      }
      if (!t->throttled) {
        t->throttled = true;
        fl.throttled->Increment();
      }
      flow_arm(f, now + fl.rate->wait(key, now));
      if (fl.holding.empty() && f.held - f.running >= fl.hold_mark) flow_hold_all(f);
      return false;
    }
    // By key: the token is reserved now (spacing the key's events exactly), and a key
    // out of tokens does not hold up the others.
    const RateWait wait = fl.rate->reserve(key, now);
    t->token_paid = true;
    if (wait <= RateWait::zero()) {
      flow_release(f, true);
      return true;
    }
    f.ready.pop_front();
    t->throttled = true;
    fl.throttled->Increment();
    fl.due.emplace(now + wait, t);
    flow_arm(f, now + wait);
  }
  flow_release(f, false);
  return false;
}

void Dispatcher::Impl::flow_started(FunctionState& f, Task* t) {
  t->token_paid = false;
  t->throttled = false;
  FlowState& fl = *f.flow;
  if (fl.max_per_key && !t->event.key.empty()) ++fl.running_per_key[t->event.key];
}

void Dispatcher::Impl::flow_done(FunctionState& f, Task* t) {
  FlowState& fl = *f.flow;
  if (!fl.max_per_key || t->event.key.empty()) return;
  auto it = fl.running_per_key.find(t->event.key);
  if (it == fl.running_per_key.end()) return;
  if (--it->second == 0) fl.running_per_key.erase(it);
  auto p = fl.parked.find(t->event.key);
  if (p == fl.parked.end()) return;
  // The oldest waiting event of the key goes first; the caller pumps.
  f.ready.push_front(p->second.front());
  p->second.pop_front();
  if (p->second.empty()) fl.parked.erase(p);
}

// Per-function limit: while out of tokens with a second's worth of events waiting,
// the partition (or throttling source) that delivered is held back.
void Dispatcher::Impl::flow_hold(FunctionState& f, SourceState& s, int32_t partition) {
  FlowState& fl = *f.flow;
  if (!fl.rate || fl.rate->spec().by_key || !fl.armed) return;
  if (f.held - f.running < fl.hold_mark) return;
  if (s.traits.throttles) partition = kWholeSource;
  if (fl.holding.insert({&s, partition}).second) hold_partition(s, partition, &fl);
}

// Out of tokens with enough waiting: every partition that has delivered to the function
// (or the whole source, when it throttles) is held back at once, not one by one as
// each delivers again.
void Dispatcher::Impl::flow_hold_all(FunctionState& f) {
  FlowState& fl = *f.flow;
  for (auto& [src, s] : sources) {
    if (s->role != RouteRole::subscription) continue;
    const bool feeds = std::any_of(s->route.begin(), s->route.end(),
                                   [&](const SourceState::Route& r) { return r.fn == &f; });
    if (!feeds) continue;
    if (s->traits.throttles) {
      if (fl.holding.insert({s.get(), kWholeSource}).second) hold_partition(*s, kWholeSource, &fl);
      continue;
    }
    for (auto& [partition, tracker] : s->trackers)
      if (fl.holding.insert({s.get(), partition}).second) hold_partition(*s, partition, &fl);
  }
}

// Lets the held sources go once fewer than hold_mark events wait (`starting`: one of
// them is about to start).
void Dispatcher::Impl::flow_release(FunctionState& f, bool starting) {
  FlowState& fl = *f.flow;
  if (fl.holding.empty()) return;
  const size_t waiting = f.held - f.running - (starting ? 1 : 0);
  if (waiting >= fl.hold_mark) return;
  for (auto [s, partition] : fl.holding) release_partition(*s, partition, &fl);
  fl.holding.clear();
}

void Dispatcher::Impl::flow_arm(FunctionState& f, RateClock::time_point at) {
  FlowState& fl = *f.flow;
  if (fl.armed && fl.armed_at <= at) return;
  fl.armed = true;
  fl.armed_at = at;
  fl.timer->expires_at(at);
  fl.timer->async_wait([this, &f](const boost::system::error_code& ec) {
    if (ec || stopped) return;  // cancelled by an earlier flow_arm(), or stopping
    flow_fire(f);
  });
}

// A token is due: tasks whose reserved token is due go to the front of the queue (in
// the order they fall due), and the queue is pumped.
void Dispatcher::Impl::flow_fire(FunctionState& f) {
  FlowState& fl = *f.flow;
  fl.armed = false;
  const auto now = RateClock::now();
  auto end = fl.due.upper_bound(now);
  std::vector<Task*> due;
  for (auto it = fl.due.begin(); it != end; ++it) due.push_back(it->second);
  fl.due.erase(fl.due.begin(), end);
  f.ready.insert(f.ready.begin(), due.begin(), due.end());
  if (!fl.due.empty()) flow_arm(f, fl.due.begin()->first);
  pump(f);
  if (!fl.armed) flow_release(f, false);
}

// A synchronous call does not wait for a token or a key's turn: it is answered busy.
std::optional<std::string> Dispatcher::Impl::flow_refuse_sync(FunctionState& f, const Event& ev) {
  FlowState& fl = *f.flow;
  if (fl.max_per_key && !ev.key.empty()) {
    auto it = fl.running_per_key.find(ev.key);
    if (it != fl.running_per_key.end() && it->second >= fl.max_per_key)
      return "function '" + f.name + "' runs max_per_key (" + std::to_string(fl.max_per_key) +
             ") invocations of this key already; try again";
  }
  if (!fl.rate) return std::nullopt;
  const auto now = RateClock::now();
  if (fl.rate->try_take(ev.key, now)) return std::nullopt;
  fl.throttled->Increment();
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(fl.rate->wait(ev.key, now));
  return "function '" + f.name + "' is over its rate_limit; try again in " +
         std::to_string(ms.count()) + " ms";
}

}  // namespace sluice::dispatcher
