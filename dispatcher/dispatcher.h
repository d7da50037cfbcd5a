// The dispatcher: routes each Delivery to the functions subscribed to its topic,
// and alone owns what happens next — ordering lanes, the in-flight budget (back
// pressure on the sources), retries with backoff, dead-lettering, output publishing
// and offset commits (STYLE.md "three outcomes, one owner").
//
// Threads: all state lives on the dispatcher's own thread (an asio io_context run
// by one thread). Sources, runtimes and sinks call in from their threads; every
// entry point posts to that thread and returns at once. No locks on the data path.
// add_function() lends that loop to the function's runtime (Runtime::share_loop): a
// stdio runtime reads its workers' answers on the dispatcher thread, so a result is
// taken in where it is read, with no thread hand-off.
//
// Lifecycle: construct; add_function()/add_route() (set-up, single-threaded);
// start(); runtimes start; ... sources stop; drain(deadline); runtimes stop; stop();
// destroy. (A runtime that took the loop needs it running from its start() to the
// end of its stop().)
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/broker.h"
#include "core/route.h"
#include "core/runtime.h"
#include "core/seal.h"
#include "dispatcher/result_hook.h"
#include "metrics/metrics.h"

namespace sluice::dispatcher {

struct FunctionBinding {
  const FunctionConfig* config = nullptr;  // outlives the dispatcher
  Runtime* runtime = nullptr;
  Sink* dead_letter_sink = nullptr;  // required
  Sink* output_sink = nullptr;       // null when the function has no `output`
  // The function's retry topic (topology/plan.h decides it): routes with
  // RetryPath::topic re-publish failed events here (retry::make_event) and commit the
  // original. Null when the function has none.
  Sink* retry_sink = nullptr;
  std::string retry_topic{};
  // Screens every event taken in for the function and is handed its final results
  // (the HTTP API's callbacks, api/callbacks.h); outlives the dispatcher. Null: none.
  const ResultHook* results = nullptr;
};


struct DispatcherOptions {
  // Events a function may hold (queued + running + waiting to retry) before the
  // sources feeding it are held back (the partition paused, or a source that
  // throttles throttled); 0 = held_budget(concurrency) (core/broker.h).
  size_t queue_budget = 0;
  // Backoff (config/backoff.h, full jitter) between attempts to publish an output, dead
  // letter or callback that failed.
  std::chrono::milliseconds publish_retry_initial{100};
  std::chrono::milliseconds publish_retry_max{5000};
  uint64_t seed = 0;  // jitter RNG seed; 0 = random
  // Events handed over by sources but not yet taken in by the dispatcher thread.
  // Above this, on_deliveries() waits (up to a second per batch) for the dispatcher
  // to catch up: a source faster than the functions cannot fill memory with
  // batches in flight between threads.
  size_t max_queued_events = 4096;
  // While invocations run on runtimes with quick_answers() (stdio, inproc pools), how
  // long the dispatcher thread keeps polling after the last thing it handled before it
  // sleeps (core/io_loop.h): a result posted within it is taken without a thread
  // wake-up. Otherwise (Kafka into an inline function, exec, http) it sleeps at once:
  // spinning there only takes CPU from librdkafka's threads and raises the Kafka tail
  // latency (BENCHMARKS.md, "Figures behind code choices"). 0 = never poll.
  std::chrono::microseconds spin{50};
  // The control keys (core/seal.h): seal the retry records and dead letters this
  // dispatcher writes, verify the retry headers of what it reads (callback headers are
  // verified by the ResultHook, with the same keys in the engine).
  // Must outlive the dispatcher. Null: a random key of its own (nothing written by
  // another process or an earlier run verifies).
  const seal::Keyring* control_keys = nullptr;
  // Unix ms now, for event age (max_age, sluice_event_age_seconds). Empty: the system
  // clock. Tests inject one.
  std::function<int64_t()> wall_clock;
};

struct FunctionStats {
  std::string name;
  size_t held = 0;     // events held (queued, running, retry-waiting, publishing)
  size_t running = 0;  // invocations running now
  bool paused_sources = false;
  size_t lanes = 0;    // ordering lanes with events waiting or running
  uint32_t limit = 0;  // invocations allowed at once now (set_limit)
  uint64_t finished = 0;  // events finished since start (success or dead-lettered)
  bool paused = false;    // set_paused(): intake held, no invocation starts
  // Invocations ended since start (any outcome, synchronous calls too) and their total
  // duration: the autoscaler's mean invocation time (scaling/ rate_limit ceiling).
  uint64_t invocations = 0;
  double invocation_seconds = 0;
};

// The answer to a synchronous invocation (Dispatcher::invoke_sync).
struct SyncAnswer {
  enum class Status : uint8_t {
    done,           // `result` is the function's; its emitted events are published
    busy,           // over the function's budget (`message` says which): call again later
    output_failed,  // it ran, but its emitted events could not be published
    stopped,        // the dispatcher is not running, or the function is unknown
  };
  Status status = Status::done;
  InvocationResult result;
  std::string message;
};
using SyncCallback = std::function<void(SyncAnswer&&)>;

class Dispatcher final : public SourceListener {
 public:
  Dispatcher(metrics::Metrics& metrics, DispatcherOptions opts = {});
  ~Dispatcher() override;
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  // Set-up, before start(). Unknown function names are programming errors, and so
  // are a RetryPath::topic route of a function without a retry_sink and a
  // RetryPath::redeliver route on a source that feeds more than that one route (the
  // nack would settle the delivery for every function it fans out to).
  void add_function(const FunctionBinding& b);
  // `filter` (subscription routes): events it does not pass are finished for the
  // function without a Task or an invocation, and counted.
  void add_route(Source& src, const std::string& function, Ordering ordering,
                 RouteRole role = RouteRole::subscription, RetryPath retry = RetryPath::lane,
                 filter::SubscriptionFilter filter = {});

  void start();
  // Waits until no event is held anywhere, or the deadline passes. After it returns
  // false, whatever is still held is abandoned: not committed, so redelivered later.
  bool drain(std::chrono::milliseconds timeout);
  // Stops the dispatcher thread. Results arriving after it are dropped.
  void stop();

  // Events held back by a retry topic until due, and those a paused function holds and
  // has not started (set_paused), are not waited for by drain(): they are uncommitted
  // and come again. Call before drain() at shutdown.
  void abandon_waiting_retries();

  // SourceListener (called on source threads).
  void on_deliveries(Source& src, std::vector<Delivery>&& batch) override;
  void on_partitions_revoked(Source& src, const std::vector<int32_t>& parts) override;
  void on_source_error(Source& src, const Error& err) override;

  std::vector<FunctionStats> stats() const;  // any thread

  // A synchronous call of `function` (POST /function/{name}): the event runs at once,
  // ahead of the function's queue but inside its budget. It is refused (busy) while
  // `concurrency` synchronous calls of the function run, or while the function holds
  // its budget of events or bytes (DispatcherOptions::queue_budget,
  // max_inflight_bytes); admitted, it counts as held and running (stats, drain, the
  // pause of sources, the queue's share of `concurrency`). Events it emits go to the
  // function's `output` as a queued event's do (on any outcome), but are not retried:
  // a failed publish answers output_failed. No retry, dead letter or callback.
  // `done` is called once, on the dispatcher thread; it must not block. Any thread.
  void invoke_sync(const std::string& function, Event event, SyncCallback done);

  // The autoscaler's pool size: at most min(n, concurrency) invocations of the
  // function run at once. 0 (scaled to zero) still runs one at a time, so that an
  // event arriving at zero workers starts one at once instead of waiting for the
  // autoscaler's next tick to raise the limit. Running invocations above a lowered
  // limit finish. Any thread.
  void set_limit(const std::string& function, uint32_t n);

  // Pauses (true) or resumes (false) a function (`sluice pause` / `resume`;
  // dispatcher/pause.cc): while paused no invocation of it starts — queued events and
  // retries wait, held and uncommitted — running ones finish and commit, synchronous
  // calls are answered busy, and the sources that feed only this function are held
  // back (a source shared with other functions is not: the function's queue fills up
  // to its budget, whose hold then applies as for any slow function). Resuming
  // releases the holds and starts what waits. Idempotent. False when the function is
  // unknown. Any thread; before start() it sets the state the function starts in.
  bool set_paused(const std::string& function, bool paused);
  size_t held() const { return held_.load(); }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::atomic<size_t> held_{0};
  std::atomic<size_t> queued_{0};  // handed over by on_deliveries, not yet taken in
  std::mutex queued_mu_;           // pairs with queued_cv_ only
  std::condition_variable queued_cv_;
};

}  // namespace sluice::dispatcher
