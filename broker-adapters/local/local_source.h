// LocalSource: consumes one topic of the local queue for one consumer group.
//
// Ownership and threads:
//  - Made by LocalBroker::make_source; the caller owns it and destroys it before
//    the broker. It references the broker's LocalQueue.
//  - start() launches the reader thread, which owns the source's own read
//    connection and the per-partition read positions; it calls the listener's
//    on_deliveries / on_source_error, without holding any lock. stop() joins it
//    (so it must not be called from inside those callbacks).
//  - `mu_` guards the paused set, the wake/stop flags and the in-memory commits;
//    pause/resume/commit/lag may be called from any thread, and on_append from the
//    queue's writer thread.
//  - Commits are staged in the LocalQueue and written by its writer thread; decode
//    and read errors are counted in the queue's LocalProbe.
//  - Delivery counts (delivery_count.h): what it handed out is recorded before it is
//    handed out; after an engine died holding events, those are handed out one at a
//    time with a durable count (Delivery::unsettled), so crash quarantine survives a
//    restart and blames only the event the engine died on.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "broker-adapters/local/delivery_count.h"
#include "broker-adapters/local/local_queue.h"
#include "broker-adapters/local/log_reader.h"
#include "core/broker.h"
#include "core/log_limit.h"

namespace sluice::local {

class LocalSource final : public Source, private AppendWatcher {
 public:
  static Result<std::unique_ptr<LocalSource>> open(LocalQueue& q, std::string topic,
                                                   std::string group);
  ~LocalSource() override;

  std::string_view broker() const override { return q_.options().broker; }
  std::string_view topic() const override { return topic_; }
  std::string_view group() const override { return group_; }
  SourceTraits traits() const override { return {true, false}; }

  Result<void> start(SourceListener& listener) override;
  void stop() override;
  void pause(int32_t partition) override;
  void resume(int32_t partition) override;
  void commit(int32_t partition, int64_t next_offset) override;
  Result<void> flush_commits() override;
  Result<std::vector<PartitionLag>> lag() override;

 private:
  LocalSource(LocalQueue& q, std::string topic, std::string group,
              std::unique_ptr<LogReader> reader)
      : q_(q), topic_(std::move(topic)), group_(std::move(group)), reader_(std::move(reader)) {}
  void on_append() override;
  void run();
  // One pass over the unpaused partitions. Rows read before an error are returned
  // (and their positions advanced) with `err` set.
  std::vector<Delivery> read_round(std::optional<Error>& err);
  void report(const Error& e);
  // Delivery counts (delivery_count.h), reader thread: the suspects left by an engine
  // that died, handed out one at a time; false when there are none left.
  bool read_suspect(std::vector<Delivery>& out, std::optional<Error>& err);
  // Waits until the suspect handed out is committed (and makes that durable); false
  // once stopping.
  bool wait_suspect_settled();
  // At a graceful end: what was held is explained, not a crash.
  void explain_abandoned();
  // Waits up to `d` for a wake-up; false once stopping.
  bool wait(std::chrono::milliseconds d, bool& woken);

  LocalQueue& q_;
  const std::string topic_, group_;
  SourceListener* listener_ = nullptr;  // set by start(), read by the reader thread

  // Reader thread only (after start()).
  std::unique_ptr<LogReader> reader_;
  std::vector<int64_t> pos_;  // next offset to read, per partition
  std::vector<char> paused_now_;  // snapshot of paused_ for one round
  std::optional<DeliveryCount> counts_;  // null when it could not be opened (logged)
  std::vector<int64_t> suspect_end_;     // per partition: suspects are [pos_, this)
  std::vector<int64_t> recorded_end_;    // per partition: handed-out end last recorded

  std::mutex stop_mu_;  // serializes stop() (the thread join)
  std::thread thread_;
  std::thread::id reader_id_;  // set once in start()
  std::mutex mu_;
  std::condition_variable cv_;
  std::set<int32_t> paused_;
  std::map<int32_t, int64_t> committed_;  // highest commit() per partition
  bool wake_ = false;
  bool stopping_ = false;
  bool started_ = false;
  bool commits_after_stop_ = false;
  int32_t awaiting_partition_ = -1;  // a suspect handed out, waiting for its commit
  int64_t awaiting_offset_ = -1;

  bool decode_warned_ = false;  // reader thread only: the first undecodable row is logged
  LogLimit log_limit_;
};

}  // namespace sluice::local
