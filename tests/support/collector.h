// Collector: the one SourceListener the broker-adapter tests wait on (local, Kafka,
// NATS and the shared source contract, broker-adapters/tests). Header-only, no gtest.
//
// It records every callback: each delivered event (its copy, kept for good: events(),
// tags()) and the Delivery itself, held until the test takes it (take(): settle
// from the test thread). `on_each`, when set, runs on the adapter thread for every
// delivery before it is held (settle on arrival). Waits are on a condition with a
// deadline, never a sleep.
//
// Threads: callbacks come on adapter threads; every method is thread-safe (one
// mutex). The listener outlives the Source it is given to.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "core/broker.h"
#include "tests/support/support.h"

namespace sluice::testsupport {

class Collector final : public SourceListener {
 public:
  using Pred = std::function<bool(const std::vector<Event>&)>;

  std::function<void(Delivery&)> on_each;  // set before start(); adapter thread

  void on_deliveries(Source&, std::vector<Delivery>&& batch) override {
    std::lock_guard lk(mu_);
    batch_sizes_.push_back(batch.size());
    for (auto& d : batch) {
      if (on_each) on_each(d);
      tags_.push_back(d.tag());
      events_.push_back(d.event);
      held_.push_back(std::move(d));
    }
    cv_.notify_all();
  }
  void on_partitions_revoked(Source&, const std::vector<int32_t>& parts) override {
    std::lock_guard lk(mu_);
    revoked_.insert(revoked_.end(), parts.begin(), parts.end());
    cv_.notify_all();
  }
  void on_source_error(Source&, const Error& e) override {
    std::lock_guard lk(mu_);
    errors_.push_back(e.message);
    cv_.notify_all();
  }

  // Every event delivered so far (since the last clear()), in arrival order.
  bool wait(const Pred& pred, std::chrono::milliseconds limit = kDeadline) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return pred(events_); });
  }
  bool wait_count(size_t n, std::chrono::milliseconds limit = kDeadline) {
    return wait([n](const std::vector<Event>& es) { return es.size() >= n; }, limit);
  }
  bool wait_data(const std::string& data, std::chrono::milliseconds limit = kDeadline) {
    return wait(
        [&](const std::vector<Event>& es) {
          for (const auto& e : es)
            if (e.data == data) return true;
          return false;
        },
        limit);
  }
  std::vector<Event> events() {
    std::lock_guard lk(mu_);
    return events_;
  }
  std::vector<DeliveryTag> tags() {
    std::lock_guard lk(mu_);
    return tags_;
  }

  // The deliveries not taken yet.
  size_t held() {
    std::lock_guard lk(mu_);
    return held_.size();
  }
  bool wait_held(size_t n, std::chrono::milliseconds limit = kDeadline) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, limit, [&] { return held_.size() >= n; });
  }
  std::vector<Delivery> take() {
    std::lock_guard lk(mu_);
    return std::exchange(held_, {});
  }
  std::vector<int64_t> held_offsets() {
    std::lock_guard lk(mu_);
    std::vector<int64_t> out;
    for (const auto& d : held_) out.push_back(d.event.offset);
    return out;
  }

  std::vector<int32_t> revoked() {
    std::lock_guard lk(mu_);
    return revoked_;
  }
  std::vector<std::string> errors() {
    std::lock_guard lk(mu_);
    return errors_;
  }
  // The size of every batch handed over so far, in order.
  std::vector<size_t> batch_sizes() {
    std::lock_guard lk(mu_);
    return batch_sizes_;
  }
  void clear() {
    std::lock_guard lk(mu_);
    events_.clear();
    tags_.clear();
    held_.clear();
    revoked_.clear();
    errors_.clear();
    batch_sizes_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Event> events_;
  std::vector<DeliveryTag> tags_;
  std::vector<Delivery> held_;
  std::vector<int32_t> revoked_;
  std::vector<std::string> errors_;
  std::vector<size_t> batch_sizes_;
};

}  // namespace sluice::testsupport
