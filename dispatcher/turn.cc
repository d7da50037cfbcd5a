// The checks an event passes when its turn comes, just before an invocation starts
// (a first attempt, a lane retry whose timer fired, a retry-topic record that fell
// due, a redelivery): event age (max_age / on_expired) and crash quarantine
// (retry.max_crashes). The rules are age.h's; this is where the dispatcher applies
// them. Dispatcher thread only.
#include <spdlog/spdlog.h>

#include "dispatcher/dispatcher_impl.h"
#include "dlq/record.h"

namespace sluice::dispatcher {

int64_t Dispatcher::Impl::wall_ms(std::chrono::steady_clock::time_point now) {
  return opts.wall_clock ? opts.wall_clock() : unix_ms_at(now);
}

const std::optional<int64_t>& Dispatcher::Impl::origin_of(Task* t) {
  if (!t->origin_read) {
    t->origin_ms = age::origin_ms(t->event);
    t->origin_read = true;
  }
  return t->origin_ms;
}

// True when `t` must not run: it was dead-lettered or dropped instead.
bool Dispatcher::Impl::refuse_turn(FunctionState& f, Task* t) {
  const FunctionConfig& c = *f.b.config;
  if (t->retry == RetryPath::redeliver && !t->sync && t->attempt >= c.retry.max_attempts) {
    // Redelivered with every attempt spent: sluice dead-letters after the last failed
    // attempt, so the broker redelivered it after an engine died holding it.
    const int64_t now = now_unix_ms();
    if (t->first_failure_ms == 0) t->first_failure_ms = now;
    dead_letter_now(t, Outcome::crash, nullptr,
                    "redelivered " + std::to_string(t->attempt) +
                        " time(s) with its attempts spent: the engine died holding it",
                    now);
    return true;
  }
  if (crash::quarantined(t->crashes, c.retry.max_crashes)) {
    const int64_t now = now_unix_ms();
    if (t->first_failure_ms == 0) t->first_failure_ms = now;
    dead_letter_now(t, Outcome::crash, nullptr,
                    "quarantined before it ran: " + std::to_string(t->crashes) +
                        " crash(es) or deliveries left unsettled by a dying engine "
                        "(retry.max_crashes " + std::to_string(c.retry.max_crashes) + ")",
                    now);
    return true;
  }
  if (c.max_age.count() <= 0) return false;
  const int64_t now = wall_ms(std::chrono::steady_clock::now());
  const auto& origin = origin_of(t);
  if (!age::expired(origin, c.max_age, now)) return false;
  f.probe->expired->Increment();
  const std::string why = age::describe(age::age_ms(*origin, now), c.max_age);
  if (c.on_expired == OnExpired::drop) {
    spdlog::debug("[fn {}] [event {}] dropped: {} (on_expired: drop)", f.name, t->event.id, why);
    finish_task(t);  // committed like a success
    return true;
  }
  if (t->first_failure_ms == 0) t->first_failure_ms = now;
  dead_letter_now(t, Outcome::error, "expired", why, now);
  return true;
}

void Dispatcher::Impl::observe_age(FunctionState& f, Task* t, int64_t now_ms) {
  if (const auto& origin = origin_of(t))
    f.probe->age->Observe(static_cast<double>(age::age_ms(*origin, now_ms)) / 1000.0);
}

// Dead-letters `t` without (another) invocation: through its outbox, finished once
// the record is durable.
void Dispatcher::Impl::dead_letter_now(Task* t, Outcome o, const char* cls, std::string message,
                                       int64_t now) {
  FunctionState& f = *t->fn;
  spdlog::debug("[fn {}] [event {}] not invoked: {}", f.name, t->event.id, message);
  dlq::Failure fail{f.name, o, std::move(message), t->attempt, t->first_failure_ms, now};
  fail.error_class = cls;
  t->outbox.push_back(
      {f.b.dead_letter_sink, f.dlq_topic, dlq::make_record(t->event, fail, *keys), f.dlq_published});
  t->dead_lettered = true;
  t->final_outcome = o;
  t->dlq_class = cls;
  publish_outbox(t);
}

namespace {
std::string ledger_key(const std::string& function, const Event& ev) {
  std::string k = function;
  k += '\0';
  k += ev.id;
  return k;
}
}  // namespace

// Crashes counted before this delivery: the broker's unexplained deliveries, plus
// what this process counted before it handed the event back for a retry.
uint32_t Dispatcher::Impl::crashes_before(const FunctionState& f, const Pending& p,
                                          RetryPath retry, const Event& ev) {
  // A route that retries by nack(delay) makes redeliveries itself: the broker's count
  // there is attempts (Task::attempt), not crashes.
  uint32_t n = retry == RetryPath::redeliver ? 0 : p.delivery.unsettled;
  if (crash_ledger.size() != 0) n += crash_ledger.take(ledger_key(f.name, ev));
  return n;
}

void Dispatcher::Impl::remember_crashes(const Task* t) {
  if (t->crashes > 0) crash_ledger.put(ledger_key(t->fn->name, t->event), t->crashes);
}

}  // namespace sluice::dispatcher
