// Helpers for the local broker tests: a fresh temp dir per test, a listener and an
// ack collector that tests wait on with a deadline (never a sleep).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <vector>

#include "broker-adapters/local/local_broker.h"
#include "broker-adapters/local/local_queue.h"
#include "core/broker.h"
#include "tests/support/collector.h"

namespace sluice::local::testing {

using namespace std::chrono_literals;
inline constexpr auto kDeadline = std::chrono::seconds(20);

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-local-XXXXXX").string();
    char* p = mkdtemp(tmpl.data());
    EXPECT_NE(p, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline LocalQueueOptions options(const std::string& db, int32_t partitions = 4) {
  LocalQueueOptions o;
  o.path = db;
  o.broker = "local";
  o.partitions = partitions;
  o.retention_interval = std::chrono::hours(1);  // tests trim with trim_now()
  return o;
}

inline Event make_event(std::string id, std::string data = {}, std::string key = {}) {
  Event e;
  e.id = std::move(id);
  e.source = "test";
  e.type = "test.event";
  e.data = std::move(data);
  e.key = std::move(key);
  return e;
}

// Collects publish results; wait() blocks until `n` arrived or the deadline passed.
class Acks {
 public:
  PublishCallback callback(size_t slot) {
    return [this, slot](Result<PublishAck> r) {
      std::lock_guard lk(mu_);
      if (results_.size() <= slot) results_.resize(slot + 1);
      results_[slot] = std::move(r);
      ++count_;
      cv_.notify_all();
    };
  }
  bool wait(size_t n) {
    std::unique_lock lk(mu_);
    return cv_.wait_for(lk, kDeadline, [&] { return count_ >= n; });
  }
  std::vector<std::optional<Result<PublishAck>>> results() {
    std::lock_guard lk(mu_);
    return results_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t count_ = 0;
  std::vector<std::optional<Result<PublishAck>>> results_;
};

// The one collecting SourceListener of the adapter tests (tests/support/collector.h).
using testsupport::Collector;

// Publishes `n` events "<prefix><i>" and waits for every answer; returns the acks.
inline std::vector<PublishAck> publish_n(Sink& sink, const std::string& topic, size_t n,
                                         const std::string& prefix = "e",
                                         const std::string& key = {}) {
  Acks acks;
  for (size_t i = 0; i < n; ++i)
    sink.publish(topic, make_event(prefix + std::to_string(i), "data", key), acks.callback(i));
  EXPECT_TRUE(acks.wait(n));
  std::vector<PublishAck> out;
  for (auto& r : acks.results()) {
    EXPECT_TRUE(r.has_value() && r->has_value()) << (r && !*r ? r->error().message : "");
    if (r && *r) out.push_back(r->value());
  }
  return out;
}

}  // namespace sluice::local::testing
