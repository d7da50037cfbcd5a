// Private state of the Dispatcher (dispatcher.h). Everything here is owned and
// touched by the dispatcher thread only.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <unordered_map>

#include "core/log_limit.h"
#include "dispatcher/age.h"
#include "dispatcher/commit_tracker.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/rate_limit.h"

namespace sluice::dispatcher {

struct SourceState;
struct FunctionState;

// One delivery, shared by every function it fans out to.
struct Pending {
  Delivery delivery;  // the handle to settle; its event is empty (moved into the tasks)
  SourceState* src = nullptr;
  uint32_t remaining = 0;     // functions not finished with it yet
  bool dead_lettered = false; // at least one function dead-lettered it
  bool abandoned = false;     // its partition was revoked: never commit it
  // Per-message-ack brokers in retry topic mode: settle with nack(delay), not ack.
  std::optional<std::chrono::milliseconds> nack_delay{};
};

// An event to publish for a task (output, fan-out event or dead letter).
struct Outgoing {
  Sink* sink = nullptr;
  std::string topic;
  Event event;
  prometheus::Counter* published = nullptr;  // counted once durable
  bool done = false;
  uint32_t failures = 0;
};

// An ordering lane: (source, partition) for `ordering: partition`, plus the event
// key for `ordering: key`.
struct LaneKey {
  const SourceState* src = nullptr;
  int32_t partition = 0;
  std::string key;
  friend bool operator==(const LaneKey&, const LaneKey&) = default;
};
struct LaneKeyHash {
  size_t operator()(const LaneKey& k) const noexcept {
    size_t h = std::hash<std::string>{}(k.key);
    h ^= std::hash<const void*>{}(k.src) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= std::hash<int32_t>{}(k.partition) + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
  }
};
struct Task;
// The tasks of one lane in arrival order (an intrusive list through Task::lane_next:
// no allocation per event). The head runs; the others wait for it.
struct Lane {
  Task* head = nullptr;
  Task* tail = nullptr;
};

// The caller of a synchronous invocation, waiting for its answer.
struct SyncCall {
  SyncCallback done;
  SyncAnswer answer;
};

// One (delivery, function) pair: the unit of ordering, retry and dead-lettering; or
// one synchronous call (`sync` set, no Pending).
struct Task {
  explicit Task(Event&& ev) : event(std::move(ev)) {}
  Pending* pending = nullptr;  // null for a synchronous call
  FunctionState* fn = nullptr;
  Event event;
  size_t bytes = 0;
  bool ordered = false;  // belongs to a lane
  LaneKey lane;          // lane key when ordered
  Task* lane_next = nullptr;              // next task of the same lane
  Task* live_prev = nullptr;              // Impl::live, every task alive
  Task* live_next = nullptr;
  uint32_t attempt = 0;
  int64_t first_failure_ms = 0;
  std::chrono::steady_clock::time_point started;
  std::vector<Outgoing> outbox;
  size_t outbox_left = 0;
  bool dead_lettered = false;
  bool retried_out = false;   // handed to the retry topic / broker redelivery
  RetryPath retry = RetryPath::lane;  // its route's (Dispatcher::add_route)
  bool wants_result = false;  // the ResultHook asked for the final result (screen_results)
  int64_t due_ms = 0;         // retry topic: not to run before this (unix ms)
  Outcome final_outcome = Outcome::success;
  const char* dlq_class = nullptr;  // dead-lettered under a class of its own (`expired`)
  // Invocations that ended in `crash`, plus the broker's unexplained deliveries
  // (Delivery::unsettled) and those counted before a retry topic / redelivery
  // (crash::Ledger): at retry.max_crashes it is dead-lettered as `crash`.
  uint32_t crashes = 0;
  std::optional<int64_t> origin_ms;  // age::origin_ms, read once (origin_read)
  bool origin_read = false;
  std::unique_ptr<boost::asio::steady_timer> timer;
  std::unique_ptr<SyncCall> sync;  // a synchronous call (invoke_sync)
  // Flow control (FlowState): a token of the rate limit is taken for this attempt;
  // it was counted as throttled. Both cleared when the attempt starts.
  bool token_paid = false;
  bool throttled = false;
};

// Retry-topic events of one partition waiting to be due, in offset order. While the
// head is not due, the partition is paused (no busy loop, no early delivery).
struct Gate {
  std::deque<Task*> waiting;
  std::unique_ptr<boost::asio::steady_timer> timer;
  bool armed = false;
  bool paused = false;
};

// The "partition" under which a function holds back a whole source that throttles
// (SourceTraits::throttles) in SourceState::paused and FunctionState::holding.
constexpr int32_t kWholeSource = -1;

struct SourceState {
  Source* source = nullptr;
  SourceTraits traits;
  RouteRole role = RouteRole::subscription;
  std::map<int32_t, Gate> gates;  // retry sources only
  struct Route {
    FunctionState* fn = nullptr;
    Ordering ordering = Ordering::partition;
    RetryPath retry = RetryPath::lane;
    filter::SubscriptionFilter filter;  // empty: every event
  };
  std::vector<Route> route;
  std::unordered_map<int32_t, CommitTracker> trackers;
  // partition (or kWholeSource) -> who holds it (fn or gate)
  std::map<int32_t, std::set<const void*>> paused;
  prometheus::Counter* received = nullptr;
  // Finished prefixes not yet handed to Source::commit: committed together once the
  // current burst of work is done (one offset store per partition per burst).
  std::unordered_map<int32_t, int64_t> to_commit;
  bool dirty = false;  // listed in Impl::dirty_sources
};

// The function's rate_limit and max_per_key (dispatcher.cc flow_*), before an
// invocation takes a worker. Exists only for a function with either.
struct FlowState {
  std::optional<RateLimiter> rate;
  uint32_t max_per_key = 0;  // 0 = no limit
  // Keys with invocations running (max_per_key), and the tasks waiting for them.
  std::unordered_map<std::string, uint32_t> running_per_key;
  std::unordered_map<std::string, std::deque<Task*>> parked;
  // `by: key`: tasks whose token is reserved, waiting until it is due.
  std::multimap<RateClock::time_point, Task*> due;
  // One timer: when the next token (per function) or the earliest `due` falls due.
  std::unique_ptr<boost::asio::steady_timer> timer;
  bool armed = false;
  RateClock::time_point armed_at;
  // Per-function limit: waiting events (held - running) from which, while out of
  // tokens, the sources feeding the function are held back (about a second of tokens).
  size_t hold_mark = 1;
  std::set<std::pair<SourceState*, int32_t>> holding;  // partitions it holds
  prometheus::Counter* throttled = nullptr;
};

struct FunctionState {
  FunctionBinding b;
  std::string name;
  std::unique_ptr<metrics::FunctionProbe> probe;
  size_t budget = 0;
  uint32_t limit = 0;     // set_limit(); starts at concurrency
  uint64_t finished = 0;
  uint64_t invocations = 0;       // ended, any outcome (FunctionStats)
  double invocation_seconds = 0;  // their total duration
  size_t held = 0;
  size_t bytes = 0;
  size_t running = 0;
  size_t sync_running = 0;  // synchronous calls running (part of `running`)
  std::deque<Task*> ready;
  std::unordered_map<LaneKey, Lane, LaneKeyHash> lanes;
  bool pumping = false;  // pump() is on the stack (re-entered by inline results)
  bool repump = false;
  std::set<std::pair<SourceState*, int32_t>> holding;  // partitions it paused
  // Dispatcher::set_paused (dispatcher/pause.cc): no invocation starts while set; the
  // partitions (or kWholeSource) held for it, apart from the budget's `holding`.
  bool paused = false;
  std::set<std::pair<SourceState*, int32_t>> pause_holding;
  std::string dlq_topic;
  std::string output_topic;
  prometheus::Counter* dlq_published = nullptr;
  prometheus::Counter* output_published = nullptr;
  prometheus::Counter* retry_published = nullptr;
  std::unique_ptr<FlowState> flow;  // null: no rate_limit, no max_per_key
};

struct Dispatcher::Impl {
  Impl(metrics::Metrics& m, DispatcherOptions o, std::atomic<size_t>& held);

  metrics::Metrics& metrics;
  DispatcherOptions opts;
  std::atomic<size_t>& held_total;
  // The dispatcher thread's loop; shared with the runtimes that read their answers on
  // it (Runtime::share_loop), which keep it alive as long as they need it.
  std::shared_ptr<boost::asio::io_context> loop = std::make_shared<boost::asio::io_context>();
  boost::asio::io_context& io = *loop;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard;
  std::thread thread;
  std::mt19937_64 rng;
  std::optional<seal::Keyring> own_keys;  // when opts.control_keys is null
  const seal::Keyring* keys = nullptr;    // opts.control_keys or &*own_keys
  LogLimit rejected_log;                  // control headers that did not verify
  LogLimit publish_log;                   // outputs / dead letters / callbacks that failed
  std::map<std::string, std::unique_ptr<FunctionState>> functions;
  std::map<Source*, std::unique_ptr<SourceState>> sources;
  Task* live = nullptr;  // every live task, linked through live_prev/next (freed on stop)
  std::vector<SourceState*> dirty_sources;  // with to_commit entries
  bool flush_posted = false;
  bool stopped = false;
  // Invocations running on runtimes with quick_answers(): while there are any, the
  // dispatcher thread polls for their results before it sleeps (opts.spin).
  size_t quick_running = 0;
  // Wall-clock time from a steady reading: one clock read per invocation start
  // instead of two. The offset is taken again once a second (clock adjustments).
  int64_t unix_minus_steady_ms = 0;
  int64_t offset_taken_steady_ms = 0;
  bool have_offset = false;
  int64_t unix_ms_at(std::chrono::steady_clock::time_point now);
  // Wall-clock unix ms for event age: opts.wall_clock (tests), else unix_ms_at.
  int64_t wall_ms(std::chrono::steady_clock::time_point now);

  // Event age and crash quarantine (turn.cc; rules in age.h).
  crash::Ledger crash_ledger;
  bool refuse_turn(FunctionState& f, Task* t);
  void observe_age(FunctionState& f, Task* t, int64_t now_ms);
  const std::optional<int64_t>& origin_of(Task* t);
  void dead_letter_now(Task* t, Outcome o, const char* cls, std::string message, int64_t now);
  uint32_t crashes_before(const FunctionState& f, const Pending& p, RetryPath retry,
                          const Event& ev);
  void remember_crashes(const Task* t);

  std::mutex drain_mu;  // pairs with drained_cv only
  std::condition_variable drained_cv;

  // All on the dispatcher thread:
  void deliver(SourceState& s, Delivery&& d);
  bool filtered_out(const SourceState::Route& r, Pending* p, const Event& ev);
  Task* make_task(Pending* p, FunctionState& f, RetryPath retry, Event&& ev);
  void screen_results(FunctionState& f, Task* t);
  void screen_subscription(FunctionState& f, Task* t);
  void take_retry_state(SourceState& s, FunctionState& f, Task* t);
  void reject_control(FunctionState& f, const Task* t, seal::Kind k, std::string_view why);
  void hold(FunctionState& f, Task* t);
  void place(FunctionState& f, Task* t);
  void enqueue(FunctionState& f, Task* t);
  void gate_pump(SourceState& s, int32_t partition);
  void hold_partition(SourceState& s, int32_t partition, const void* who);
  void release_partition(SourceState& s, int32_t partition, const void* who);
  bool retry_out(Task* t, std::chrono::milliseconds delay, int64_t now);
  void add_hook_result(Task* t, const InvocationResult& r);
  void pump(FunctionState& f);
  void start_invocation(Task* t);
  void on_result(Task* t, InvocationResult&& r);
  void start_sync(const std::string& function, Event&& ev, SyncCallback&& done);
  void on_sync_result(Task* t, InvocationResult&& r);
  void add_outputs(Task* t, InvocationResult& r, int64_t result_time_ms);
  void schedule_retry(Task* t, std::chrono::milliseconds delay);
  void publish_outbox(Task* t);
  void publish_one(Task* t, size_t i);
  void finish_task(Task* t);
  void finish_pending(Pending* p);
  void flush_commits();
  void link(Task* t);
  void unlink(Task* t);
  void update_budget(FunctionState& f, SourceState* s, int32_t partition);
  void release_pauses(FunctionState& f);
  void revoke(SourceState& s, const std::vector<int32_t>& parts);
  // Pause of a function (dispatcher/pause.cc).
  void apply_pause(FunctionState& f, bool paused);
  void export_consumer_paused(const FunctionState& f);
  void hold_for_pause(FunctionState& f, SourceState& s, int32_t partition);
  void abandon_paused();
  // Flow control (FlowState).
  void flow_setup(FunctionState& f);
  bool flow_admit(FunctionState& f);
  void flow_started(FunctionState& f, Task* t);
  void flow_done(FunctionState& f, Task* t);
  void flow_hold(FunctionState& f, SourceState& s, int32_t partition);
  void flow_hold_all(FunctionState& f);
  void flow_release(FunctionState& f, bool starting);
  void flow_arm(FunctionState& f, RateClock::time_point at);
  void flow_fire(FunctionState& f);
  std::optional<std::string> flow_refuse_sync(FunctionState& f, const Event& ev);
  std::vector<FunctionStats> snapshot() const;
};

}  // namespace sluice::dispatcher
