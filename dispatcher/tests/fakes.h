// Source / Sink / Runtime doubles for dispatcher tests (and tests of what plugs into
// the dispatcher, such as api/'s callbacks). Thread-safe: each guards its state with
// its own `mu`; tests read that state after drain() or under the lock.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/broker.h"
#include "core/runtime.h"
#include "dispatcher/dispatcher.h"

namespace sluice::dispatcher::testing {

using namespace std::chrono_literals;

// Waits (with a deadline, never a bare sleep) until `pred` holds under `mu`.
template <class Pred>
bool wait_for(std::mutex& mu, std::condition_variable& cv, Pred pred,
              std::chrono::milliseconds limit = 10s) {
  std::unique_lock lk(mu);
  return cv.wait_for(lk, limit, pred);
}

class FakeSource final : public Source {
 public:
  std::string_view broker() const override { return "fake"; }
  std::string_view topic() const override { return "in"; }
  std::string_view group() const override { return "g"; }
  SourceTraits traits() const override { return tr; }
  Result<void> start(SourceListener& l) override {
    listener = &l;
    return ok();
  }
  void stop() override {}
  void pause(int32_t p) override {
    std::lock_guard lk(mu);
    paused.insert(p);
    ++pause_calls;
    cv.notify_all();
  }
  void resume(int32_t p) override {
    std::lock_guard lk(mu);
    paused.erase(p);
    ++resume_calls;
    cv.notify_all();
  }
  void throttle(bool on) override {
    std::lock_guard lk(mu);
    throttled = on;
    ++throttle_calls;
    cv.notify_all();
  }
  void commit(int32_t p, int64_t next) override {
    std::lock_guard lk(mu);
    committed[p] = next;
    ++commit_calls;
    cv.notify_all();
  }
  void settle(const DeliveryTag& tag, Settle how, std::chrono::milliseconds delay) override {
    std::lock_guard lk(mu);
    settled.emplace_back(tag.offset, how);
    settle_delays.push_back(delay);
    cv.notify_all();
  }
  Result<std::vector<PartitionLag>> lag() override { return std::vector<PartitionLag>{}; }

  void send(int32_t partition, int64_t offset, std::string key, std::string data = "") {
    Event e;
    e.id = "e" + std::to_string(partition) + "-" + std::to_string(offset);
    e.broker = "fake";
    e.topic = "in";
    e.partition = partition;
    e.offset = offset;
    e.key = std::move(key);
    e.data = std::move(data);
    std::vector<Delivery> batch;
    batch.emplace_back(std::move(e), this, DeliveryTag{partition, offset, 0});
    listener->on_deliveries(*this, std::move(batch));
  }
  // One batch of `n` events of partition `partition` from offset `from`, keyed k<i % keys>.
  void send_batch(int32_t partition, int64_t from, size_t n, size_t keys) {
    std::vector<Delivery> batch;
    for (size_t i = 0; i < n; ++i) {
      Event e;
      const int64_t offset = from + static_cast<int64_t>(i);
      e.id = "e" + std::to_string(partition) + "-" + std::to_string(offset);
      e.broker = "fake";
      e.topic = "in";
      e.partition = partition;
      e.offset = offset;
      e.key = "k" + std::to_string(i % keys);
      batch.emplace_back(std::move(e), this, DeliveryTag{partition, offset, 0});
    }
    listener->on_deliveries(*this, std::move(batch));
  }
  int64_t committed_at(int32_t p) {
    std::lock_guard lk(mu);
    auto it = committed.find(p);
    return it == committed.end() ? -1 : it->second;
  }

  void send_event(Event e, uint32_t redeliveries = 0) {
    std::vector<Delivery> batch;
    DeliveryTag tag{e.partition, e.offset, 0};
    batch.emplace_back(std::move(e), this, tag);
    batch.back().redeliveries = redeliveries;
    listener->on_deliveries(*this, std::move(batch));
  }

  SourceTraits tr{true, true};
  SourceListener* listener = nullptr;
  std::mutex mu;
  std::condition_variable cv;
  std::set<int32_t> paused;
  bool throttled = false;
  int pause_calls = 0, resume_calls = 0, commit_calls = 0, throttle_calls = 0;
  std::map<int32_t, int64_t> committed;
  std::vector<std::pair<int64_t, Settle>> settled;
  std::vector<std::chrono::milliseconds> settle_delays;
};

class FakeSink final : public Sink {
 public:
  std::string_view broker() const override { return "fake"; }
  void publish(std::string_view topic, Event ev, PublishCallback done) override {
    std::unique_lock lk(mu);
    if (fail_next > 0) {
      --fail_next;
      lk.unlock();
      done(Error{Errc::unavailable, "sink down", true});
      return;
    }
    published.emplace_back(std::string(topic), std::move(ev));
    cv.notify_all();
    lk.unlock();
    done(PublishAck{std::string(topic), 0, 0});
  }
  Result<void> flush(std::chrono::milliseconds) override { return ok(); }
  size_t count() {
    std::lock_guard lk(mu);
    return published.size();
  }

  std::mutex mu;
  std::condition_variable cv;
  int fail_next = 0;
  std::vector<std::pair<std::string, Event>> published;
};

// A runtime driven by a script: `behave(event, attempt)` decides the outcome; when
// `hold` is set, invocations wait until the test releases them.
class FakeRuntime final : public Runtime {
 public:
  std::string_view kind() const override { return "fake"; }
  bool quick_answers() const override { return quick; }
  Result<void> start() override { return ok(); }
  void invoke(const Event& ev, InvokeCallback done) override {
    std::unique_lock lk(mu);
    ++running;
    max_running = std::max(max_running, running);
    calls.push_back({ev.id, ev.key, ev.attempt});
    running_keys.insert(ev.key);
    if (hold) {
      held.push_back({ev.id, ev.key, std::move(done), ev.attempt});
      cv.notify_all();
      return;
    }
    InvocationResult r = behave ? behave(ev) : InvocationResult{};
    --running;
    running_keys.erase(running_keys.find(ev.key));
    cv.notify_all();
    lk.unlock();
    done(std::move(r));
  }
  void stop(std::chrono::milliseconds) override {}
  PoolStats stats() const override { return {}; }

  // Completes held invocations in a shuffled order, checking no key runs twice.
  size_t release_all_shuffled(uint64_t seed) {
    std::unique_lock lk(mu);
    auto items = std::move(held);
    held.clear();
    std::shuffle(items.begin(), items.end(), std::mt19937_64(seed));
    for (auto& h : items) {
      --running;
      running_keys.erase(running_keys.find(h.key));
      lk.unlock();
      h.done(InvocationResult{});
      lk.lock();
    }
    return items.size();
  }

  struct Call {
    std::string id, key;
    uint32_t attempt;
  };
  struct Held {
    std::string id, key;
    InvokeCallback done;
    uint32_t attempt;
  };
  std::mutex mu;
  std::condition_variable cv;
  std::function<InvocationResult(const Event&)> behave;
  bool hold = false;
  bool quick = false;  // set before the first event
  std::vector<Call> calls;
  std::vector<Held> held;
  std::multiset<std::string> running_keys;
  size_t running = 0, max_running = 0;
};

// Waits for the answers of synchronous calls (Dispatcher::invoke_sync; given on the
// dispatcher thread).
struct SyncWaiter {
  SyncCallback callback() {
    return [this](SyncAnswer&& a) {
      std::lock_guard lk(mu);
      answers.push_back(std::move(a));
      cv.notify_all();
    };
  }
  bool wait(size_t n) { return wait_for(mu, cv, [&] { return answers.size() >= n; }); }
  std::mutex mu;
  std::condition_variable cv;
  std::vector<SyncAnswer> answers;
};

}  // namespace sluice::dispatcher::testing
