// LocalQueue: the durable store behind the `local` broker — one SQLite file in WAL
// mode, appends group-committed by one writer thread (README.md).
//
// Ownership and threads:
//  - LocalQueue is owned by LocalBroker; LocalSink, LocalSource and LocalBrowser
//    hold plain references and must be destroyed before it.
//  - The writer thread (started by open(), joined by stop()) owns the LogWriter
//    connection: every append batch, committed-offset write and retention pass runs
//    there, so the file sees one writer per process. Publish callbacks and
//    AppendWatcher::on_append run on it, never under a lock of ours.
//  - `mu_` guards the publish queue, the posted tasks, the staged commits and the
//    counters flush() waits on. `watch_mu_` guards the watcher list (lock order:
//    watch_mu_ before a watcher's own lock; mu_ is never held with either).
//  - `query_mu_` guards the shared read connection used for browsing and lag.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "broker-adapters/local/log_reader.h"
#include "broker-adapters/local/local_probe.h"
#include "broker-adapters/local/log_writer.h"
#include "config/config.h"
#include "core/broker.h"
#include "core/log_limit.h"

namespace sluice::local {

struct LocalQueueOptions {
  std::string path;             // the database file; parent directories are created
  std::string broker = "local"; // broker name stamped on stored events
  int32_t partitions = 4;       // partitions of topics created on first publish
  std::chrono::milliseconds busy_timeout{5000};        // wait for another process's lock
  std::chrono::milliseconds poll_interval{20};         // sources: look for foreign writes
  std::chrono::milliseconds commit_interval{50};       // staged commits reach disk this late
  std::chrono::milliseconds retention_interval{5000};  // between retention passes
  size_t max_batch = 1024;       // appends per transaction
  size_t read_batch = 256;       // rows per partition per source read round
  int64_t trim_batch = 50000;    // rows deleted per partition per retention pass
  size_t max_pending_bytes = size_t{256} << 20;  // queued beyond this: Errc::overloaded
  // After a full disk (Errc::no_space), how often the writer probes for space again.
  std::chrono::milliseconds space_probe_interval{1000};
  int64_t max_page_count = 0;  // >0: cap the file at this many pages (tests: a full disk)
};

// The options a BrokerConfig (kind: local) implies.
LocalQueueOptions local_queue_options(const BrokerConfig& cfg);

// Told by the writer thread right after a batch touching `topic` committed.
class AppendWatcher {
 public:
  virtual ~AppendWatcher() = default;
  virtual void on_append() = 0;  // must not block
};

class LocalQueue {
 public:
  static Result<std::unique_ptr<LocalQueue>> open(LocalQueueOptions opt);
  ~LocalQueue();
  LocalQueue(const LocalQueue&) = delete;
  LocalQueue& operator=(const LocalQueue&) = delete;

  const LocalQueueOptions& options() const { return opt_; }

  // Queues one append; `done` runs on the writer thread once it is durable or failed
  // (after stop(): at once, on the caller's thread, with Errc::closed).
  void publish(std::string_view topic, Event ev, PublishCallback done);
  // Waits until every publish queued before the call has been answered.
  Result<void> flush(std::chrono::milliseconds timeout);

  // Records `next` as group's committed offset; written within commit_interval.
  void stage_commit(std::string_view group, std::string_view topic, int32_t partition,
                    int64_t next);
  // Writes staged commits now; returns once they are durable.
  Result<void> flush_commits();
  // Runs retention now until nothing more to trim; returns rows deleted.
  Result<int64_t> trim_now();

  void watch(std::string topic, AppendWatcher* w);
  void unwatch(AppendWatcher* w);

  // Runs `f(LogReader&)` on the shared read connection, serialized.
  template <class F>
  auto with_reader(F&& f) {
    std::lock_guard lk(query_mu_);
    return f(*query_);
  }
  // A fresh read connection (each Source owns one).
  Result<std::unique_ptr<LogReader>> open_reader() const;

  // Answers every queued publish, writes staged commits, joins the writer. Idempotent.
  // Must not be called from a publish callback.
  void stop();

  uint64_t transactions() const { return transactions_.load(); }  // append transactions
  uint64_t appended() const { return appended_.load(); }          // events written
  // The adapter's degraded-mode counters (this queue's and its sources').
  LocalProbe& probe() const { return *probe_; }
  std::shared_ptr<const LocalProbe> shared_probe() const { return probe_; }
  // Full disk (README.md "Full disk"): false from an append that failed with
  // Errc::no_space until an append or a space probe succeeds. Any thread.
  bool writable() const { return writable_.load(std::memory_order_relaxed); }
  uint64_t failed_appends() const { return failed_appends_.load(); }  // events not written
  // PRAGMA max_page_count of the writer's connection (0 = leave it); tests use it to
  // fill and then free "the disk".
  Result<void> set_max_page_count(int64_t pages);

 private:
  explicit LocalQueue(LocalQueueOptions opt) : opt_(std::move(opt)) {}
  DbOptions db_options() const;
  Result<void> run_on_writer(const std::function<Result<void>(LogWriter&)>& fn);
  void writer_loop();
  void write_chunk(std::span<Append> chunk, std::vector<PublishAck>& acks);
  void notify_watchers(std::span<Append> chunk);
  Result<void> write_staged(LogWriter& w);
  void trim_pass(LogWriter& w, bool& more);
  void probe_space(LogWriter& w);

  const LocalQueueOptions opt_;
  std::unique_ptr<LogWriter> writer_;  // writer thread; after it exits, after_stop_mu_
  std::mutex after_stop_mu_;
  std::thread writer_thread_;
  std::thread::id writer_id_;  // set once in open(); join() does not clear it

  std::mutex mu_;
  std::condition_variable work_cv_;  // writer waits: publishes, tasks, commits, stop
  std::condition_variable done_cv_;  // flush() waits: completed_
  std::vector<Append> queue_;
  size_t queued_bytes_ = 0;
  std::vector<std::function<void(LogWriter&)>> tasks_;
  OffsetMap staged_;
  bool commits_wake_ = false;
  bool stopping_ = false;
  bool writer_alive_ = false;
  uint64_t enqueued_ = 0;
  uint64_t completed_ = 0;

  std::mutex watch_mu_;
  std::vector<std::pair<std::string, AppendWatcher*>> watchers_;

  std::mutex query_mu_;
  std::unique_ptr<LogReader> query_;

  std::atomic<uint64_t> transactions_{0}, appended_{0}, failed_appends_{0};
  const std::shared_ptr<LocalProbe> probe_ = std::make_shared<LocalProbe>(kLocalErrors);
  std::atomic<bool> writable_{true};
  // Writer thread only: about the size of the write that failed, and the next probe.
  int64_t probe_bytes_ = 4096;
  std::chrono::steady_clock::time_point next_probe_{};
  LogLimit error_log_{std::chrono::seconds(1)};
};

}  // namespace sluice::local
