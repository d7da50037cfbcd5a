#include "broker-adapters/local/local_source.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/thread_guard.h"

namespace sluice::local {

Result<std::unique_ptr<LocalSource>> LocalSource::open(LocalQueue& q, std::string topic,
                                                       std::string group) {
  if (topic.empty()) return Error{Errc::invalid_argument, "local broker: empty topic name"};
  if (group.empty()) return Error{Errc::invalid_argument, "local broker: empty group name"};
  SLUICE_TRY(reader, q.open_reader());
  return std::unique_ptr<LocalSource>(
      new LocalSource(q, std::move(topic), std::move(group), std::move(reader)));
}

LocalSource::~LocalSource() {
  stop();
  bool flush = false;
  {
    std::lock_guard lk(mu_);
    flush = commits_after_stop_;
  }
  if (flush) {
    if (auto r = q_.flush_commits(); !r)
      spdlog::warn("{} (source {} closing)", r.error().message, topic_);
  }
  explain_abandoned();
}

Result<void> LocalSource::start(SourceListener& listener) {
  {
    std::lock_guard lk(mu_);
    if (started_ || stopping_)
      return Error{Errc::invalid_argument, "local source " + topic_ + "/" + group_ +
                                               ": start() may be called once"};
    started_ = true;
  }
  // The reader thread is not running yet, so the connection is ours here. Registering
  // the group keeps retention from deleting what it has not read.
  if (auto r = reader_->register_consumer(group_, topic_); !r) {
    std::lock_guard lk(mu_);
    started_ = false;
    return r;
  }
  if (auto c = DeliveryCount::open(reader_->db(), group_, topic_)) {
    counts_.emplace(std::move(c.value()));
  } else {
    spdlog::warn("{} (source {}/{}: delivery counts off: crash quarantine will not survive "
                 "a restart)", c.error().message, topic_, group_);
  }
  listener_ = &listener;
  q_.watch(topic_, this);
  {
    // The thread waits for mu_, so reader_id_ is set before it can run a callback.
    std::lock_guard lk(mu_);
    thread_ = std::thread([this] {
      { std::lock_guard wait_for_start(mu_); }
      run_guarded("local reader", [this] { run(); });
    });
    reader_id_ = thread_.get_id();
  }
  return ok();
}

void LocalSource::stop() {
  std::lock_guard stop_lk(stop_mu_);
  bool first = false;
  {
    std::lock_guard lk(mu_);
    first = !stopping_;
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable() && std::this_thread::get_id() != reader_id_) thread_.join();
  if (!first) return;
  q_.unwatch(this);
  bool started = false;
  {
    std::lock_guard lk(mu_);
    started = started_;
  }
  if (started) {
    if (auto r = q_.flush_commits(); !r)
      spdlog::warn("{} (source {} stopping)", r.error().message, topic_);
  }
}

void LocalSource::pause(int32_t partition) {
  std::lock_guard lk(mu_);
  paused_.insert(partition);
}

void LocalSource::resume(int32_t partition) {
  {
    std::lock_guard lk(mu_);
    if (paused_.erase(partition) == 0) return;
    wake_ = true;
  }
  cv_.notify_one();
}

void LocalSource::commit(int32_t partition, int64_t next_offset) {
  bool awaited = false;
  {
    std::lock_guard lk(mu_);
    auto [it, inserted] = committed_.try_emplace(partition, next_offset);
    if (!inserted) {
      if (next_offset <= it->second) return;  // monotonic: older commits are ignored
      it->second = next_offset;
    }
    if (stopping_) commits_after_stop_ = true;
    awaited = partition == awaiting_partition_;
  }
  q_.stage_commit(group_, topic_, partition, next_offset);
  if (awaited) cv_.notify_all();
}

Result<void> LocalSource::flush_commits() { return q_.flush_commits(); }

Result<std::vector<PartitionLag>> LocalSource::lag() {
  std::map<int32_t, int64_t> overlay;
  {
    std::lock_guard lk(mu_);
    overlay = committed_;
  }
  return q_.with_reader(
      [&](LogReader& r) { return r.lag(broker(), topic_, group_, overlay); });
}

void LocalSource::on_append() {
  {
    std::lock_guard lk(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

bool LocalSource::wait(std::chrono::milliseconds d, bool& woken) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, d, [&] { return stopping_ || wake_; });
  if (stopping_) return false;
  woken = wake_;
  wake_ = false;
  return true;
}

void LocalSource::report(const Error& e) {
  q_.probe().count(LocalError::read);
  if (auto quiet = log_limit_.allow())
    spdlog::warn("{} (source {}/{}: reading; will retry){}", e.message, topic_, group_,
                 suppressed_note(*quiet));
  listener_->on_source_error(*this, e);
}

std::vector<Delivery> LocalSource::read_round(std::optional<Error>& err) {
  std::vector<Delivery> out;
  auto parts = reader_->partitions(topic_);
  if (!parts) {
    err = parts.error();
    return out;
  }
  const auto n = static_cast<size_t>(std::max(parts.value(), 0));
  if (n > pos_.size()) {
    // A topic seen for the first time (or grown by another process): start each new
    // partition at the group's committed offset.
    auto done = reader_->committed(group_, topic_);
    if (!done) {
      err = done.error();
      return out;
    }
    const size_t old = pos_.size();
    pos_.resize(n, 0);
    for (size_t p = old; p < n; ++p) {
      auto it = done.value().find(static_cast<int32_t>(p));
      if (it != done.value().end()) pos_[p] = std::max<int64_t>(0, it->second);
    }
    // What an engine that died handed out and never committed: suspects
    // (delivery_count.h).
    std::map<int32_t, int64_t> ends;
    if (counts_) {
      auto e = counts_->handed_out();
      if (!e) {
        pos_.resize(old);
        err = e.error();
        return out;
      }
      ends = std::move(e.value());
    }
    suspect_end_.resize(n, 0);
    recorded_end_.resize(n, 0);
    for (size_t p = old; p < n; ++p) {
      auto it = ends.find(static_cast<int32_t>(p));
      if (it != ends.end() && it->second > pos_[p]) {
        suspect_end_[p] = it->second;
        spdlog::warn("local broker {}: {}/{} group {}: offsets {}..{} were held by an engine "
                     "that stopped without settling them; they run one at a time",
                     q_.options().path, topic_, p, group_, pos_[p], it->second - 1);
      }
      recorded_end_[p] = std::max(pos_[p], suspect_end_[p]);
      if (counts_) (void)counts_->forget_below(static_cast<int32_t>(p), pos_[p]);
    }
  }
  paused_now_.assign(n, 0);
  {
    std::lock_guard lk(mu_);
    for (int32_t p : paused_)
      if (p >= 0 && static_cast<size_t>(p) < n) paused_now_[static_cast<size_t>(p)] = 1;
  }
  if (read_suspect(out, err)) return out;
  // Before the batch is handed out, its end is recorded (delivery_count.h).
  const auto record_ends = [&] {
    if (!counts_) return;
    std::vector<std::pair<int32_t, int64_t>> ends;
    for (size_t p = 0; p < n; ++p)
      if (pos_[p] > recorded_end_[p]) ends.emplace_back(static_cast<int32_t>(p), pos_[p]);
    if (auto r = counts_->set_handed_out(ends); !r) {
      if (!err) err = r.error();
      return;
    }
    for (auto [p, end] : ends) recorded_end_[static_cast<size_t>(p)] = end;
  };
  const size_t limit = q_.options().read_batch;
  for (size_t p = 0; p < n; ++p) {
    if (paused_now_[p]) continue;
    const auto part = static_cast<int32_t>(p);
    auto r = reader_->read(topic_, part, pos_[p], limit, [&](const RowView& row) {
      bool bad = false;
      Event ev = row_to_event(row, topic_, broker(), &bad);
      if (bad) q_.probe().count(LocalError::decode);
      if (bad && !std::exchange(decode_warned_, true))
        spdlog::warn("local broker {}: {}/{}/{} does not decode; delivered raw with header {}",
                     q_.options().path, topic_, row.partition, row.offset, kDecodeErrorHeader);
      out.emplace_back(std::move(ev), this, DeliveryTag{part, row.offset, 0});
      pos_[p] = row.offset + 1;
    });
    if (!r) {
      // Rows read so far are kept (and delivered); the rest is retried next round.
      err = r.error();
      record_ends();
      return out;
    }
  }
  record_ends();
  return out;
}

bool LocalSource::read_suspect(std::vector<Delivery>& out, std::optional<Error>& err) {
  if (!counts_) return false;
  bool waiting = false;  // suspects left on paused partitions
  for (size_t p = 0; p < suspect_end_.size(); ++p) {
    if (pos_[p] >= suspect_end_[p]) {
      suspect_end_[p] = 0;
      continue;
    }
    if (paused_now_[p]) {
      waiting = true;
      continue;
    }
    const auto part = static_cast<int32_t>(p);
    std::optional<Event> ev;
    int64_t offset = -1;
    auto r = reader_->read(topic_, part, pos_[p], 1, [&](const RowView& row) {
      bool bad = false;
      ev = row_to_event(row, topic_, broker(), &bad);
      if (bad) q_.probe().count(LocalError::decode);
      offset = row.offset;
    });
    if (!r) {
      err = r.error();
      return true;
    }
    if (!ev || offset >= suspect_end_[p]) {
      suspect_end_[p] = 0;  // none left here
      continue;
    }
    auto before = counts_->count(part, offset);  // durable before it is handed out
    if (!before) {
      err = before.error();
      return true;
    }
    out.emplace_back(std::move(*ev), this, DeliveryTag{part, offset, 0});
    out.back().unsettled = before.value() + 1;  // + the death that left it unsettled
    pos_[p] = offset + 1;
    std::lock_guard lk(mu_);
    awaiting_partition_ = part;
    awaiting_offset_ = offset;
    return true;
  }
  return waiting;
}

bool LocalSource::wait_suspect_settled() {
  int32_t part = -1;
  int64_t offset = -1;
  {
    std::unique_lock lk(mu_);
    if (awaiting_partition_ < 0) return true;
    cv_.wait(lk, [&] {
      auto it = committed_.find(awaiting_partition_);
      return stopping_ || (it != committed_.end() && it->second > awaiting_offset_);
    });
    if (stopping_) return false;
    part = std::exchange(awaiting_partition_, -1);
    offset = awaiting_offset_;
  }
  // Durable before the next suspect goes out: a death from here on is not its.
  if (auto r = q_.flush_commits(); !r) report(r.error());
  (void)counts_->forget_below(part, offset + 1);
  return true;
}

void LocalSource::explain_abandoned() {
  if (!counts_ || !listener_) return;
  int32_t part = -1;
  int64_t offset = -1;
  bool settled = false;
  {
    std::lock_guard lk(mu_);
    part = awaiting_partition_;
    offset = awaiting_offset_;
    auto it = committed_.find(part);
    settled = it != committed_.end() && it->second > offset;
  }
  const bool isolating =
      std::any_of(suspect_end_.begin(), suspect_end_.end(), [](int64_t e) { return e > 0; });
  Result<void> r = ok();
  if (part >= 0 && !settled) r = counts_->uncount(part, offset);  // stopped while it ran
  // Still isolating: the suspects left stay suspects (the record keeps their end).
  if (r && !isolating) r = counts_->clear_handed_out();
  if (!r)
    spdlog::warn("{} (source {}/{} closing: events it held may count as crashes next time)",
                 r.error().message, topic_, group_);
}

void LocalSource::run() {
  pthread_setname_np(pthread_self(), "sluice-local-r");
  const auto poll = q_.options().poll_interval;
  const auto backoff = std::max(poll * 10, std::chrono::milliseconds(200));
  int64_t last_version = -1;
  bool need_read = true;
  for (;;) {
    if (need_read) {
      // The version is taken before reading, so a write racing the read is seen next time.
      auto version = reader_->data_version();
      std::optional<Error> err;
      std::vector<Delivery> batch = read_round(err);
      const bool got = !batch.empty();
      if (got) listener_->on_deliveries(*this, std::move(batch));
      if (got && !wait_suspect_settled()) return;
      if (!version) err = version.error();
      if (err) {
        report(*err);
        bool woken = false;
        if (!wait(backoff, woken)) return;
        continue;  // need_read stays true
      }
      last_version = version.value();
      // After a non-empty batch there may be more: read again (paused partitions
      // are skipped, so a fully paused source falls through to waiting).
      need_read = got;
      {
        std::lock_guard lk(mu_);
        if (stopping_) return;
      }
      if (need_read) continue;
    }
    bool woken = false;
    if (!wait(poll, woken)) return;
    if (woken) {
      need_read = true;
      continue;
    }
    // Nothing in this process wrote: ask SQLite whether another process did.
    auto version = reader_->data_version();
    need_read = !version || version.value() != last_version;
  }
}

}  // namespace sluice::local
