#include "broker-adapters/kafka/kafka_source.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "broker-adapters/kafka/kafka_codec.h"
#include "core/thread_guard.h"

namespace sluice::kafka {
namespace {

// Records per on_deliveries call. Small enough that the dispatcher starts on a batch
// while the next is converted, so drains run steadier and the first record of a batch
// waits for fewer others (BENCHMARKS.md, "Kafka drain": batch 128 against 512).
constexpr size_t kMaxBatch = 128;
constexpr int kPollMs = 100;       // also bounds how late a stop()/pause() is seen
constexpr int kNudgeAfterMs = 2;   // a busy consumer queue dry this long: nudge_fetcher()
// Only a queue that held this many records during the busy spell can have stalled the
// fetcher (its thresholds are 16 MB / 1M records, sluice's defaults): a consumer that
// keeps up with a steady input runs dry between fetch responses all the time, and a
// seek then would only throw the fetch in flight away (latency).
constexpr size_t kNudgeMinQueued = 10000;
// A throttle lasting this long pauses every partition and polls again (rebalances,
// max.poll.interval.ms): a function this slow does not notice the refetch on resume.
constexpr auto kThrottlePauseAfter = std::chrono::seconds(1);

std::vector<int32_t> partitions_of(const rd_kafka_topic_partition_list_t* l) {
  std::vector<int32_t> out;
  for (int i = 0; l && i < l->cnt; ++i) out.push_back(l->elems[i].partition);
  return out;
}

}  // namespace

Result<std::unique_ptr<KafkaSource>> KafkaSource::open(const BrokerConfig& cfg,
                                                       std::string topic, std::string group,
                                                       std::shared_ptr<KafkaProbe> probe) {
  if (topic.empty()) return Error{Errc::invalid_argument, "kafka source: empty topic"};
  std::unique_ptr<KafkaSource> s(
      new KafkaSource(cfg.name, std::move(topic), std::move(group), std::move(probe)));
  SLUICE_TRY(rk, make_client(cfg, Role::consumer, s->group_, [&](rd_kafka_conf_t* conf) {
               rd_kafka_conf_set_opaque(conf, s.get());
               rd_kafka_conf_set_rebalance_cb(conf, &KafkaSource::on_rebalance);
             }));
  s->rk_ = std::move(rk);
  s->peeker_ = std::make_unique<LagPeeker>(cfg, s->group_);
  // Everything (records, errors, rebalances) is served by rd_kafka_consumer_poll.
  if (rd_kafka_resp_err_t err = rd_kafka_poll_set_consumer(s->rk_.get()))
    return kafka_error("kafka broker " + cfg.name + ": consumer for " + s->topic_, err);
  s->queue_ = rd_kafka_queue_get_consumer(s->rk_.get());
  s->rkt_ = rd_kafka_topic_new(s->rk_.get(), s->topic_.c_str(), nullptr);
  if (!s->rkt_)
    return kafka_error("kafka broker " + cfg.name + ": topic " + s->topic_, rd_kafka_last_error());
  return s;
}

KafkaSource::~KafkaSource() {
  stop();
  closing_ = true;
  if (rk_) {
    // Leaves the group: the revoke runs through the rebalance callback on this
    // thread, which commits what is stored.
    if (rd_kafka_resp_err_t err = rd_kafka_consumer_close(rk_.get()))
      spdlog::warn("kafka broker {}: closing the consumer of {}/{}: {}", broker_, topic_, group_,
                   rd_kafka_err2str(err));
  }
  if (queue_) rd_kafka_queue_destroy(queue_);
  if (rkt_) rd_kafka_topic_destroy(rkt_);
  rk_.reset();
}

Result<void> KafkaSource::start(SourceListener& listener) {
  std::lock_guard g(stop_mu_);
  if (started_) return Error{Errc::invalid_argument, "kafka source " + topic_ + ": started twice"};
  listener_ = &listener;
  PartList sub = make_list(topic_, {RD_KAFKA_PARTITION_UA});
  if (rd_kafka_resp_err_t err = rd_kafka_subscribe(rk_.get(), sub.get()))
    return kafka_error("kafka broker " + broker_ + ": subscribe to " + topic_, err);
  started_ = true;
  thread_ = std::thread([this] { run_guarded("kafka source", [this] { run(); }); });
  return ok();
}

void KafkaSource::stop() {
  std::lock_guard g(stop_mu_);
  stopping_ = true;
  wake();
  if (thread_.joinable()) thread_.join();
}

void KafkaSource::wake() {
  if (queue_) rd_kafka_queue_yield(queue_);
  throttle_cv_.notify_all();
}

void KafkaSource::run() {
  pthread_setname_np(pthread_self(), "sluice-kafka-c");
  std::vector<Delivery> batch;
  batch.reserve(kMaxBatch);  // filled in place: never moved by growth
  bool busy = false;
  size_t peak_queued = 0;  // the most records seen waiting in this busy spell
  while (!stopping_.load()) {
    apply_pauses();
    if (hold_back()) continue;
    rd_kafka_message_t* m = rd_kafka_consumer_poll(rk_.get(), busy ? kNudgeAfterMs : kPollMs);
    if (!m && busy) {
      if (peak_queued >= kNudgeMinQueued) nudge_fetcher();
      peak_queued = 0;
      m = rd_kafka_consumer_poll(rk_.get(), kPollMs);
    }
    busy = m != nullptr;
    if (m) peak_queued = std::max(peak_queued, rd_kafka_queue_length(queue_));
    // One record per rd_kafka_consumer_poll, not rd_kafka_consume_batch_queue (~7 %
    // less CPU per record): librdkafka before 2.1.0 (Debian's is 2.0.2) may return
    // records of an outdated fetch version from its batch APIs around pause/resume
    // (librdkafka #4208), and this source pauses partitions for back pressure.
    while (m) {
      take(m, batch);
      if (batch.size() >= kMaxBatch || stopping_.load()) break;
      m = rd_kafka_consumer_poll(rk_.get(), 0);
    }
    if (!batch.empty()) {
      listener_->on_deliveries(*this, std::move(batch));
      batch = std::vector<Delivery>();
      batch.reserve(kMaxBatch);
    }
  }
}

// librdkafka 2.0 stops fetching while the consumer queue is above queued.min.messages
// or queued.max.messages.kbytes, and its broker thread looks again only when
// something wakes it: at the latest after a second. A consumer that empties the
// queue faster than that would run in bursts with up to a second of nothing in
// between (librdkafka 2.1 added fetch.queue.backoff.ms for this). When the queue
// has just run dry after holding at least kNudgeMinQueued records, seeking each
// active partition to the next offset to hand out wakes the fetcher at once, and
// fetching restarts exactly there: nothing is lost.
// The seek is asynchronous (timeout 0): the poll thread never waits for the broker
// thread to take it (a synchronous seek timed out now and then during a start-up
// with a backlog, holding the poll thread for its whole timeout). A record fetched
// before the seek may still come out after it: it is handed out as usual, and the
// copies the seek fetches again are below next_offset_ then, so take() skips them:
// nothing is lost or repeated (a repeat would also run out of order).
void KafkaSource::nudge_fetcher() {
  std::vector<int32_t> active;
  {
    std::lock_guard g(mu_);
    for (int32_t p : assigned_)
      if (!applied_.count(p) && next_offset_.count(p)) active.push_back(p);
  }
  if (active.empty()) return;
  PartList l = make_list(topic_, active);
  for (int i = 0; i < l->cnt; ++i) l->elems[i].offset = next_offset_[l->elems[i].partition];
  ErrorPtr e{rd_kafka_seek_partitions(rk_.get(), l.get(), 0)};
  for (int i = 0; i < l->cnt; ++i)
    if (e || l->elems[i].err)
      spdlog::debug("kafka broker {}: seek of {}/{} to wake the fetcher: {}", broker_, topic_,
                    l->elems[i].partition,
                    e ? rd_kafka_error_string(e.get()) : rd_kafka_err2str(l->elems[i].err));
}

void KafkaSource::take(rd_kafka_message_t* m, std::vector<Delivery>& batch) {
  if (m->err) {
    // The position was reset (auto.offset.reset): offsets start again from there.
    if (m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET && m->rkt &&
        std::string_view(rd_kafka_topic_name(m->rkt)) == topic_)
      next_offset_.erase(m->partition);
    if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF) {
      Error e = kafka_error("kafka broker " + broker_ + ": consuming " + topic_, m->err);
      e.message += std::string(" (") + rd_kafka_message_errstr(m) + ")";
      report(e);
    }
  } else {
    // Within one assignment a partition's records are handed out in increasing
    // offsets only: a record below next_offset_ was handed out already (fetched
    // before a nudge_fetcher() seek, which is asynchronous, and fetched again by
    // it). A real step back of the position (auto.offset.reset after an
    // out-of-range offset) is announced by an error event first, which clears
    // next_offset_ below.
    auto next = next_offset_.find(m->partition);
    if (next != next_offset_.end() && m->offset < next->second) {
      rd_kafka_message_destroy(m);
      return;
    }
    next_offset_[m->partition] = m->offset + 1;
    bool bad = false;
    Delivery& d = batch.emplace_back(this, DeliveryTag{m->partition, m->offset, 0});
    record_to_event(m, broker_, d.event, &bad);
    if (bad) probe_->count(KafkaError::decode);
    if (bad && !std::exchange(decode_warned_, true))
      spdlog::warn("kafka broker {}: {}/{}/{} is a malformed CloudEvent; delivered plain with "
                   "header {}",
                   broker_, topic_, m->partition, m->offset, kDecodeErrorHeader);
  }
  rd_kafka_message_destroy(m);
}

void KafkaSource::report(const Error& e) {
  probe_->count(KafkaError::consume);
  if (auto quiet = log_limit_.allow())
    spdlog::warn("{} (source {}/{}; will retry){}", e.message, topic_, group_,
                 suppressed_note(*quiet));
  if (listener_ && !closing_) listener_->on_source_error(*this, e);
}

void KafkaSource::pause(int32_t partition) {
  {
    std::lock_guard g(mu_);
    if (!want_paused_.insert(partition).second) return;
    dirty_ = true;
  }
  wake();
}

void KafkaSource::resume(int32_t partition) {
  {
    std::lock_guard g(mu_);
    if (want_paused_.erase(partition) == 0) return;
    dirty_ = true;
  }
  wake();
}

void KafkaSource::throttle(bool on) {
  {
    std::lock_guard g(mu_);
    if (throttled_ == on) return;
    throttled_ = on;
    if (on) {
      throttled_since_ = std::chrono::steady_clock::now();
    } else if (throttle_paused_) {
      throttle_paused_ = false;
      dirty_ = true;
    }
  }
  if (!on) wake();
}

// Poll thread: while throttled (and not yet for kThrottlePauseAfter), waits instead of
// polling and returns true (the caller goes round again: pauses, stop). After
// kThrottlePauseAfter it pauses every partition (through apply_pauses) and polls.
bool KafkaSource::hold_back() {
  std::unique_lock lk(mu_);
  if (!throttled_ || throttle_paused_) return false;
  const auto now = std::chrono::steady_clock::now();
  const auto until = throttled_since_ + kThrottlePauseAfter;
  if (now >= until) {
    throttle_paused_ = true;
    dirty_ = true;
    return true;
  }
  throttle_cv_.wait_until(lk, std::min(until, now + std::chrono::milliseconds(kPollMs)),
                          [this] { return !throttled_ || dirty_ || stopping_.load(); });
  return true;
}

bool KafkaSource::wants_paused(int32_t partition) const {
  return throttle_paused_ || want_paused_.count(partition) > 0;
}

void KafkaSource::set_paused(const std::vector<int32_t>& parts, bool paused) {
  if (parts.empty()) return;
  PartList l = make_list(topic_, parts);
  rd_kafka_resp_err_t err = paused ? rd_kafka_pause_partitions(rk_.get(), l.get())
                                   : rd_kafka_resume_partitions(rk_.get(), l.get());
  if (!err)
    for (int i = 0; i < l->cnt; ++i)
      if (l->elems[i].err) err = l->elems[i].err;
  if (err) report(kafka_error("kafka broker " + broker_ + ": " + (paused ? "pause" : "resume") +
                                  " of " + topic_,
                              err));
  spdlog::debug("kafka broker {}: {} {} partition(s) of {}", broker_, paused ? "paused" : "resumed", parts.size(), topic_);
  for (int32_t p : parts) paused ? (void)applied_.insert(p) : (void)applied_.erase(p);
}

// Poll thread: make librdkafka's paused set equal to (wanted ∩ assigned).
void KafkaSource::apply_pauses() {
  std::vector<int32_t> to_pause, to_resume;
  {
    std::lock_guard g(mu_);
    if (!dirty_) return;
    dirty_ = false;
    for (int32_t p : assigned_) {
      const bool want = wants_paused(p), have = applied_.count(p) > 0;
      if (want && !have) to_pause.push_back(p);
      if (!want && have) to_resume.push_back(p);
    }
  }
  set_paused(to_pause, true);
  set_paused(to_resume, false);
}

void KafkaSource::on_rebalance(rd_kafka_t*, rd_kafka_resp_err_t err,
                               rd_kafka_topic_partition_list_t* parts, void* opaque) {
  static_cast<KafkaSource*>(opaque)->rebalance(err, parts);
}

// Poll thread (or the destructor's thread inside rd_kafka_consumer_close).
void KafkaSource::rebalance(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts) {
  rd_kafka_t* rk = rk_.get();
  const bool coop = std::strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
  const std::vector<int32_t> ps = partitions_of(parts);
  const std::string where = "kafka broker " + broker_ + ": " + topic_ + "/" + group_;
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    if (coop) {
      if (ErrorPtr e{rd_kafka_incremental_assign(rk, parts)})
        report(kafka_error(where + ": assign", e.get()));
    } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, parts)) {
      report(kafka_error(where + ": assign", e));
    }
    for (int32_t p : ps) next_offset_.erase(p);  // starts again from the committed offset
    std::vector<int32_t> to_pause, to_resume;
    {
      std::lock_guard g(mu_);
      for (int32_t p : ps) {
        assigned_.insert(p);
        (wants_paused(p) ? to_pause : to_resume).push_back(p);
      }
    }
    // A partition's pause state is reset on (re)assignment: set it explicitly.
    set_paused(to_pause, true);
    set_paused(to_resume, false);
    spdlog::debug("{}: assigned {} partitions", where, ps.size());
    return;
  }
  if (err == RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS) {
    if (!closing_ && listener_) listener_->on_partitions_revoked(*this, ps);
    // The final commit of what the dispatcher stored for these partitions.
    rd_kafka_resp_err_t c = rd_kafka_commit(rk, nullptr, 0);
    if (c && c != RD_KAFKA_RESP_ERR__NO_OFFSET)
      report(kafka_error(where + ": commit on revoke", c));
  } else {
    report(kafka_error(where + ": rebalance", err));
  }
  if (coop) {
    if (ErrorPtr e{rd_kafka_incremental_unassign(rk, parts)})
      report(kafka_error(where + ": unassign", e.get()));
  } else if (rd_kafka_resp_err_t e = rd_kafka_assign(rk, nullptr)) {
    report(kafka_error(where + ": unassign", e));
  }
  for (int32_t p : ps) next_offset_.erase(p);
  std::lock_guard g(mu_);
  for (int32_t p : ps) {
    assigned_.erase(p);
    applied_.erase(p);
  }
}

void KafkaSource::commit(int32_t partition, int64_t next_offset) {
  if (next_offset <= 0) return;  // nothing finished yet
  // Stores next_offset (the API takes the last finished offset); no allocation.
  const rd_kafka_resp_err_t err = rd_kafka_offset_store(rkt_, partition, next_offset - 1);
  // __STATE / __UNKNOWN_PARTITION: the partition was revoked; its new owner
  // starts from the last commit, which is what at-least-once wants.
  if (err)
    spdlog::debug("kafka broker {}: offset {} of {}/{} not stored: {}", broker_, next_offset,
                  topic_, partition, rd_kafka_err2str(err));
}

Result<void> KafkaSource::flush_commits() {
  rd_kafka_resp_err_t err = rd_kafka_commit(rk_.get(), nullptr, 0);
  if (err && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
    return kafka_error("kafka broker " + broker_ + ": commit of " + topic_ + "/" + group_, err);
  return ok();
}

Result<std::vector<PartitionLag>> KafkaSource::lag() {
  SLUICE_TRY(lags, query_lag(rk_.get(), broker_, topic_, group_));
  peeker_->fill(lags);
  return lags;
}

std::vector<int32_t> KafkaSource::assignment() {
  std::lock_guard g(mu_);
  return {assigned_.begin(), assigned_.end()};
}

}  // namespace sluice::kafka
