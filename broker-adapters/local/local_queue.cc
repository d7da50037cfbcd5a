#include "broker-adapters/local/local_queue.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>

#include "core/thread_guard.h"

namespace sluice::local {

namespace {
using SteadyClock = std::chrono::steady_clock;
}

LocalQueueOptions local_queue_options(const BrokerConfig& cfg) {
  LocalQueueOptions o;
  o.path = cfg.local().path;
  o.broker = cfg.name.empty() ? "local" : cfg.name;
  o.partitions = cfg.local().partitions;
  return o;
}

DbOptions LocalQueue::db_options() const {
  DbOptions d;
  d.busy_timeout = opt_.busy_timeout;
  return d;
}

Result<std::unique_ptr<LocalQueue>> LocalQueue::open(LocalQueueOptions opt) {
  if (opt.partitions < 1 || opt.partitions > 4096)
    return Error{Errc::invalid_argument, "local broker " + opt.path + ": partitions must be "
                                         "between 1 and 4096, not " +
                                             std::to_string(opt.partitions)};
  if (opt.max_batch == 0) opt.max_batch = 1;
  if (opt.read_batch == 0) opt.read_batch = 1;
  if (opt.trim_batch <= 0) opt.trim_batch = 1;
  std::unique_ptr<LocalQueue> q(new LocalQueue(std::move(opt)));
  SLUICE_TRY(w, LogWriter::open(q->opt_.path, q->db_options(), q->opt_.broker,
                                q->opt_.partitions));
  q->writer_ = std::move(w);
  SLUICE_TRY(q->writer_->set_max_page_count(q->opt_.max_page_count));
  SLUICE_TRY(r, q->open_reader());
  q->query_ = std::move(r);
  q->writer_alive_ = true;
  q->writer_thread_ =
      std::thread([qp = q.get()] { run_guarded("local writer", [qp] { qp->writer_loop(); }); });
  q->writer_id_ = q->writer_thread_.get_id();  // nothing reaches the writer before open returns
  return q;
}

LocalQueue::~LocalQueue() { stop(); }

Result<std::unique_ptr<LogReader>> LocalQueue::open_reader() const {
  return LogReader::open(opt_.path, db_options());
}

void LocalQueue::publish(std::string_view topic, Event ev, PublishCallback done) {
  Append a{std::string(topic), std::move(ev), std::move(done), std::nullopt};
  if (topic.empty())
    a.reject = Error{Errc::invalid_argument, "local broker: empty topic name"};
  const size_t bytes = a.event.byte_size();
  bool wake = false;
  {
    std::unique_lock lk(mu_);
    if (stopping_ || !writer_alive_) {
      lk.unlock();
      if (a.done)
        a.done(Error{Errc::closed, "local broker " + opt_.path + ": stopped"});
      return;
    }
    if (!a.reject && !queue_.empty() && queued_bytes_ + bytes > opt_.max_pending_bytes) {
      // Bounded memory: refuse instead of queueing without limit (STYLE.md 6).
      a.reject = Error{Errc::overloaded, "local broker " + opt_.path +
                                             ": too many bytes waiting to be written", true};
      a.event = Event{};
    } else {
      queued_bytes_ += bytes;
    }
    wake = queue_.empty();
    queue_.push_back(std::move(a));
    ++enqueued_;
  }
  if (wake) work_cv_.notify_one();
}

Result<void> LocalQueue::flush(std::chrono::milliseconds timeout) {
  if (std::this_thread::get_id() == writer_id_)
    return Error{Errc::invalid_argument,
                 "local broker: flush() from a publish callback would wait for itself"};
  std::unique_lock lk(mu_);
  const uint64_t target = enqueued_;
  if (!done_cv_.wait_for(lk, timeout, [&] { return completed_ >= target; }))
    return Error{Errc::timeout, "local broker " + opt_.path + ": flush timed out with " +
                                    std::to_string(target - completed_) + " unanswered",
                 true};
  return ok();
}

void LocalQueue::stage_commit(std::string_view group, std::string_view topic,
                              int32_t partition, int64_t next) {
  bool wake = false;
  {
    std::lock_guard lk(mu_);
    auto [it, inserted] =
        staged_.try_emplace(OffsetKey{std::string(group), std::string(topic), partition}, next);
    if (!inserted) it->second = std::max(it->second, next);
    if (!commits_wake_) wake = commits_wake_ = true;
  }
  if (wake) work_cv_.notify_one();
}

Result<void> LocalQueue::write_staged(LogWriter& w) {
  OffsetMap m;
  {
    std::lock_guard lk(mu_);
    m.swap(staged_);
  }
  auto r = w.write_offsets(m);
  if (!r) {
    // Keep them for the next round; a newer commit of the same key wins.
    std::lock_guard lk(mu_);
    for (auto& [k, v] : m) {
      auto [it, inserted] = staged_.try_emplace(k, v);
      if (!inserted) it->second = std::max(it->second, v);
    }
  }
  return r;
}

Result<void> LocalQueue::flush_commits() {
  return run_on_writer([this](LogWriter& w) { return write_staged(w); });
}

Result<int64_t> LocalQueue::trim_now() {
  int64_t deleted = 0;
  SLUICE_TRY(run_on_writer([&](LogWriter& w) -> Result<void> {
    for (;;) {
      SLUICE_TRY(t, w.trim(opt_.trim_batch));
      deleted += t.deleted;
      if (!t.more) return ok();
    }
  }));
  return deleted;
}

Result<void> LocalQueue::run_on_writer(const std::function<Result<void>(LogWriter&)>& fn) {
  if (std::this_thread::get_id() == writer_id_) return fn(*writer_);
  std::promise<Result<void>> done;
  auto fut = done.get_future();
  {
    std::unique_lock lk(mu_);
    if (!writer_alive_) {
      lk.unlock();
      std::lock_guard after(after_stop_mu_);
      return fn(*writer_);
    }
    tasks_.push_back([&](LogWriter& w) { done.set_value(fn(w)); });
  }
  work_cv_.notify_one();
  return fut.get();
}

void LocalQueue::watch(std::string topic, AppendWatcher* w) {
  std::lock_guard lk(watch_mu_);
  watchers_.emplace_back(std::move(topic), w);
}

void LocalQueue::unwatch(AppendWatcher* w) {
  std::lock_guard lk(watch_mu_);
  std::erase_if(watchers_, [w](const auto& e) { return e.second == w; });
}

void LocalQueue::notify_watchers(std::span<Append> chunk) {
  // The distinct topics of the batch (usually one or two), then the watchers of each.
  std::vector<std::string_view> topics;
  for (const Append& a : chunk)
    if (!a.reject && std::find(topics.begin(), topics.end(), a.topic) == topics.end())
      topics.push_back(a.topic);
  std::lock_guard lk(watch_mu_);
  for (auto& [topic, w] : watchers_)
    if (std::find(topics.begin(), topics.end(), topic) != topics.end()) w->on_append();
}

void LocalQueue::write_chunk(std::span<Append> chunk, std::vector<PublishAck>& acks) {
  const size_t accepted = static_cast<size_t>(
      std::count_if(chunk.begin(), chunk.end(), [](const Append& a) { return !a.reject; }));
  Result<void> r = ok();
  if (accepted > 0) {
    r = writer_->append(chunk, acks);
    if (r) {
      transactions_.fetch_add(1);
      appended_.fetch_add(accepted);
      if (!writable_.exchange(true))
        spdlog::info("local broker {}: writable again", opt_.path);
      notify_watchers(chunk);
    } else {
      probe_->count(LocalError::append);
      failed_appends_.fetch_add(accepted);
      if (r.error().code == Errc::no_space) {
        // Not ready until a write of about this size succeeds again (probe_space).
        writable_.store(false);
        next_probe_ = SteadyClock::now() + opt_.space_probe_interval;
        int64_t bytes = 0;
        for (const Append& a : chunk)
          if (!a.reject) bytes += static_cast<int64_t>(a.event.byte_size());
        probe_bytes_ = std::clamp<int64_t>(bytes, 4096, int64_t{1} << 20);
      }
      // Logged with context at a bounded rate; every publisher gets the error.
      if (auto suppressed = error_log_.allow())
        spdlog::error("{} ({} appends failed){}", r.error().message, accepted,
                      suppressed_note(*suppressed));
    }
  }
  for (size_t i = 0; i < chunk.size(); ++i) {
    Append& a = chunk[i];
    if (!a.done) continue;
    if (a.reject)
      a.done(std::move(*a.reject));
    else if (r)
      a.done(std::move(acks[i]));
    else
      a.done(r.error());
  }
}

void LocalQueue::trim_pass(LogWriter& w, bool& more) {
  auto t = w.trim(opt_.trim_batch);
  more = t && t.value().more;
  if (!t) spdlog::warn("{} (retention pass)", t.error().message);
}

void LocalQueue::probe_space(LogWriter& w) {
  if (auto r = w.probe_space(probe_bytes_); r) {
    if (!writable_.exchange(true))
      spdlog::info("local broker {}: writable again (space probe of {} bytes)", opt_.path,
                   probe_bytes_);
  } else if (r.error().code != Errc::no_space) {
    if (auto suppressed = error_log_.allow())
      spdlog::warn("{} (space probe){}", r.error().message, suppressed_note(*suppressed));
  }
}

Result<void> LocalQueue::set_max_page_count(int64_t pages) {
  return run_on_writer([pages](LogWriter& w) { return w.set_max_page_count(pages); });
}

void LocalQueue::writer_loop() {
  pthread_setname_np(pthread_self(), "sluice-local-w");
  std::vector<Append> batch;
  std::vector<std::function<void(LogWriter&)>> tasks;
  std::vector<PublishAck> acks;
  auto next_commit = SteadyClock::now();
  auto next_trim = SteadyClock::now() + opt_.retention_interval;
  for (;;) {
    bool stopping = false;
    bool commits_due = false;
    {
      std::unique_lock lk(mu_);
      auto until = staged_.empty() ? next_trim : std::min(next_trim, next_commit);
      if (!writable_.load()) until = std::min(until, next_probe_);
      work_cv_.wait_until(lk, until, [&] {
        return stopping_ || !queue_.empty() || !tasks_.empty() || commits_wake_;
      });
      batch.swap(queue_);
      queued_bytes_ = 0;
      tasks.swap(tasks_);
      commits_wake_ = false;
      stopping = stopping_;
      commits_due = !staged_.empty();
    }
    for (size_t i = 0; i < batch.size(); i += opt_.max_batch) {
      const size_t n = std::min(opt_.max_batch, batch.size() - i);
      write_chunk(std::span<Append>(batch).subspan(i, n), acks);
      {
        std::lock_guard lk(mu_);
        completed_ += n;
      }
      done_cv_.notify_all();
    }
    batch.clear();
    for (auto& t : tasks) t(*writer_);
    tasks.clear();

    const auto now = SteadyClock::now();
    if (commits_due && (now >= next_commit || stopping)) {
      if (auto r = write_staged(*writer_); !r)
        spdlog::warn("{} (committing offsets; will retry)", r.error().message);
      next_commit = now + opt_.commit_interval;
    }
    if (!writable_.load() && now >= next_probe_ && !stopping) {
      probe_space(*writer_);
      next_probe_ = now + opt_.space_probe_interval;
    }
    if (now >= next_trim) {
      bool more = false;
      trim_pass(*writer_, more);
      next_trim = more ? now : now + opt_.retention_interval;
    }
    if (stopping) {
      std::lock_guard lk(mu_);
      if (queue_.empty() && tasks_.empty()) {
        writer_alive_ = false;
        break;
      }
    }
  }
}

void LocalQueue::stop() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  if (writer_thread_.joinable() && std::this_thread::get_id() != writer_id_)
    writer_thread_.join();
}

}  // namespace sluice::local
