#include "dispatcher/dispatcher.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <future>

#include "dispatcher/backoff.h"
#include "dispatcher/dispatcher_impl.h"
#include "dlq/record.h"

namespace sluice {

namespace asio = boost::asio;

Dispatcher::Impl::Impl(Metrics& m, DispatcherOptions o, std::atomic<size_t>& held)
    : metrics(m), opts(o), held_total(held), rng(o.seed ? o.seed : std::random_device{}()) {}

Dispatcher::Dispatcher(Metrics& metrics, DispatcherOptions opts)
    : impl_(std::make_unique<Impl>(metrics, opts, held_)) {}

Dispatcher::~Dispatcher() {
  stop();
  for (Task* t : impl_->tasks) {
    if (t->pending && --t->pending->remaining == 0) delete t->pending;
    delete t;
  }
}

void Dispatcher::add_function(const FunctionBinding& b) {
  auto f = std::make_unique<FunctionState>();
  f->b = b;
  f->name = b.config->name;
  f->probe = std::make_unique<FunctionProbe>(impl_->metrics, f->name);
  const size_t c = b.config->concurrency;
  f->budget = impl_->opts.queue_budget ? impl_->opts.queue_budget : std::max<size_t>(2 * c, 256);
  f->dlq_topic = b.config->dead_letter.topic;
  f->dlq_published = &impl_->metrics.published.Add(
      {{"broker", b.config->dead_letter.broker}, {"topic", f->dlq_topic}});
  if (b.output_sink && b.config->output) {
    f->output_topic = b.config->output->topic;
    f->output_published = &impl_->metrics.published.Add(
        {{"broker", b.config->output->broker}, {"topic", f->output_topic}});
  }
  impl_->functions.emplace(f->name, std::move(f));
}

void Dispatcher::add_route(Source& src, const std::string& function, Ordering ordering) {
  auto& s = impl_->sources[&src];
  if (!s) {
    s = std::make_unique<SourceState>();
    s->source = &src;
    s->traits = src.traits();
    s->received = &impl_->metrics.events_received.Add(
        {{"broker", std::string(src.broker())}, {"topic", std::string(src.topic())}});
  }
  auto it = impl_->functions.find(function);
  if (it == impl_->functions.end()) throw std::logic_error("route to unknown function " + function);
  s->route.emplace_back(it->second.get(), ordering);
}

void Dispatcher::start() {
  impl_->guard.emplace(impl_->io.get_executor());
  impl_->thread = std::thread([this] { impl_->io.run(); });
}

bool Dispatcher::drain(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Deliveries posted before this call (sources are stopped first) must be counted:
  // a barrier through the dispatcher thread makes sure they were taken in.
  if (impl_->thread.joinable()) {
    std::promise<void> barrier;
    auto seen = barrier.get_future();
    asio::post(impl_->io, [&] { barrier.set_value(); });
    if (seen.wait_until(deadline) != std::future_status::ready) return false;
  }
  std::unique_lock lk(impl_->drain_mu);
  return impl_->drained_cv.wait_until(lk, deadline, [this] { return held_.load() == 0; });
}

void Dispatcher::stop() {
  if (!impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] { impl_->stopped = true; });
  impl_->guard.reset();
  impl_->io.stop();
  impl_->thread.join();
}

void Dispatcher::on_deliveries(Source& src, std::vector<Delivery>&& batch) {
  asio::post(impl_->io, [this, &src, batch = std::move(batch)]() mutable {
    auto it = impl_->sources.find(&src);
    if (it == impl_->sources.end() || impl_->stopped) return;
    for (auto& d : batch) impl_->deliver(*it->second, std::move(d));
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

std::vector<FunctionStats> Dispatcher::stats() const {
  if (!impl_->thread.joinable() || impl_->io.stopped()) return impl_->snapshot();
  std::promise<std::vector<FunctionStats>> done;
  auto fut = done.get_future();
  asio::post(impl_->io, [&] { done.set_value(impl_->snapshot()); });
  if (fut.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return {};
  return fut.get();
}

// ---------------------------------------------------------------- dispatcher thread

void Dispatcher::Impl::deliver(SourceState& s, Delivery&& d) {
  s.received->Increment();
  if (s.route.empty()) return;  // cannot happen: sources exist only for routes
  const int32_t partition = d.tag().partition;
  const int64_t offset = d.tag().offset;
  if (s.traits.commits_offsets) s.trackers[partition].delivered(offset);
  auto* p = new Pending{std::move(d), &s, static_cast<uint32_t>(s.route.size())};
  for (size_t i = 0; i < s.route.size(); ++i) {
    auto [f, ordering] = s.route[i];
    auto* t = new Task;
    t->pending = p;
    t->fn = f;
    t->event = (i + 1 == s.route.size()) ? std::move(p->delivery.event) : p->delivery.event;
    t->bytes = t->event.byte_size();
    if (ordering == Ordering::partition) {
      t->ordered = true;
      t->lane = std::to_string(reinterpret_cast<uintptr_t>(&s)) + '/' + std::to_string(partition);
    } else if (ordering == Ordering::key && !t->event.key.empty()) {
      // Events without a key have nothing to keep in order: they run unordered.
      t->ordered = true;
      t->lane = std::to_string(reinterpret_cast<uintptr_t>(&s)) + '/' +
                std::to_string(partition) + '/' + t->event.key;
    }
    tasks.insert(t);
    enqueue(*f, t);
    update_budget(*f, &s, partition);
    pump(*f);
  }
}

void Dispatcher::Impl::enqueue(FunctionState& f, Task* t) {
  ++f.held;
  ++held_total;
  f.bytes += t->bytes;
  f.probe->inflight->Set(static_cast<double>(f.held));
  if (!t->ordered) {
    f.ready.push_back(t);
    return;
  }
  auto& lane = f.lanes[t->lane];
  lane.push_back(t);
  if (lane.size() == 1) f.ready.push_back(t);  // the head of a lane may run
}

void Dispatcher::Impl::pump(FunctionState& f) {
  while (!stopped && f.running < f.b.config->concurrency && !f.ready.empty()) {
    Task* t = f.ready.front();
    f.ready.pop_front();
    start_invocation(t);
  }
}

void Dispatcher::Impl::start_invocation(Task* t) {
  FunctionState& f = *t->fn;
  ++f.running;
  ++t->attempt;
  t->event.attempt = t->attempt;
  if (t->attempt == 1) t->event.first_attempt_time_ms = now_unix_ms();
  t->started = std::chrono::steady_clock::now();
  f.b.runtime->invoke(t->event, [this, t](InvocationResult&& r) {
    asio::post(io, [this, t, r = std::move(r)]() mutable { on_result(t, std::move(r)); });
  });
}

void Dispatcher::Impl::on_result(Task* t, InvocationResult&& r) {
  FunctionState& f = *t->fn;
  --f.running;
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t->started).count();
  f.probe->invoked(r.outcome, secs);
  const Verdict v = classify(r.outcome);
  const int64_t now = now_unix_ms();
  if (v == Verdict::ok) {
    if (f.b.output_sink) {
      Event out;
      out.id = new_event_id();
      out.source = "/sluice/functions/" + f.name;
      out.type = "io.sluice.function.result";
      out.subject = t->event.subject;
      out.time = format_rfc3339(now);
      out.datacontenttype = r.content_type;
      out.key = t->event.key;  // keeps per-key order down a pipeline
      out.extensions.emplace_back("causationid", t->event.id);
      out.data = std::move(r.output);
      t->outbox.push_back({f.b.output_sink, f.output_topic, std::move(out)});
      for (auto& e : r.emitted) t->outbox.push_back({f.b.output_sink, f.output_topic, std::move(e)});
    }
  } else {
    if (t->first_failure_ms == 0) t->first_failure_ms = now;
    spdlog::warn("[fn {}] [event {}] attempt {}/{} failed ({}): {}", f.name, t->event.id,
                 t->attempt, f.b.config->retry.max_attempts, to_string(r.outcome), r.message);
    if (v == Verdict::retry && t->attempt < f.b.config->retry.max_attempts) {
      f.probe->retries->Increment();
      schedule_retry(t, backoff_delay(f.b.config->retry, t->attempt, rng, r.retry_after));
      pump(f);
      return;
    }
    dlq::Failure fail{f.name, r.outcome, r.message, t->attempt, t->first_failure_ms, now};
    t->outbox.push_back({f.b.dead_letter_sink, f.dlq_topic, dlq::make_record(t->event, fail)});
    t->dead_lettered = true;
    t->final_outcome = r.outcome;
  }
  pump(f);
  if (t->outbox.empty()) {
    finish_task(t);
  } else {
    publish_outbox(t);
  }
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
      if (!r) {
        // Never finish without the dead letter / output being durable: try again.
        ++o.failures;
        auto delay = std::min(opts.publish_retry_max,
                              opts.publish_retry_initial * (1 << std::min(o.failures, 10u)));
        spdlog::error("[fn {}] [event {}] publishing to {} failed (try {}): {}", f.name,
                      t->event.id, o.topic, o.failures, r.error().message);
        metrics.errors.Add({{"component", "dispatcher"}, {"kind", "publish"}}).Increment();
        auto timer = std::make_shared<asio::steady_timer>(io, delay);
        timer->async_wait([this, t, i, timer](const boost::system::error_code& ec) {
          if (!ec && !stopped) publish_one(t, i);
        });
        return;
      }
      o.done = true;
      (t->dead_lettered ? f.dlq_published : f.output_published)->Increment();
      if (--t->outbox_left == 0) {
        if (t->dead_lettered) f.probe->dead_lettered(t->final_outcome);
        finish_task(t);
      }
    });
  });
}

void Dispatcher::Impl::finish_task(Task* t) {
  FunctionState& f = *t->fn;
  if (t->ordered) {
    auto it = f.lanes.find(t->lane);
    it->second.pop_front();
    if (it->second.empty()) {
      f.lanes.erase(it);
    } else {
      f.ready.push_back(it->second.front());
    }
  }
  --f.held;
  --held_total;
  f.bytes -= t->bytes;
  f.probe->inflight->Set(static_cast<double>(f.held));
  Pending* p = t->pending;
  if (t->dead_lettered) p->dead_lettered = true;
  tasks.erase(t);
  delete t;
  if (--p->remaining == 0) finish_pending(p);
  release_pauses(f);
  pump(f);
  if (held_total.load() == 0) {
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
      } else {
        p->delivery.ack();
      }
    }
    if (s.traits.commits_offsets) {
      const auto& tag = p->delivery.tag();
      auto it = s.trackers.find(tag.partition);
      if (it != s.trackers.end()) {
        if (auto next = it->second.finished(tag.offset)) s.source->commit(tag.partition, *next);
      }
    }
  }
  delete p;
}

void Dispatcher::Impl::update_budget(FunctionState& f, SourceState* s, int32_t partition) {
  const uint64_t byte_budget = f.b.config->max_inflight_bytes;
  if (f.held < f.budget && f.bytes < byte_budget) return;
  if (!f.holding.insert({s, partition}).second) return;
  auto& holders = s->paused[partition];
  if (holders.empty()) s->source->pause(partition);
  holders.insert(&f);
}

void Dispatcher::Impl::release_pauses(FunctionState& f) {
  if (f.holding.empty()) return;
  if (f.held > f.budget / 2 || f.bytes > f.b.config->max_inflight_bytes / 2) return;
  for (auto [s, partition] : f.holding) {
    auto& holders = s->paused[partition];
    holders.erase(&f);
    if (holders.empty()) s->source->resume(partition);
  }
  f.holding.clear();
}

void Dispatcher::Impl::revoke(SourceState& s, const std::vector<int32_t>& parts) {
  for (int32_t part : parts) s.trackers.erase(part);
  for (Task* t : tasks)
    if (t->pending->src == &s &&
        std::find(parts.begin(), parts.end(), t->pending->delivery.tag().partition) != parts.end())
      t->pending->abandoned = true;
}

std::vector<FunctionStats> Dispatcher::Impl::snapshot() const {
  std::vector<FunctionStats> v;
  v.reserve(functions.size());
  for (auto& [name, f] : functions)
    v.push_back({name, f->held, f->running, !f->holding.empty()});
  return v;
}

}  // namespace sluice
