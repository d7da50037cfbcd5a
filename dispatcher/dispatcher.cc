#include "dispatcher/dispatcher.h"

#include "core/clock.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <strings.h>

#include <algorithm>
#include <future>
#include <limits>

#include "core/io_loop.h"
#include "config/backoff.h"
#include "dispatcher/dispatcher_impl.h"
#include "dispatcher/retry_topic.h"
#include "dlq/record.h"
#include "core/thread_guard.h"

namespace sluice::dispatcher {

namespace asio = boost::asio;

Dispatcher::Impl::Impl(metrics::Metrics& m, DispatcherOptions o, std::atomic<size_t>& held)
    : metrics(m), opts(o), held_total(held), rng(o.seed ? o.seed : std::random_device{}()) {
  // Asio makes the loop's reactor (an epoll fd, an eventfd, a timerfd) on the first
  // timer, not with the loop: make it now, at start-up. Made by the first retry
  // while the process is out of fds, it threw from the middle of on_result().
  asio::steady_timer reactor_now(io);
  if (!opts.control_keys) own_keys.emplace(seal::Keyring::random());
  keys = opts.control_keys ? opts.control_keys : &*own_keys;
}

Dispatcher::Dispatcher(metrics::Metrics& metrics, DispatcherOptions opts)
    : impl_(std::make_unique<Impl>(metrics, opts, held_)) {}

Dispatcher::~Dispatcher() {
  stop();
  while (Task* t = impl_->live) {
    impl_->unlink(t);
    if (t->pending && --t->pending->remaining == 0) delete t->pending;
    delete t;
  }
}

void Dispatcher::add_function(const FunctionBinding& b) {
  auto f = std::make_unique<FunctionState>();
  f->b = b;
  f->name = b.config->name;
  f->probe = std::make_unique<metrics::FunctionProbe>(impl_->metrics, f->name);
  const size_t c = b.config->concurrency;
  f->budget = impl_->opts.queue_budget ? impl_->opts.queue_budget : held_budget(static_cast<uint32_t>(c));
  f->limit = static_cast<uint32_t>(c);
  f->dlq_topic = b.config->dead_letter.topic;
  f->dlq_published = &impl_->metrics.published.Add(
      {{"broker", b.config->dead_letter.broker}, {"topic", f->dlq_topic}});
  if (b.output_sink && b.config->output) {
    f->output_topic = b.config->output->topic;
    f->output_published = &impl_->metrics.published.Add(
        {{"broker", b.config->output->broker}, {"topic", f->output_topic}});
  }
  if (b.retry_sink) {
    f->retry_published = &impl_->metrics.published.Add(
        {{"broker", std::string(b.retry_sink->broker())}, {"topic", b.retry_topic}});
  }
  // A runtime reading answers on pipes reads them on this loop: no thread hand-off
  // between a worker's answer and on_result (see Runtime::share_loop).
  if (b.runtime) b.runtime->share_loop(impl_->loop);
  if (b.config->paused) impl_->apply_pause(*f, true);  // `paused: true`: starts paused
  impl_->flow_setup(*f);
  impl_->functions.emplace(f->name, std::move(f));
}

void Dispatcher::add_route(Source& src, const std::string& function, Ordering ordering,
                           RouteRole role, RetryPath retry, filter::SubscriptionFilter filter) {
  auto& s = impl_->sources[&src];
  if (!s) {
    s = std::make_unique<SourceState>();
    s->source = &src;
    s->traits = src.traits();
    s->role = role;
    s->received = &impl_->metrics.events_received.Add(
        {{"broker", std::string(src.broker())}, {"topic", std::string(src.topic())}});
  }
  auto it = impl_->functions.find(function);
  if (it == impl_->functions.end()) throw std::logic_error("route to unknown function " + function);
  if (s->role != role || (role == RouteRole::retry && !s->route.empty()))
    throw std::logic_error("a retry topic source feeds exactly one function");
  if (retry == RetryPath::topic && !it->second->b.retry_sink)
    throw std::logic_error("retry topic route of " + function + ", which has no retry sink");
  const bool redelivers = std::any_of(s->route.begin(), s->route.end(), [](const auto& r) {
    return r.retry == RetryPath::redeliver;
  });
  if (retry == RetryPath::redeliver && !s->traits.per_message_ack)
    throw std::logic_error("redelivery route on a source without per-message acks");
  if (!s->route.empty() && (redelivers || retry == RetryPath::redeliver))
    throw std::logic_error("a redelivering source feeds exactly one route");
  if (filter && role != RouteRole::subscription)
    throw std::logic_error("a filter on a retry topic route of " + function);
  s->route.push_back({it->second.get(), ordering, retry, std::move(filter)});
  impl_->export_consumer_paused(*it->second);  // the series from the start (0 or 1)
}

void Dispatcher::start() {
  impl_->guard.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([this] {
    run_guarded("dispatcher", [this] {
      run_spinning(impl_->io, impl_->opts.spin, [this] { return impl_->quick_running > 0; });
    });
  });
}

bool Dispatcher::drain(std::chrono::milliseconds timeout) {
  const auto deadline = deadline_in(timeout);
  // Deliveries posted before this call (sources are stopped first) must be counted:
  // a barrier through the dispatcher thread makes sure they were taken in.
  if (impl_->thread.joinable()) {
    auto barrier = std::make_shared<std::promise<void>>();
    auto seen = barrier->get_future();
    asio::post(impl_->io, [barrier] { barrier->set_value(); });
    if (seen.wait_until(deadline) != std::future_status::ready) return false;
  }
  {
    std::unique_lock lk(impl_->drain_mu);
    if (!impl_->drained_cv.wait_until(lk, deadline, [this] { return held_.load() == 0; }))
      return false;
  }
  // Commits are handed to the sources in bursts: hand over the last one now, so that
  // a true return means every finished event was committed or acked.
  if (impl_->thread.joinable()) {
    auto flushed = std::make_shared<std::promise<void>>();
    auto done = flushed->get_future();
    asio::post(impl_->io, [this, flushed] {
      impl_->flush_commits();
      flushed->set_value();
    });
    if (done.wait_until(deadline) != std::future_status::ready) return false;
  } else {
    impl_->flush_commits();
  }
  return true;
}

void Dispatcher::abandon_waiting_retries() {
  if (!impl_->thread.joinable()) return;
  std::promise<void> done;
  auto fut = done.get_future();
  asio::post(impl_->io, [&] {
    for (auto& [src, s] : impl_->sources) {
      for (auto& [part, g] : s->gates) {
        while (!g.waiting.empty()) {
          Task* t = g.waiting.front();
          g.waiting.pop_front();
          t->pending->abandoned = true;
          impl_->finish_task(t);
        }
        if (g.timer) g.timer->cancel();
        g.armed = false;
        if (g.paused) impl_->release_partition(*s, part, &g);
        g.paused = false;
      }
    }
    impl_->abandon_paused();
    done.set_value();
  });
  fut.wait_for(std::chrono::seconds(5));
}

void Dispatcher::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] { impl_->stopped = true; });
  impl_->guard.reset();
  impl_->io.stop();
  impl_->thread.join();
}

void Dispatcher::on_deliveries(Source& src, std::vector<Delivery>&& batch) {
  const size_t n = batch.size();
  const size_t limit = impl_->opts.max_queued_events;
  // Back pressure between threads: the source waits while the dispatcher is behind.
  // Bounded wait, so that a stuck dispatcher cannot wedge a source's stop().
  if (limit && queued_.load() >= limit && impl_->thread.joinable() &&
      !impl_->io.get_executor().running_in_this_thread()) {
    std::unique_lock lk(queued_mu_);
    queued_cv_.wait_for(lk, std::chrono::seconds(1),
                        [&] { return queued_.load() < limit || impl_->io.stopped(); });
  }
  queued_ += n;
  asio::post(impl_->io, [this, &src, n, batch = std::move(batch)]() mutable {
    auto it = impl_->sources.find(&src);
    if (it != impl_->sources.end() && !impl_->stopped) {
      it->second->received->Increment(static_cast<double>(batch.size()));
      for (auto& d : batch) impl_->deliver(*it->second, std::move(d));
    }
    const size_t limit = impl_->opts.max_queued_events;
    if (queued_.fetch_sub(n) >= limit && limit) {
      std::lock_guard lk(queued_mu_);
      queued_cv_.notify_all();
    }
  });
}

void Dispatcher::on_partitions_revoked(Source& src, const std::vector<int32_t>& parts) {
  asio::post(impl_->io, [this, &src, parts] {
    auto it = impl_->sources.find(&src);
    if (it != impl_->sources.end()) impl_->revoke(*it->second, parts);
  });
}

void Dispatcher::on_source_error(Source& src, const Error& err) {
  spdlog::warn("source {}/{}: {}", src.broker(), src.topic(), err.message);
  impl_->metrics.errors.Add({{"component", "source"}, {"kind", to_string(err.code)}}).Increment();
}

void Dispatcher::set_limit(const std::string& function, uint32_t n) {
  auto apply = [this, function, n] {
    auto it = impl_->functions.find(function);
    if (it == impl_->functions.end()) return;
    it->second->limit = n;
    impl_->pump(*it->second);
  };
  if (!impl_->thread.joinable()) return apply();  // set-up, before start()
  asio::post(impl_->io, apply);
}

std::vector<FunctionStats> Dispatcher::stats() const {
  if (!impl_->thread.joinable() || impl_->io.stopped()) return impl_->snapshot();
  std::promise<std::vector<FunctionStats>> done;
  auto fut = done.get_future();
  asio::post(impl_->io, [&] { done.set_value(impl_->snapshot()); });
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return fut.get();
}

void Dispatcher::invoke_sync(const std::string& function, Event event, SyncCallback done) {
  if (!impl_->thread.joinable() || impl_->io.stopped()) {
    SyncAnswer a;
    a.status = SyncAnswer::Status::stopped;
    a.message = "sluice is not running functions (starting or stopping)";
    return done(std::move(a));
  }
  asio::post(impl_->io,
             [this, function, event = std::move(event), done = std::move(done)]() mutable {
               impl_->start_sync(function, std::move(event), std::move(done));
             });
}

// ---------------------------------------------------------------- dispatcher thread

void Dispatcher::Impl::deliver(SourceState& s, Delivery&& d) {
  if (s.route.empty()) return;  // cannot happen: sources exist only for routes
  const int32_t partition = d.tag().partition;
  const int64_t offset = d.tag().offset;
  if (s.traits.commits_offsets) s.trackers[partition].delivered(offset);
  // The pending delivery keeps the handle (source, tag, redeliveries); the event
  // goes from `d` straight into the task(s), moved once (an Event is 13 strings).
  auto* p = new Pending{Delivery(d.source(), d.tag()), &s, static_cast<uint32_t>(s.route.size())};
  p->delivery.redeliveries = d.redeliveries;
  p->delivery.unsettled = d.unsettled;
  if (s.role == RouteRole::retry) {
    FunctionState& f = *s.route.front().fn;
    Task* t = make_task(p, f, s.route.front().retry, std::move(d.event));
    screen_results(f, t);
    take_retry_state(s, f, t);
    hold(f, t);
    s.gates[partition].waiting.push_back(t);
    update_budget(f, &s, partition);
    if (f.paused) hold_for_pause(f, s, partition);
    gate_pump(s, partition);
    return;
  }
  for (size_t i = 0; i < s.route.size(); ++i) {
    if (filtered_out(s.route[i], p, d.event)) continue;
    auto& [f, ordering, retry, filter] = s.route[i];
    Task* t = i + 1 == s.route.size() ? make_task(p, *f, retry, std::move(d.event))
                                      : make_task(p, *f, retry, Event(d.event));
    screen_subscription(*f, t);
    if (ordering == Ordering::partition) {
      t->ordered = true;
      t->lane.src = &s;
      t->lane.partition = partition;
    } else if (ordering == Ordering::key && !t->event.key.empty()) {
      // Events without a key have nothing to keep in order: they run unordered.
      t->ordered = true;
      t->lane.src = &s;
      t->lane.partition = partition;
      t->lane.key = t->event.key;
    }
    enqueue(*f, t);
    update_budget(*f, &s, partition);
    if (f->paused) hold_for_pause(*f, s, partition);
    if (f->flow) flow_hold(*f, s, partition);
    pump(*f);
  }
}

// A route whose filter does not pass the event (or cannot evaluate it) is done with it
// here: no Task, no place in a lane, nothing held. The delivery is settled when the
// last function is done with it (at once when none takes it); the CommitTracker keeps
// the offset until every earlier one of its partition has finished.
bool Dispatcher::Impl::filtered_out(const SourceState::Route& r, Pending* p, const Event& ev) {
  if (!r.filter || r.filter.matches(filter::EventView(ev))) return false;
  r.fn->probe->filtered->Increment();
  if (--p->remaining == 0) finish_pending(p);
  return true;
}

Task* Dispatcher::Impl::make_task(Pending* p, FunctionState& f, RetryPath retry, Event&& ev) {
  auto* t = new Task(std::move(ev));  // moved in, not default-made and then assigned
  t->pending = p;
  t->fn = &f;
  t->retry = retry;
  t->bytes = t->event.byte_size();
  t->attempt = p->delivery.redeliveries;  // attempts the broker says were made before
  t->crashes = crashes_before(f, *p, retry, t->event);
  link(t);
  return t;
}

// An event from a subscription: retry headers never belong there (sluice writes them
// only to the retry topic, and strips them when it reads one back), so they are
// dropped before a retry record could carry them on under a seal of sluice's own
// (a forged origin would become the dead letter's replay target).
void Dispatcher::Impl::screen_subscription(FunctionState& f, Task* t) {
  if (t->event.headers.empty()) return;
  constexpr std::string_view kPrefix = "sluice-";
  const bool any = std::any_of(t->event.headers.begin(), t->event.headers.end(), [&](const Header& h) {
    return h.name.size() > kPrefix.size() &&
           strncasecmp(h.name.data(), kPrefix.data(), kPrefix.size()) == 0;
  });
  if (!any) return;
  screen_results(f, t);
  if (seal::has_any(seal::Kind::retry, t->event)) {
    reject_control(f, t, seal::Kind::retry, "retry headers on an event of a subscription");
    seal::strip(seal::Kind::retry, t->event);
  }
}

// What the event carries for the ResultHook (callback headers) counts only if the hook
// verifies it; anything else the hook drops here, before it can steer anything.
void Dispatcher::Impl::screen_results(FunctionState& f, Task* t) {
  if (!f.b.results) return;
  const ResultHook::Screened s = f.b.results->screen(f.name, t->event);
  t->wants_result = s.wanted;
  if (s.rejected) reject_control(f, t, seal::Kind::callback, s.rejected);
}

// A retry-topic record: its state counts only under a seal made for this function.
// Without one it runs now as a fresh event (the safe reading of a record sluice did
// not write: nothing is dropped, nothing is held). A valid one is still held at most
// retry.max from now, whatever its due time says.
void Dispatcher::Impl::take_retry_state(SourceState& s, FunctionState& f, Task* t) {
  const seal::Verdict v = keys->verify(seal::Kind::retry, t->event, f.name);
  if (v != seal::Verdict::verified) {
    reject_control(f, t, seal::Kind::retry, seal::to_string(v));
    seal::strip(seal::Kind::retry, t->event);
    return;
  }
  auto st = retry::take_state(t->event);
  if (!st) {
    // Sealed but unreadable: only a bug on the writing side does this. Run it now.
    spdlog::warn("[fn {}] [event {}] {}/{}/{}: {}; running it now", f.name, t->event.id,
                 s.source->topic(), t->pending->delivery.tag().partition,
                 t->pending->delivery.tag().offset, st.error().message);
    metrics.errors.Add({{"component", "dispatcher"}, {"kind", "retry_record"}}).Increment();
    return;
  }
  t->attempt = std::max(t->attempt, st.value().attempts);
  t->first_failure_ms = st.value().first_failure_ms;
  const int64_t now = now_unix_ms();
  const int64_t max_ms = std::max<int64_t>(f.b.config->retry.max.count(), 0);
  const int64_t latest =
      now > std::numeric_limits<int64_t>::max() - max_ms ? std::numeric_limits<int64_t>::max()
                                                         : now + max_ms;
  t->due_ms = std::min(st.value().due_ms, latest);
}

void Dispatcher::Impl::reject_control(FunctionState& f, const Task* t, seal::Kind k,
                                      std::string_view why) {
  metrics.control_headers_rejected.Add({{"function", f.name}, {"kind", seal::to_string(k)}})
      .Increment();
  if (auto suppressed = rejected_log.allow()) {
    spdlog::warn("[fn {}] [event {}] {}/{}/{}: {} headers dropped ({}); the event runs as a "
                 "plain one{}",
                 f.name, t->event.id, t->pending->src->source->topic(),
                 t->pending->delivery.tag().partition, t->pending->delivery.tag().offset,
                 seal::to_string(k), why, suppressed_note(*suppressed));
  }
}

void Dispatcher::Impl::link(Task* t) {
  t->live_prev = nullptr;
  t->live_next = live;
  if (live) live->live_prev = t;
  live = t;
}

void Dispatcher::Impl::unlink(Task* t) {
  if (t->live_prev) t->live_prev->live_next = t->live_next;
  else live = t->live_next;
  if (t->live_next) t->live_next->live_prev = t->live_prev;
  t->live_prev = t->live_next = nullptr;
}

void Dispatcher::Impl::hold(FunctionState& f, Task* t) {
  ++f.held;
  ++held_total;
  f.bytes += t->bytes;
  f.probe->inflight->Set(static_cast<double>(f.held));
}

void Dispatcher::Impl::place(FunctionState& f, Task* t) {
  if (!t->ordered) {
    f.ready.push_back(t);
    return;
  }
  Lane& lane = f.lanes[t->lane];
  t->lane_next = nullptr;
  if (!lane.head) {
    lane.head = lane.tail = t;
    f.ready.push_back(t);  // the head of a lane may run
  } else {
    lane.tail->lane_next = t;
    lane.tail = t;
  }
}

void Dispatcher::Impl::enqueue(FunctionState& f, Task* t) {
  hold(f, t);
  place(f, t);
}

void Dispatcher::Impl::gate_pump(SourceState& s, int32_t partition) {
  auto it = s.gates.find(partition);
  if (it == s.gates.end()) return;
  Gate& g = it->second;
  const int64_t now = now_unix_ms();
  while (!g.waiting.empty() && g.waiting.front()->due_ms <= now) {
    Task* t = g.waiting.front();
    g.waiting.pop_front();
    place(*t->fn, t);
    pump(*t->fn);
  }
  if (g.waiting.empty()) {
    if (g.paused) release_partition(s, partition, &g);
    g.paused = false;
    return;
  }
  // The head is not due: fetch nothing more from this partition until it is.
  if (!g.paused) hold_partition(s, partition, &g);
  g.paused = true;
  if (g.armed) return;
  if (!g.timer) g.timer = std::make_unique<asio::steady_timer>(io);
  g.armed = true;
  g.timer->expires_after(std::chrono::milliseconds(g.waiting.front()->due_ms - now));
  g.timer->async_wait([this, &s, partition](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    auto it = s.gates.find(partition);
    if (it == s.gates.end()) return;
    it->second.armed = false;
    gate_pump(s, partition);
  });
}

void Dispatcher::Impl::hold_partition(SourceState& s, int32_t partition, const void* who) {
  auto& holders = s.paused[partition];
  if (holders.empty()) partition == kWholeSource ? s.source->throttle(true) : s.source->pause(partition);
  holders.insert(who);
}

void Dispatcher::Impl::release_partition(SourceState& s, int32_t partition, const void* who) {
  auto& holders = s.paused[partition];
  if (holders.erase(who) && holders.empty())
    partition == kWholeSource ? s.source->throttle(false) : s.source->resume(partition);
}

void Dispatcher::Impl::pump(FunctionState& f) {
  // An inline runtime finishes inside start_invocation, whose result pumps again:
  // that nested call only asks this loop to go round once more (bounded stack).
  if (f.pumping) {
    f.repump = true;
    return;
  }
  f.pumping = true;
  do {
    f.repump = false;
    // Scaled to zero (limit 0), a waiting event still runs at once, one at a time: the
    // runtime starts a worker for it, and the lag loop's next tick sees it in flight
    // and sizes the pool. Holding it until that tick would add up to a tick period
    // to every cold start.
    const size_t cap = std::min<size_t>(std::max<uint32_t>(f.limit, 1), f.b.config->concurrency);
    while (!stopped && !f.paused && f.running < cap && !f.ready.empty()) {
      if (f.flow && !flow_admit(f)) break;  // rate_limit / max_per_key
      Task* t = f.ready.front();
      f.ready.pop_front();
      if (refuse_turn(f, t)) continue;  // expired or quarantined (turn.cc)
      start_invocation(t);
    }
  } while (f.repump && !stopped);
  f.pumping = false;
}

void Dispatcher::Impl::start_invocation(Task* t) {
  FunctionState& f = *t->fn;
  ++f.running;
  if (f.b.runtime->quick_answers()) ++quick_running;
  if (f.flow) flow_started(f, t);
  ++t->attempt;
  t->event.attempt = t->attempt;
  t->started = std::chrono::steady_clock::now();
  if (t->attempt == 1) t->event.first_attempt_time_ms = unix_ms_at(t->started);
  observe_age(f, t, wall_ms(t->started));
  f.b.runtime->invoke(t->event, [this, t](InvocationResult&& r) {
    // A runtime that answers on the calling thread (inproc inline, or a refusal)
    // needs no hand-off: the result is taken in at once.
    if (io.get_executor().running_in_this_thread()) return on_result(t, std::move(r));
    asio::post(io, [this, t, r = std::move(r)]() mutable { on_result(t, std::move(r)); });
  });
}

int64_t Dispatcher::Impl::unix_ms_at(std::chrono::steady_clock::time_point now) {
  const int64_t steady_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (!have_offset || steady_ms - offset_taken_steady_ms >= 1000) {
    unix_minus_steady_ms = now_unix_ms() - steady_ms;
    offset_taken_steady_ms = steady_ms;
    have_offset = true;
  }
  return steady_ms + unix_minus_steady_ms;
}

void Dispatcher::Impl::on_result(Task* t, InvocationResult&& r) {
  FunctionState& f = *t->fn;
  --f.running;
  if (f.b.runtime->quick_answers()) --quick_running;
  if (f.flow) flow_done(f, t);
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t->started).count();
  f.probe->invoked(r.outcome, secs);
  ++f.invocations;
  f.invocation_seconds += secs;
  if (t->sync) return on_sync_result(t, std::move(r));
  const Verdict v = classify(r.outcome);
  if (v == Verdict::ok && !f.b.output_sink && r.emitted.empty() && !t->wants_result) {
    // The common case of a sink-less function: nothing to publish, no clock to read.
    pump(f);
    finish_task(t);
    return;
  }
  const int64_t now = now_unix_ms();
  if (v == Verdict::ok) {
    add_hook_result(t, r);
    add_outputs(t, r, now);
  } else {
    if (t->first_failure_ms == 0) t->first_failure_ms = now;
    if (r.outcome == Outcome::crash) ++t->crashes;
    const bool crashed_out = r.outcome == Outcome::crash &&
                             crash::quarantined(t->crashes, f.b.config->retry.max_crashes);
    spdlog::warn("[fn {}] [event {}] attempt {}/{} failed ({}): {}", f.name, t->event.id,
                 t->attempt, f.b.config->retry.max_attempts, to_string(r.outcome), r.message);
    if (v == Verdict::retry && t->attempt < f.b.config->retry.max_attempts && !crashed_out) {
      f.probe->retries->Increment();
      const auto delay = config::backoff_delay(f.b.config->retry, t->attempt, rng, r.retry_after);
      if (!retry_out(t, delay, now)) {
        schedule_retry(t, delay);
        pump(f);
        return;
      }
      remember_crashes(t);  // counted on when it comes back (turn.cc)
    } else {
      dlq::Failure fail{f.name, r.outcome, r.message, t->attempt, t->first_failure_ms, now};
      t->outbox.push_back(
          {f.b.dead_letter_sink, f.dlq_topic, dlq::make_record(t->event, fail, *keys), f.dlq_published});
      t->dead_lettered = true;
      t->final_outcome = r.outcome;
      add_hook_result(t, r);
    }
  }
  pump(f);
  if (t->outbox.empty()) {
    finish_task(t);
  } else {
    publish_outbox(t);
  }
}

// What a result sends to the function's `output`: the result itself as an event of
// time `result_time_ms` (queued events; 0 = none) and every event the function emitted.
// Emitted events of a function without an output are dropped, logged and counted.
void Dispatcher::Impl::add_outputs(Task* t, InvocationResult& r, int64_t result_time_ms) {
  FunctionState& f = *t->fn;
  if (!f.b.output_sink) {
    if (r.emitted.empty()) return;
    spdlog::warn("[fn {}] [event {}] {} emitted event(s) dropped: the function has no output",
                 f.name, t->event.id, r.emitted.size());
    metrics.errors.Add({{"component", "dispatcher"}, {"kind", "emitted_without_output"}})
        .Increment();
    return;
  }
  if (result_time_ms != 0) {
    Event out;
    out.id = new_event_id();
    out.source = "/sluice/functions/" + f.name;
    out.type = "io.sluice.function.result";
    out.subject = t->event.subject;
    out.time = format_rfc3339(result_time_ms);
    // The function's own content type (SDK result, HTTP response), else output.content_type.
    out.datacontenttype =
        r.content_type.empty() ? f.b.config->output_content_type : r.content_type;
    out.key = t->event.key;  // keeps per-key order down a pipeline
    out.extensions.emplace_back("causationid", t->event.id);
    out.data = std::move(r.output);
    t->outbox.push_back({f.b.output_sink, f.output_topic, std::move(out), f.output_published});
  }
  for (auto& e : r.emitted)
    t->outbox.push_back({f.b.output_sink, f.output_topic, std::move(e), f.output_published});
  r.emitted.clear();
}

// A synchronous call: admitted while the function has room for it (see invoke_sync),
// then started at once, ahead of the queue.
void Dispatcher::Impl::start_sync(const std::string& function, Event&& ev, SyncCallback&& done) {
  SyncAnswer refused;
  auto it = functions.find(function);
  if (it == functions.end() || stopped) {
    refused.status = SyncAnswer::Status::stopped;
    refused.message = it == functions.end() ? "unknown function '" + function + "'"
                                            : "sluice is stopping";
    return done(std::move(refused));
  }
  FunctionState& f = *it->second;
  const uint32_t concurrency = f.b.config->concurrency;
  refused.status = SyncAnswer::Status::busy;
  if (f.paused) {
    refused.message = "function '" + f.name + "' is paused (`sluice resume " + f.name + "`)";
    return done(std::move(refused));
  }
  if (f.sync_running >= concurrency) {
    refused.message = "function '" + f.name + "' is running " + std::to_string(concurrency) +
                      " synchronous calls already; try again";
    return done(std::move(refused));
  }
  if (f.held >= f.budget || f.bytes >= f.b.config->max_inflight_bytes) {
    refused.message = "function '" + f.name + "' holds its budget of events (" +
                      std::to_string(f.held) + " events, " + std::to_string(f.bytes) +
                      " bytes); try again";
    return done(std::move(refused));
  }
  if (f.flow) {
    if (auto why = flow_refuse_sync(f, ev)) {
      refused.message = std::move(*why);
      return done(std::move(refused));
    }
  }
  auto* t = new Task(std::move(ev));
  t->fn = &f;
  t->bytes = t->event.byte_size();
  t->sync = std::make_unique<SyncCall>(SyncCall{std::move(done), {}});
  link(t);
  hold(f, t);
  ++f.sync_running;
  start_invocation(t);
}

void Dispatcher::Impl::on_sync_result(Task* t, InvocationResult&& r) {
  FunctionState& f = *t->fn;
  --f.sync_running;
  if (r.outcome != Outcome::success)
    spdlog::warn("[fn {}] [event {}] synchronous call failed ({}): {}", f.name, t->event.id,
                 to_string(r.outcome), r.message);
  add_outputs(t, r, /*result_time_ms=*/0);
  t->sync->answer.result = std::move(r);
  pump(f);
  if (t->outbox.empty()) return finish_task(t);
  publish_outbox(t);
}

// The final result, to the ResultHook when the event asked for it (POST /async-function's
// callback URL): delivered through the outbox like an output.
void Dispatcher::Impl::add_hook_result(Task* t, const InvocationResult& r) {
  FunctionState& f = *t->fn;
  if (!t->wants_result || !f.b.results) return;
  if (auto out = f.b.results->result(f.name, t->event, r, t->attempt))
    t->outbox.push_back({out->sink, std::move(out->topic), std::move(out->event), nullptr});
}

// Retry topic mode: hands the event back to the broker instead of holding its lane.
// False when the event must be retried inline.
bool Dispatcher::Impl::retry_out(Task* t, std::chrono::milliseconds delay, int64_t now) {
  FunctionState& f = *t->fn;
  if (t->retry == RetryPath::lane) return false;
  if (t->retry == RetryPath::redeliver) {
    // The broker is the delay queue: nack(delay) redelivers it when due.
    t->pending->nack_delay = delay;
    t->retried_out = true;
    return true;
  }
  retry::State st{t->attempt, now + delay.count(), t->first_failure_ms};
  t->outbox.push_back(
      {f.b.retry_sink, f.b.retry_topic, retry::make_event(t->event, st, *keys, f.name), f.retry_published});
  t->retried_out = true;
  return true;
}

void Dispatcher::Impl::schedule_retry(Task* t, std::chrono::milliseconds delay) {
  if (!t->timer) t->timer = std::make_unique<asio::steady_timer>(io);
  t->timer->expires_after(delay);
  t->timer->async_wait([this, t](const boost::system::error_code& ec) {
    if (ec || stopped) return;
    // The task is still its lane's head (or unordered): it goes first.
    t->fn->ready.push_front(t);
    pump(*t->fn);
  });
}

void Dispatcher::Impl::publish_outbox(Task* t) {
  t->outbox_left = t->outbox.size();
  for (size_t i = 0; i < t->outbox.size(); ++i) publish_one(t, i);
}

void Dispatcher::Impl::publish_one(Task* t, size_t i) {
  Outgoing& o = t->outbox[i];
  o.sink->publish(o.topic, o.event, [this, t, i](Result<PublishAck> r) {
    asio::post(io, [this, t, i, r = std::move(r)] {
      if (stopped) return;
      Outgoing& o = t->outbox[i];
      FunctionState& f = *t->fn;
      if (!r && t->sync) {
        // A synchronous caller is waiting: it hears of the failure now and may call again.
        metrics.errors.Add({{"component", "dispatcher"}, {"kind", "publish"}}).Increment();
        t->sync->answer.status = SyncAnswer::Status::output_failed;
        t->sync->answer.message = r.error().message;
        if (--t->outbox_left == 0) finish_task(t);
        return;
      }
      if (!r) {
        // Never finish without the dead letter / output being durable: try again.
        ++o.failures;
        RetryPolicy again;  // the one backoff (config/backoff.h), full jitter
        again.initial = opts.publish_retry_initial;
        again.max = opts.publish_retry_max;
        const auto delay = config::backoff_delay(again, o.failures, rng);
        // An unreachable sink fails every held event: one line per interval, not per event.
        if (auto quiet = publish_log.allow())
          spdlog::error("[fn {}] [event {}] publishing to {} failed (try {}): {}; trying again{}",
                        f.name, t->event.id, o.topic, o.failures, r.error().message,
                        suppressed_note(*quiet));
        metrics.errors.Add({{"component", "dispatcher"}, {"kind", "publish"}}).Increment();
        auto timer = std::make_shared<asio::steady_timer>(io, delay);
        timer->async_wait([this, t, i, timer](const boost::system::error_code& ec) {
          if (!ec && !stopped) publish_one(t, i);
        });
        return;
      }
      o.done = true;
      if (o.published) o.published->Increment();
      // One line per dead letter, with the id `sluice dlq show` takes.
      if (t->dead_lettered && o.sink == f.b.dead_letter_sink && o.topic == f.dlq_topic)
        spdlog::warn("[fn {}] [event {}] dead-lettered after {} attempt(s) ({}) → {}:{}:{}", f.name,
                     t->event.id, t->attempt,
                     t->dlq_class ? t->dlq_class : to_string(t->final_outcome),
                     r.value().topic.empty() ? o.topic : r.value().topic, r.value().partition,
                     r.value().offset);
      if (--t->outbox_left == 0) {
        if (t->dead_lettered)
          t->dlq_class ? f.probe->dead_lettered(t->dlq_class)
                       : f.probe->dead_lettered(t->final_outcome);
        finish_task(t);
      }
    });
  });
}

void Dispatcher::Impl::finish_task(Task* t) {
  FunctionState& f = *t->fn;
  if (t->ordered) {
    auto it = f.lanes.find(t->lane);
    Lane& lane = it->second;
    lane.head = lane.head->lane_next;  // t was the head: only the head runs
    if (!lane.head) {
      f.lanes.erase(it);
    } else {
      f.ready.push_back(lane.head);
    }
  }
  --f.held;
  ++f.finished;
  f.bytes -= t->bytes;
  f.probe->inflight->Set(static_cast<double>(f.held));
  Pending* p = t->pending;
  if (p && t->dead_lettered) p->dead_lettered = true;
  std::unique_ptr<SyncCall> sync = std::move(t->sync);
  unlink(t);
  delete t;
  if (p && --p->remaining == 0) finish_pending(p);
  if (sync) sync->done(std::move(sync->answer));
  release_pauses(f);
  pump(f);
  // Counted down only now, after the commit/ack above: drain() returning must mean
  // every finished event was settled with its source.
  if (--held_total == 0) {
    std::lock_guard lk(drain_mu);
    drained_cv.notify_all();
  }
}

void Dispatcher::Impl::finish_pending(Pending* p) {
  SourceState& s = *p->src;
  if (!p->abandoned) {
    if (s.traits.per_message_ack) {
      if (p->dead_lettered) {
        p->delivery.term();
      } else if (p->nack_delay) {
        p->delivery.nack(*p->nack_delay);
      } else {
        p->delivery.ack();
      }
    }
    if (s.traits.commits_offsets) {
      const auto& tag = p->delivery.tag();
      auto it = s.trackers.find(tag.partition);
      if (it != s.trackers.end()) {
        if (auto next = it->second.finished(tag.offset)) {
          s.to_commit[tag.partition] = *next;
          if (!s.dirty) {
            s.dirty = true;
            dirty_sources.push_back(&s);
          }
          if (!flush_posted) {
            // After whatever else is queued on this thread now: a burst of results
            // costs one offset store per partition.
            flush_posted = true;
            asio::post(io, [this] {
              flush_posted = false;
              flush_commits();
            });
          }
        }
      }
    }
  }
  delete p;
}

void Dispatcher::Impl::flush_commits() {
  for (SourceState* s : dirty_sources) {
    for (auto [partition, next] : s->to_commit) s->source->commit(partition, next);
    s->to_commit.clear();
    s->dirty = false;
  }
  dirty_sources.clear();
}

void Dispatcher::Impl::update_budget(FunctionState& f, SourceState* s, int32_t partition) {
  const uint64_t byte_budget = f.b.config->max_inflight_bytes;
  if (f.held < f.budget && f.bytes < byte_budget) return;
  // A throttling source is held back as a whole (it keeps its prefetch); others by
  // pausing the partition that delivered.
  if (s->traits.throttles) partition = kWholeSource;
  if (!f.holding.insert({s, partition}).second) return;
  hold_partition(*s, partition, &f);
}

void Dispatcher::Impl::release_pauses(FunctionState& f) {
  if (f.holding.empty()) return;
  if (f.held > f.budget / 2 || f.bytes > f.b.config->max_inflight_bytes / 2) return;
  for (auto [s, partition] : f.holding) release_partition(*s, partition, &f);
  f.holding.clear();
}

void Dispatcher::Impl::revoke(SourceState& s, const std::vector<int32_t>& parts) {
  for (int32_t part : parts) {
    s.trackers.erase(part);
    s.to_commit.erase(part);  // the new owner's commits rule now
  }
  // Retry events still waiting to be due on those partitions: the new owner reads
  // them again (nothing was committed past them).
  for (int32_t part : parts) {
    auto g = s.gates.find(part);
    if (g == s.gates.end()) continue;
    std::deque<Task*> waiting = std::move(g->second.waiting);
    g->second.waiting.clear();
    if (g->second.paused) release_partition(s, part, &g->second);
    s.gates.erase(g);
    for (Task* t : waiting) {
      t->pending->abandoned = true;
      finish_task(t);
    }
  }
  for (Task* t = live; t; t = t->live_next)
    if (t->pending && t->pending->src == &s &&
        std::find(parts.begin(), parts.end(), t->pending->delivery.tag().partition) != parts.end())
      t->pending->abandoned = true;
}

std::vector<FunctionStats> Dispatcher::Impl::snapshot() const {
  std::vector<FunctionStats> v;
  v.reserve(functions.size());
  for (auto& [name, f] : functions)
    v.push_back({name, f->held, f->running,
                 !f->holding.empty() || (f->flow && !f->flow->holding.empty()), f->lanes.size(),
                 f->limit, f->finished, f->paused, f->invocations, f->invocation_seconds});
  return v;
}

}  // namespace sluice::dispatcher
